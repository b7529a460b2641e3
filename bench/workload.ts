/**
 * Client workloads for the benchmarks, spoken in the Sheepdog protocol the way QEMU and tgt do:
 * sequential object writes and reads with N requests in flight, and 4 KiB random writes and reads
 * at a given queue depth over a set of already-written objects.
 *
 * @module
 */

import { SheepClient } from "../core/net/client.ts";
import { Flag, Op, Res, SD_PROTO_VER } from "../core/proto/constants.ts";
import { SdReq } from "../core/proto/header.ts";
import { vidToDataOid } from "../core/hash/oid.ts";

const OBJ = 4 << 20;

/** Result of one workload run. */
export interface WorkloadResult {
  bytes: number;
  ops: number;
  seconds: number;
  /** MB/s (10^6 bytes). */
  mbps: number;
  iops: number;
}

function result(bytes: number, ops: number, ms: number): WorkloadResult {
  const seconds = ms / 1000;
  return { bytes, ops, seconds, mbps: bytes / 1e6 / seconds, iops: ops / seconds };
}

async function runQueue(
  depth: number,
  total: number,
  one: (i: number, worker: number) => Promise<void>,
) {
  let next = 0;
  const worker = async (w: number) => {
    while (true) {
      const i = next++;
      if (i >= total) return;
      await one(i, w);
    }
  };
  await Promise.all(Array.from({ length: depth }, (_, w) => worker(w)));
}

function check(op: string, result: number): void {
  if (result !== Res.SUCCESS) throw new Error(`${op} failed with result 0x${result.toString(16)}`);
}

/** Writes `objects` whole 4 MiB data objects of `vid` (CREATE_AND_WRITE_OBJ), `depth` in flight. */
export async function seqWrite(
  clients: SheepClient[],
  vid: number,
  objects: number,
  depth: number,
): Promise<WorkloadResult> {
  const data = new Uint8Array(OBJ);
  crypto.getRandomValues(data.subarray(0, 65536));
  for (let o = 65536; o < OBJ; o += 65536) data.copyWithin(o, 0, 65536);
  const t0 = performance.now();
  await runQueue(depth, objects, async (i) => {
    const req = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: OBJ,
    });
    req.obj.oid = vidToDataOid(vid, i);
    const { rsp } = await clients[i % clients.length].request(req, data);
    check("create", rsp.result);
  });
  return result(objects * OBJ, objects, performance.now() - t0);
}

/**
 * Reads `objects` whole data objects of `vid`, `depth` in flight, each request into its worker's
 * buffer (as QEMU reads into guest memory that is already there).
 */
export async function seqRead(
  clients: SheepClient[],
  vid: number,
  objects: number,
  depth: number,
): Promise<WorkloadResult> {
  const buffers = Array.from({ length: depth }, () => new Uint8Array(OBJ).fill(1));
  const t0 = performance.now();
  await runQueue(depth, objects, async (i, w) => {
    const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: OBJ });
    req.obj.oid = vidToDataOid(vid, i);
    const { rsp } = await clients[i % clients.length].request(req, undefined, buffers[w]);
    check("read", rsp.result);
  });
  return result(objects * OBJ, objects, performance.now() - t0);
}

/** 4 KiB random writes (WRITE_OBJ) or reads over `objects` existing objects for `seconds`. */
export async function random4k(
  clients: SheepClient[],
  vid: number,
  objects: number,
  depth: number,
  seconds: number,
  write: boolean,
  rand: () => number = Math.random,
): Promise<WorkloadResult> {
  const buf = new Uint8Array(4096);
  crypto.getRandomValues(buf);
  let ops = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: depth }, async (_, w) => {
    const c = clients[w % clients.length];
    while (performance.now() < deadline) {
      const idx = Math.floor(rand() * objects);
      const off = Math.floor(rand() * (OBJ / 4096)) * 4096;
      const req = write
        ? SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 4096 })
        : SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4096 });
      req.obj.oid = vidToDataOid(vid, idx);
      req.obj.offset = off;
      const { rsp } = await c.request(req, write ? buf : undefined);
      check(write ? "write" : "read", rsp.result);
      ops++;
    }
  }));
  return result(ops * 4096, ops, performance.now() - t0);
}

/** Resident set size of a process in bytes (from /proc). */
export async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
