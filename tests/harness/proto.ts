/**
 * Raw Sheepdog-protocol requests for integration tests: object I/O and cluster state straight
 * over a client connection, without dog in between. Every request has a deadline (the client's
 * request timeout) and throws with the result code when the sheep answers anything but SUCCESS.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type SheepAddress, SheepClient } from "../../core/net/client.ts";
import { SdReq } from "../../core/proto/header.ts";
import { type ClusterInfo, decodeClusterInfo } from "../../core/proto/cluster_info.ts";

export const PUBLIC_VER = 0x02;
export const SHEEP_VER = 0x0a;
export const OP_CREATE_AND_WRITE_OBJ = 0x01;
export const OP_READ_OBJ = 0x02;
export const OP_WRITE_OBJ = 0x03;
export const OP_CLUSTER_INFO = 0xbe;
export const FLAG_CMD_WRITE = 0x0001;
export const RES_SUCCESS = 0x00;

/** Byte offset of data_vdi_id[] in an inode object. */
export const INODE_INDEX_OFFSET = 4664;
/** Full cluster_info reply size. */
export const CLUSTER_INFO_SIZE = 491_568;

const REQUEST_TIMEOUT_MS = 20_000;
const CONNECT_TIMEOUT_MS = 5_000;

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

/** Connects to 127.0.0.1:port (or a UNIX socket) with the test deadlines. */
export async function connectSheep(where: number | SheepAddress): Promise<SheepClient> {
  const addr = typeof where === "number" ? { host: "127.0.0.1", port: where } : where;
  return await SheepClient.connect(addr, {
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
  });
}

/** CREATE_AND_WRITE_OBJ of `data` at `offset` (copies 0: the VDI's). */
export async function createObj(
  c: SheepClient,
  oid: bigint,
  data: Uint8Array,
  offset = 0,
  copies = 0,
): Promise<void> {
  const req = SdReq.of(OP_CREATE_AND_WRITE_OBJ, PUBLIC_VER, {
    flags: FLAG_CMD_WRITE,
    dataLength: data.length,
  });
  req.obj.oid = oid;
  req.obj.offset = offset;
  req.obj.copies = copies;
  const { rsp } = await c.request(req, data);
  if (rsp.result !== RES_SUCCESS) {
    throw new Error(`CREATE_AND_WRITE_OBJ ${oid.toString(16)}: result ${hex(rsp.result)}`);
  }
}

/** WRITE_OBJ of `data` at `offset` of an existing object. */
export async function writeObj(
  c: SheepClient,
  oid: bigint,
  offset: number,
  data: Uint8Array,
): Promise<void> {
  const req = SdReq.of(OP_WRITE_OBJ, PUBLIC_VER, {
    flags: FLAG_CMD_WRITE,
    dataLength: data.length,
  });
  req.obj.oid = oid;
  req.obj.offset = offset;
  const { rsp } = await c.request(req, data);
  if (rsp.result !== RES_SUCCESS) {
    throw new Error(`WRITE_OBJ ${oid.toString(16)}: result ${hex(rsp.result)}`);
  }
}

/** READ_OBJ of `length` bytes at `offset`. */
export async function readObj(
  c: SheepClient,
  oid: bigint,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const req = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: length });
  req.obj.oid = oid;
  req.obj.offset = offset;
  const { rsp, data } = await c.request(req);
  if (rsp.result !== RES_SUCCESS) {
    throw new Error(`READ_OBJ ${oid.toString(16)}: result ${hex(rsp.result)}`);
  }
  return data;
}

/** CLUSTER_INFO: the node's epoch, status and the nodes of its latest epoch. */
export async function clusterInfo(c: SheepClient): Promise<ClusterInfo> {
  const req = SdReq.of(OP_CLUSTER_INFO, SHEEP_VER, { dataLength: CLUSTER_INFO_SIZE });
  const { rsp, data } = await c.request(req);
  if (rsp.result !== RES_SUCCESS) throw new Error(`CLUSTER_INFO: result ${hex(rsp.result)}`);
  return decodeClusterInfo(data);
}

/** Random bytes (crypto.getRandomValues takes at most 64 KiB at a time). */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

/** Index of the first differing byte, or -1 when equal (a length mismatch counts). */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Fails, naming the first differing byte and both lengths, unless `got` equals `want`. */
export function assertSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  const d = firstDiff(got, want);
  assert.equal(d, -1, `${what}: ${got.length} bytes vs ${want.length}, first difference at ${d}`);
}

/** The oid names (`%016lx`) of the object files in a sheep's `DIR/obj`. */
export function objectFiles(dir: string): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(`${dir}/obj`)) {
      if (e.isFile && /^[0-9a-f]{16}$/.test(e.name)) out.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** The epoch file names (`%08u`) in a sheep's `DIR/epoch`. */
export function epochFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/epoch`)].map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}
