/**
 * Bad input on the wire (issue 2 §6), sent as raw bytes to one real sheep over real TCP: protocol
 * versions, unknown opcodes, oversized data_length, truncated headers and payloads, clients that
 * vanish, malformed NEW_VDI names, object I/O past an object's end, a wrong READ_VDIS length, and
 * pipelining with replies out of order. After every case the daemon must still serve a fresh
 * client and a VDI written at the start must read back identical. Also the response header fill
 * rules of protocol sheet §1/§3.
 *
 * One sheep (local driver, `-n`) serves every step of the single test below, so the file runs in a
 * few seconds; the steps run in order and each one ends with the health check.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  freePort,
  type SheepProcess,
  sleep,
  startSheep,
  type TempDir,
  tempDir,
  withDeadline,
} from "./harness/mod.ts";
import { SheepClient } from "../core/net/client.ts";
import { SdReq } from "../core/proto/header.ts";
import { vidToDataOid, vidToVdiOid } from "../core/hash/oid.ts";
import { MAX_REQUEST_DATA } from "../core/limits.ts";

// ------------------------------------------------------------------------------------------------
// Wire constants, spelled out here on purpose: the test checks the daemon against the protocol
// sheet, not against the project's own codec.

const PUBLIC_VER = 0x02;
const SHEEP_VER = 0x0a;

const OP_CREATE_AND_WRITE_OBJ = 0x01;
const OP_READ_OBJ = 0x02;
const OP_WRITE_OBJ = 0x03;
const OP_NEW_VDI = 0x11;
const OP_GET_VDI_INFO = 0x14;
const OP_READ_VDIS = 0x15;
const OP_GET_CLUSTER_DEFAULT = 0x18;
const OP_GET_NODE_LIST = 0x82;
const OP_MAKE_FS = 0x84;
const OP_STAT_CLUSTER = 0x87;
const OP_EXIST = 0xbd;
const OP_CLUSTER_INFO = 0xbe;

const FLAG_CMD_WRITE = 0x0001;

const RES_SUCCESS = 0x00;
const RES_NO_OBJ = 0x02;
const RES_INVALID_PARMS = 0x05;
const RES_NO_VDI = 0x08;
const RES_VER_MISMATCH = 0x14;

const OBJ_SIZE = 4 * 1024 * 1024;
const INODE_HEADER_SIZE = 4664;
const INODE_SIZE = 12_587_576;
const BITMAP_SIZE = 2_097_152;
const CLUSTER_INFO_SIZE = 491_568;

const STEP_DEADLINE_MS = 15_000;

// ------------------------------------------------------------------------------------------------
// Raw requests and replies

interface RawReq {
  proto?: number;
  opcode: number;
  flags?: number;
  epoch?: number;
  id?: number;
  dataLength?: number;
  /** Fills the 32-byte union at offsets 16..47 (absolute offsets). */
  fill?: (v: DataView) => void;
}

/** A 48-byte request header built byte by byte (protocol sheet §2). */
function header(r: RawReq): Uint8Array {
  const b = new Uint8Array(48);
  const v = new DataView(b.buffer);
  v.setUint8(0, r.proto ?? (r.opcode >= 0x80 ? SHEEP_VER : PUBLIC_VER));
  v.setUint8(1, r.opcode);
  v.setUint16(2, r.flags ?? 0, true);
  v.setUint32(4, r.epoch ?? 0, true);
  v.setUint32(8, r.id ?? 0, true);
  v.setUint32(12, r.dataLength ?? 0, true);
  r.fill?.(v);
  return b;
}

/** obj union: oid @16, copies @32, offset @40. */
function objFill(oid: bigint, offset: number, copies = 0): (v: DataView) => void {
  return (v) => {
    v.setBigUint64(16, oid, true);
    v.setUint8(32, copies);
    v.setUint32(40, offset >>> 0, true);
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A decoded 48-byte reply (protocol sheet §3) and its payload. */
interface RawReply {
  bytes: Uint8Array;
  protoVer: number;
  opcode: number;
  flags: number;
  epoch: number;
  id: number;
  dataLength: number;
  result: number;
  data: Uint8Array;
}

function decodeReply(b: Uint8Array, data: Uint8Array): RawReply {
  const v = new DataView(b.buffer, b.byteOffset, 48);
  return {
    bytes: b,
    protoVer: v.getUint8(0),
    opcode: v.getUint8(1),
    flags: v.getUint16(2, true),
    epoch: v.getUint32(4, true),
    id: v.getUint32(8, true),
    dataLength: v.getUint32(12, true),
    result: v.getUint32(16, true),
    data,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

/** A raw TCP connection to the sheep with deadline-bounded exact reads. */
class Raw {
  readonly #conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<Raw> {
    const r = await withDeadline(Deno.connect({ hostname: "127.0.0.1", port }), 5_000);
    if (!r.ok) throw new Error(`connect to 127.0.0.1:${port} timed out`);
    (r.value as Deno.TcpConn).setNoDelay(true);
    return new Raw(r.value);
  }

  /** Writes every byte; false when the server has closed the connection meanwhile. */
  async send(bytes: Uint8Array): Promise<boolean> {
    let off = 0;
    try {
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
      return true;
    } catch (e) {
      if (isGone(e)) return false;
      throw e;
    }
  }

  /** Half-closes our side (the server sees EOF after what was sent). */
  async closeWrite(): Promise<void> {
    await (this.#conn as Deno.TcpConn).closeWrite();
  }

  /** Reads more bytes into the buffer; false on EOF or reset. Throws after `ms`. */
  async #fill(ms: number): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(256 * 1024);
    const r = await withDeadline(
      this.#conn.read(chunk).catch((e) => {
        if (isGone(e)) return null;
        throw e;
      }),
      ms,
    );
    if (!r.ok) {
      this.close();
      throw new Error(`no bytes from the sheep within ${ms} ms`);
    }
    if (r.value === null) {
      this.#eof = true;
      return false;
    }
    this.#buf = concat(this.#buf, chunk.subarray(0, r.value));
    return true;
  }

  /** Exactly n bytes, or null when the connection ends first. */
  async readExact(n: number, ms = STEP_DEADLINE_MS): Promise<Uint8Array | null> {
    const end = Date.now() + ms;
    while (this.#buf.length < n) {
      if (!(await this.#fill(Math.max(1, end - Date.now())))) return null;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** The next reply (header + its data_length payload); throws when the connection ends. */
  async reply(ms = STEP_DEADLINE_MS): Promise<RawReply> {
    const h = await this.readExact(48, ms);
    if (!h) throw new Error("the sheep closed the connection instead of replying");
    const len = new DataView(h.buffer).getUint32(12, true);
    const d = await this.readExact(len, ms);
    if (!d) throw new Error(`the sheep closed the connection inside a ${len}-byte reply payload`);
    return decodeReply(h, d);
  }

  /** Waits for the server to close; returns what it sent before closing. Throws after `ms`. */
  async untilClosed(ms = STEP_DEADLINE_MS): Promise<Uint8Array> {
    const end = Date.now() + ms;
    while (await this.#fill(Math.max(1, end - Date.now()))) {
      // keep reading until EOF
    }
    const rest = this.#buf;
    this.#buf = new Uint8Array(0);
    return rest;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

function isGone(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.NotConnected ||
    e instanceof Deno.errors.BadResource;
}

/** One request on a fresh connection; returns the reply and closes. */
async function once(port: number, req: RawReq, payload?: Uint8Array): Promise<RawReply> {
  const c = await Raw.open(port);
  try {
    assert.ok(await c.send(payload ? concat(header(req), payload) : header(req)));
    return await c.reply();
  } finally {
    c.close();
  }
}

function expectResult(r: RawReply, result: number, what: string): void {
  assert.equal(
    r.result,
    result,
    `${what}: result ${hex(r.result)}, expected ${hex(result)}`,
  );
}

function name256(name: string): Uint8Array {
  const b = new Uint8Array(256);
  b.set(new TextEncoder().encode(name));
  return b;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

/** Resident set size of a process in KiB (from /proc). */
function rssKiB(pid: number): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)\s+kB/m);
  assert.ok(m, `no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

// ------------------------------------------------------------------------------------------------
// The sheep under test and the data that must survive everything

interface World {
  tmp: TempDir;
  sheep: SheepProcess;
  port: number;
  vid: number;
  epoch: number;
  /** Contents of data objects 0 and 1 of the VDI. */
  objs: Uint8Array[];
  /** The inode's first 4664 + 8 bytes (header and the two index entries). */
  inodeHead: Uint8Array;
  bitmap: Uint8Array;
}

async function setUp(): Promise<World> {
  const tmp = await tempDir("badinput");
  let sheep: SheepProcess | null = null;
  try {
    const port = freePort();
    sheep = startSheep({
      dir: `${tmp.path}/store`,
      port,
      zone: 0,
      cluster: `local:${tmp.path}/cluster`,
      extraArgs: ["-n"],
    });
    await sheep.waitReady();

    // Format with one copy (MAKE_FS, payload = store name).
    const fmt = await once(port, {
      opcode: OP_MAKE_FS,
      flags: FLAG_CMD_WRITE,
      dataLength: 6,
      fill: (v) => {
        v.setBigUint64(24, BigInt(Math.floor(Date.now() / 1000)) << 32n, true);
        v.setUint8(32, 1); // copies
        v.setUint16(34, 0x0004, true); // AUTO_VNODES, as dog sets it
      },
    }, new TextEncoder().encode("plain\0"));
    expectResult(fmt, RES_SUCCESS, "MAKE_FS");

    // A 64 MiB VDI with copies 1.
    const nv = await once(port, {
      opcode: OP_NEW_VDI,
      flags: FLAG_CMD_WRITE,
      dataLength: 256,
      fill: (v) => {
        v.setBigUint64(16, 64n << 20n, true);
        v.setUint8(28, 1);
      },
    }, name256("survivor"));
    expectResult(nv, RES_SUCCESS, "NEW_VDI survivor");
    const vid = new DataView(nv.bytes.buffer).getUint32(24, true);
    assert.ok(vid > 0, "NEW_VDI returned vid 0");

    // Objects 0 and 1 full of random bytes, then the inode's index entries.
    const objs = [randomBytes(OBJ_SIZE), randomBytes(OBJ_SIZE)];
    const client = await SheepClient.connect({ host: "127.0.0.1", port });
    try {
      for (let idx = 0; idx < 2; idx++) {
        const req = SdReq.of(OP_CREATE_AND_WRITE_OBJ, PUBLIC_VER, {
          flags: FLAG_CMD_WRITE,
          dataLength: OBJ_SIZE,
        });
        req.obj.oid = vidToDataOid(vid, idx);
        const { rsp } = await client.request(req, objs[idx]);
        assert.equal(rsp.result, RES_SUCCESS, `CREATE_AND_WRITE_OBJ idx ${idx}`);
      }
      const index = new Uint8Array(8);
      new DataView(index.buffer).setUint32(0, vid, true);
      new DataView(index.buffer).setUint32(4, vid, true);
      const w = SdReq.of(OP_WRITE_OBJ, PUBLIC_VER, { flags: FLAG_CMD_WRITE, dataLength: 8 });
      w.obj.oid = vidToVdiOid(vid);
      w.obj.offset = INODE_HEADER_SIZE;
      assert.equal((await client.request(w, index)).rsp.result, RES_SUCCESS, "inode index write");
    } finally {
      client.close();
    }

    const ci = await once(port, { opcode: OP_CLUSTER_INFO, dataLength: CLUSTER_INFO_SIZE });
    expectResult(ci, RES_SUCCESS, "CLUSTER_INFO");
    const epoch = new DataView(ci.data.buffer, ci.data.byteOffset).getUint32(4, true);
    assert.ok(epoch >= 1, `epoch ${epoch} after format`);

    const world: World = {
      tmp,
      sheep,
      port,
      vid,
      epoch,
      objs,
      inodeHead: new Uint8Array(0),
      bitmap: new Uint8Array(0),
    };
    const head = await readObj(world, vidToVdiOid(vid), 0, INODE_HEADER_SIZE + 8);
    world.inodeHead = head;
    const bm = await once(port, { opcode: OP_READ_VDIS, dataLength: BITMAP_SIZE });
    expectResult(bm, RES_SUCCESS, "READ_VDIS");
    world.bitmap = bm.data;
    assert.ok(bm.data[vid >> 3] & (1 << (vid & 7)), "the new vid is set in the bitmap");
    return world;
  } catch (e) {
    await sheep?.stop();
    await tmp.cleanup();
    throw e;
  }
}

async function readObj(w: World, oid: bigint, offset: number, length: number): Promise<Uint8Array> {
  const r = await once(w.port, {
    opcode: OP_READ_OBJ,
    dataLength: length,
    fill: objFill(oid, offset),
  });
  expectResult(r, RES_SUCCESS, `READ_OBJ ${oid.toString(16)} @${offset}+${length}`);
  assert.equal(r.data.length, length);
  return r.data;
}

/**
 * The daemon is alive, a brand-new client is served, and the store is intact: both data objects
 * and the inode head read back identical, and the VDI bitmap is unchanged.
 */
async function assertHealthy(w: World, after: string): Promise<void> {
  assert.ok(w.sheep.running, `sheep died after ${after}:\n${w.sheep.process.logTail()}`);
  const r = await withDeadline(
    (async () => {
      for (let idx = 0; idx < 2; idx++) {
        const got = await readObj(w, vidToDataOid(w.vid, idx), 0, OBJ_SIZE);
        assert.ok(
          equalBytes(got, w.objs[idx]),
          `data object ${idx} changed after ${after} (first difference at byte ${
            firstDiff(got, w.objs[idx])
          })`,
        );
      }
      const head = await readObj(w, vidToVdiOid(w.vid), 0, INODE_HEADER_SIZE + 8);
      assert.ok(equalBytes(head, w.inodeHead), `inode header changed after ${after}`);
      const bm = await once(w.port, { opcode: OP_READ_VDIS, dataLength: BITMAP_SIZE });
      expectResult(bm, RES_SUCCESS, `READ_VDIS after ${after}`);
      assert.ok(equalBytes(bm.data, w.bitmap), `VDI bitmap changed after ${after}`);
    })(),
    STEP_DEADLINE_MS,
  );
  assert.ok(
    r.ok,
    `the sheep did not serve a fresh client within ${STEP_DEADLINE_MS} ms after ${after}`,
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

// ------------------------------------------------------------------------------------------------

Deno.test({
  name: "protocol bad input: one sheep survives every malformed request with its store intact",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const w = await setUp();
    try {
      await t.step(
        "response header fill: opcode and id echoed, proto_ver 0, flags 0, epoch set",
        async () => {
          const c = await Raw.open(w.port);
          try {
            const cases: { req: RawReq; result: number; len: number }[] = [
              // success with a payload; the request's own epoch (777) and flags are not echoed
              {
                req: {
                  opcode: OP_READ_OBJ,
                  id: 0xfeedbeef,
                  epoch: 777,
                  dataLength: 512,
                  fill: objFill(vidToDataOid(w.vid, 0), 0),
                },
                result: RES_SUCCESS,
                len: 512,
              },
              // success without a payload
              { req: { opcode: OP_GET_CLUSTER_DEFAULT, id: 0 }, result: RES_SUCCESS, len: 0 },
              // an error: no payload even though 4096 bytes were asked for
              {
                req: {
                  opcode: OP_READ_OBJ,
                  id: 0xffffffff,
                  dataLength: 4096,
                  fill: objFill(vidToDataOid(w.vid, 9), 0),
                },
                result: RES_NO_OBJ,
                len: 0,
              },
              // an internal op
              {
                req: { opcode: OP_GET_NODE_LIST, id: 12345, dataLength: 80 * 16 },
                result: RES_SUCCESS,
                len: 80,
              },
            ];
            for (const { req, result, len } of cases) {
              assert.ok(await c.send(header(req)));
              const r = await c.reply();
              const what = `opcode ${hex(req.opcode)} id ${req.id}`;
              expectResult(r, result, what);
              assert.equal(r.protoVer, 0, `${what}: proto_ver`);
              assert.equal(r.opcode, req.opcode, `${what}: opcode echo`);
              assert.equal(r.flags, 0, `${what}: flags`);
              assert.equal(r.id, req.id, `${what}: id echo`);
              assert.equal(r.epoch, w.epoch, `${what}: epoch is the sheep's`);
              assert.equal(r.dataLength, len, `${what}: data_length`);
              assert.equal(r.data.length, len);
            }
          } finally {
            c.close();
          }
          await assertHealthy(w, "header fill checks");
        },
      );

      await t.step(
        "proto_ver above 0x02 on a public op → VER_MISMATCH; 0x00-0x02 accepted",
        async () => {
          const c = await Raw.open(w.port);
          try {
            const read = (proto: number, id: number): RawReq => ({
              proto,
              opcode: OP_READ_OBJ,
              id,
              dataLength: 1024,
              fill: objFill(vidToDataOid(w.vid, 0), 0),
            });
            for (const proto of [0x00, 0x01, 0x02]) {
              assert.ok(await c.send(header(read(proto, proto))));
              const r = await c.reply();
              expectResult(r, RES_SUCCESS, `READ_OBJ proto_ver ${hex(proto)}`);
              assert.ok(equalBytes(r.data, w.objs[0].subarray(0, 1024)));
            }
            for (const proto of [0x03, 0x09, 0x0a, 0x0b, 0x80, 0xff]) {
              assert.ok(await c.send(header(read(proto, 100 + proto))));
              const r = await c.reply();
              expectResult(r, RES_VER_MISMATCH, `READ_OBJ proto_ver ${hex(proto)}`);
              assert.equal(r.id, 100 + proto);
              assert.equal(r.dataLength, 0, "no payload with VER_MISMATCH");
            }
            // A write with a bad version: refused, its payload consumed (the stream stays in
            // step), nothing written.
            const junk = new Uint8Array(4096).fill(0xee);
            assert.ok(
              await c.send(concat(
                header({
                  proto: 0x03,
                  opcode: OP_WRITE_OBJ,
                  flags: FLAG_CMD_WRITE,
                  id: 7,
                  dataLength: junk.length,
                  fill: objFill(vidToDataOid(w.vid, 0), 0),
                }),
                junk,
              )),
            );
            expectResult(await c.reply(), RES_VER_MISMATCH, "WRITE_OBJ proto_ver 0x03");
            // unknown public opcode with a bad version: the version is checked first (v1.0 order)
            assert.ok(await c.send(header({ proto: 0x03, opcode: 0x7f, id: 8 })));
            expectResult(await c.reply(), RES_VER_MISMATCH, "opcode 0x7f proto_ver 0x03");
            // same connection still in step
            assert.ok(await c.send(header(read(0x02, 9))));
            const r = await c.reply();
            expectResult(r, RES_SUCCESS, "READ_OBJ after the refused write");
            assert.equal(r.id, 9);
          } finally {
            c.close();
          }
          await assertHealthy(w, "public version checks");
        },
      );

      await t.step("proto_ver other than 0x0a on an internal op → VER_MISMATCH", async () => {
        const c = await Raw.open(w.port);
        try {
          const ops = [
            { opcode: OP_GET_NODE_LIST, dataLength: 80 * 16 },
            {
              opcode: OP_STAT_CLUSTER,
              dataLength: 4096,
              fill: (v: DataView) => v.setUint32(40, 8, true),
            },
            { opcode: OP_CLUSTER_INFO, dataLength: CLUSTER_INFO_SIZE },
            { opcode: OP_EXIST, fill: objFill(vidToDataOid(w.vid, 0), 0) },
          ];
          let id = 1000;
          for (const op of ops) {
            for (const proto of [0x00, 0x01, 0x02, 0x03, 0x09, 0x0b, 0xff]) {
              assert.ok(await c.send(header({ ...op, proto, id: ++id })));
              const r = await c.reply();
              expectResult(r, RES_VER_MISMATCH, `opcode ${hex(op.opcode)} proto_ver ${hex(proto)}`);
              assert.equal(r.id, id);
              assert.equal(r.dataLength, 0);
            }
            assert.ok(await c.send(header({ ...op, proto: SHEEP_VER, id: ++id })));
            const ok = await c.reply();
            expectResult(ok, RES_SUCCESS, `opcode ${hex(op.opcode)} proto_ver 0x0a`);
          }
        } finally {
          c.close();
        }
        await assertHealthy(w, "internal version checks");
      });

      await t.step("unknown opcodes → INVALID_PARMS, with and without a payload", async () => {
        const c = await Raw.open(w.port);
        try {
          const publicOps = [0x00, 0x06, 0x10, 0x19, 0x42, 0x7f];
          const internalOps = [0x80, 0x81, 0x83, 0x88, 0x91, 0xce, 0xff];
          let id = 2000;
          for (const opcode of [...publicOps, ...internalOps]) {
            assert.ok(await c.send(header({ opcode, id: ++id, dataLength: 4096 })));
            const r = await c.reply();
            expectResult(r, RES_INVALID_PARMS, `unknown opcode ${hex(opcode)}`);
            assert.equal(r.opcode, opcode);
            assert.equal(r.id, id);
            assert.equal(r.dataLength, 0);
          }
          // with a payload: consumed, stream stays in step
          const payload = randomBytes(10_000);
          assert.ok(
            await c.send(concat(
              header({ opcode: 0x42, flags: FLAG_CMD_WRITE, id: 3000, dataLength: payload.length }),
              payload,
              header({ opcode: OP_GET_CLUSTER_DEFAULT, id: 3001 }),
            )),
          );
          expectResult(await c.reply(), RES_INVALID_PARMS, "unknown opcode with payload");
          const next = await c.reply();
          expectResult(next, RES_SUCCESS, "request after the unknown opcode's payload");
          assert.equal(next.id, 3001);
        } finally {
          c.close();
        }
        await assertHealthy(w, "unknown opcodes");
      });

      await t.step(
        "data_length above MAX_REQUEST_DATA → connection closed before any allocation",
        async () => {
          const rssBefore = rssKiB(w.sheep.pid);
          const cases: { what: string; req: RawReq }[] = [
            {
              what: "WRITE_OBJ with CMD_WRITE, MAX+1",
              req: {
                opcode: OP_WRITE_OBJ,
                flags: FLAG_CMD_WRITE,
                id: 1,
                dataLength: MAX_REQUEST_DATA + 1,
                fill: objFill(vidToDataOid(w.vid, 0), 0),
              },
            },
            {
              what: "CREATE_AND_WRITE_OBJ with CMD_WRITE, 4 GiB - 1",
              req: {
                opcode: OP_CREATE_AND_WRITE_OBJ,
                flags: FLAG_CMD_WRITE,
                id: 2,
                dataLength: 0xffffffff,
                fill: objFill(vidToDataOid(w.vid, 5), 0),
              },
            },
            {
              what: "READ_OBJ asking for 4 GiB - 1",
              req: {
                opcode: OP_READ_OBJ,
                id: 3,
                dataLength: 0xffffffff,
                fill: objFill(vidToDataOid(w.vid, 0), 0),
              },
            },
            {
              what: "internal op (CLUSTER_INFO) asking for MAX+1",
              req: { opcode: OP_CLUSTER_INFO, id: 4, dataLength: MAX_REQUEST_DATA + 1 },
            },
          ];
          for (const { what, req } of cases) {
            // Without sending any payload the server must hang up on its own: it did not wait to
            // receive (let alone allocate) data_length bytes.
            const c = await Raw.open(w.port);
            try {
              assert.ok(await c.send(header(req)));
              const before = await c.untilClosed(10_000).catch((e) => {
                throw new Error(`${what}: the sheep kept the connection open (${e.message})`);
              });
              // It may answer with an error first; never with success, never with a payload.
              if (before.length >= 48) {
                const r = decodeReply(before.subarray(0, 48), before.subarray(48));
                assert.notEqual(r.result, RES_SUCCESS, `${what}: answered SUCCESS`);
                assert.equal(r.id, req.id);
                assert.equal(r.dataLength, 0, `${what}: reply carries a payload`);
                assert.equal(before.length, 48, `${what}: bytes after the error reply`);
              } else {
                assert.equal(before.length, 0, `${what}: ${before.length} stray bytes`);
              }
            } finally {
              c.close();
            }
          }
          // Many connections at once streaming junk behind an oversized header.
          const junk = new Uint8Array(1 << 20).fill(0xab);
          await Promise.all(Array.from({ length: 16 }, async (_, i) => {
            const c = await Raw.open(w.port);
            try {
              const sent = await c.send(header({
                opcode: OP_WRITE_OBJ,
                flags: FLAG_CMD_WRITE,
                id: i,
                dataLength: 0xfffffff0,
                fill: objFill(vidToDataOid(w.vid, 0), 0),
              }));
              assert.ok(sent);
              for (let k = 0; k < 8; k++) if (!(await c.send(junk))) break;
              await c.untilClosed(10_000);
            } finally {
              c.close();
            }
          }));
          await assertHealthy(w, "oversized data_length");
          const rssAfter = rssKiB(w.sheep.pid);
          assert.ok(
            rssAfter - rssBefore < 64 * 1024,
            `RSS grew from ${rssBefore} KiB to ${rssAfter} KiB after oversized requests`,
          );
          // the largest legal request still works: exactly MAX_REQUEST_DATA (refused as a range
          // error, but answered on an open connection)
          const c = await Raw.open(w.port);
          try {
            assert.ok(
              await c.send(header({
                opcode: OP_READ_OBJ,
                id: 77,
                dataLength: MAX_REQUEST_DATA,
                fill: objFill(vidToDataOid(w.vid, 0), 0),
              })),
            );
            const r = await c.reply();
            expectResult(
              r,
              RES_INVALID_PARMS,
              "READ_OBJ of MAX_REQUEST_DATA bytes from a 4 MiB object",
            );
            assert.ok(await c.send(header({ opcode: OP_GET_CLUSTER_DEFAULT, id: 78 })));
            expectResult(await c.reply(), RES_SUCCESS, "same connection afterwards");
          } finally {
            c.close();
          }
        },
      );

      await t.step("truncated headers, then close", async () => {
        for (const n of [1, 16, 20, 47]) {
          const c = await Raw.open(w.port);
          const h = header({
            opcode: OP_WRITE_OBJ,
            flags: FLAG_CMD_WRITE,
            dataLength: 4096,
            fill: objFill(vidToDataOid(w.vid, 0), 0),
          });
          assert.ok(await c.send(h.subarray(0, n)));
          c.close();
        }
        // and one half-closed, so the server sees a clean EOF inside the header
        const c = await Raw.open(w.port);
        assert.ok(await c.send(header({ opcode: OP_READ_OBJ }).subarray(0, 30)));
        await c.closeWrite();
        const rest = await c.untilClosed(10_000);
        assert.equal(rest.length, 0, "no reply to a truncated header");
        c.close();
        await sleep(100);
        await assertHealthy(w, "truncated headers");
      });

      await t.step(
        "CMD_WRITE header with a truncated payload, then close: nothing written",
        async () => {
          // WRITE_OBJ over object 0, and CREATE_AND_WRITE_OBJ of a new object 5, each cut short.
          const cases = [
            {
              opcode: OP_WRITE_OBJ,
              len: 1 << 20,
              sent: 100_000,
              oid: vidToDataOid(w.vid, 0),
              offset: 0,
            },
            {
              opcode: OP_WRITE_OBJ,
              len: 4096,
              sent: 4095,
              oid: vidToDataOid(w.vid, 1),
              offset: 8192,
            },
            {
              opcode: OP_CREATE_AND_WRITE_OBJ,
              len: OBJ_SIZE,
              sent: OBJ_SIZE / 2,
              oid: vidToDataOid(w.vid, 5),
              offset: 0,
            },
          ];
          for (const k of cases) {
            const c = await Raw.open(w.port);
            assert.ok(
              await c.send(concat(
                header({
                  opcode: k.opcode,
                  flags: FLAG_CMD_WRITE,
                  dataLength: k.len,
                  fill: objFill(k.oid, k.offset),
                }),
                new Uint8Array(k.sent).fill(0xee),
              )),
            );
            c.close();
          }
          await sleep(200);
          const ex = await once(w.port, {
            opcode: OP_EXIST,
            fill: objFill(vidToDataOid(w.vid, 5), 0),
          });
          expectResult(ex, RES_NO_OBJ, "EXIST of the object whose create was cut short");
          const rd = await once(w.port, {
            opcode: OP_READ_OBJ,
            dataLength: 512,
            fill: objFill(vidToDataOid(w.vid, 5), 0),
          });
          expectResult(rd, RES_NO_OBJ, "READ_OBJ of the object whose create was cut short");
          await assertHealthy(w, "truncated payloads");
        },
      );

      await t.step("a client vanishing mid-request (4 MiB reads, reply half read)", async () => {
        const read4m = (id: number) =>
          header({
            opcode: OP_READ_OBJ,
            id,
            dataLength: OBJ_SIZE,
            fill: objFill(vidToDataOid(w.vid, id % 2), 0),
          });
        // header of a 4 MiB read, then gone at once
        {
          const c = await Raw.open(w.port);
          assert.ok(await c.send(read4m(1)));
          c.close();
        }
        // sixteen 4 MiB reads in flight, then gone
        {
          const c = await Raw.open(w.port);
          assert.ok(await c.send(concat(...Array.from({ length: 16 }, (_, i) => read4m(i)))));
          c.close();
        }
        // reads half of a reply, then gone while the sheep is still writing
        {
          const c = await Raw.open(w.port);
          assert.ok(await c.send(concat(...Array.from({ length: 8 }, (_, i) => read4m(i)))));
          const part = await c.readExact(48 + OBJ_SIZE / 2);
          assert.ok(part, "the first reply started");
          c.close();
        }
        await sleep(200);
        await assertHealthy(w, "vanishing clients");
      });

      await t.step(
        "NEW_VDI with a name payload that is not 256 bytes → INVALID_PARMS",
        async () => {
          const nameBytes = new TextEncoder().encode("badname");
          const payloads: { what: string; data: Uint8Array | null }[] = [
            { what: "no payload, no CMD_WRITE", data: null },
            { what: "empty payload with CMD_WRITE", data: new Uint8Array(0) },
            { what: "7 bytes", data: nameBytes },
            { what: "255 bytes", data: name256("badname").subarray(0, 255) },
            { what: "257 bytes", data: concat(name256("badname"), new Uint8Array(1)) },
            { what: "512 bytes", data: concat(name256("badname"), new Uint8Array(256)) },
          ];
          const c = await Raw.open(w.port);
          try {
            let id = 4000;
            for (const p of payloads) {
              const req: RawReq = {
                opcode: OP_NEW_VDI,
                id: ++id,
                flags: p.data ? FLAG_CMD_WRITE : 0,
                dataLength: p.data ? p.data.length : 0,
                fill: (v) => {
                  v.setBigUint64(16, 16n << 20n, true);
                  v.setUint8(28, 1);
                },
              };
              assert.ok(await c.send(p.data ? concat(header(req), p.data) : header(req)));
              const r = await c.reply();
              expectResult(r, RES_INVALID_PARMS, `NEW_VDI with ${p.what}`);
              assert.equal(r.id, id);
            }
            // the name was not created
            assert.ok(
              await c.send(concat(
                header({
                  opcode: OP_GET_VDI_INFO,
                  id: 4100,
                  flags: FLAG_CMD_WRITE,
                  dataLength: 512,
                }),
                name256("badname"),
                new Uint8Array(256),
              )),
            );
            expectResult(await c.reply(), RES_NO_VDI, "GET_VDI_INFO badname");
          } finally {
            c.close();
          }
          await assertHealthy(w, "bad NEW_VDI names");
        },
      );

      await t.step(
        "READ_OBJ / WRITE_OBJ / CREATE_AND_WRITE_OBJ past an object's end → INVALID_PARMS, nothing written",
        async () => {
          const obj0 = vidToDataOid(w.vid, 0);
          const obj1 = vidToDataOid(w.vid, 1);
          const inode = vidToVdiOid(w.vid);
          const reads: { oid: bigint; offset: number; len: number }[] = [
            { oid: obj0, offset: OBJ_SIZE - 512, len: 1024 },
            { oid: obj0, offset: OBJ_SIZE, len: 1 },
            { oid: obj0, offset: 0, len: OBJ_SIZE + 1 },
            { oid: obj0, offset: 0xffffffff, len: 16 },
            { oid: inode, offset: INODE_SIZE - 100, len: 200 },
            { oid: inode, offset: INODE_SIZE, len: 1 },
          ];
          const c = await Raw.open(w.port);
          try {
            let id = 5000;
            for (const r of reads) {
              assert.ok(
                await c.send(header({
                  opcode: OP_READ_OBJ,
                  id: ++id,
                  dataLength: r.len,
                  fill: objFill(r.oid, r.offset),
                })),
              );
              const rep = await c.reply();
              expectResult(
                rep,
                RES_INVALID_PARMS,
                `READ_OBJ ${r.oid.toString(16)} @${r.offset}+${r.len}`,
              );
              assert.equal(rep.dataLength, 0);
            }
            // the exact ends are fine
            assert.ok(
              await c.send(header({
                opcode: OP_READ_OBJ,
                id: ++id,
                dataLength: 512,
                fill: objFill(obj0, OBJ_SIZE - 512),
              })),
            );
            const tail = await c.reply();
            expectResult(tail, RES_SUCCESS, "READ_OBJ of the last 512 bytes");
            assert.ok(equalBytes(tail.data, w.objs[0].subarray(OBJ_SIZE - 512)));
            assert.ok(
              await c.send(header({
                opcode: OP_READ_OBJ,
                id: ++id,
                dataLength: 100,
                fill: objFill(inode, INODE_SIZE - 100),
              })),
            );
            expectResult(await c.reply(), RES_SUCCESS, "READ_OBJ of the inode's last 100 bytes");

            const writes: { opcode: number; oid: bigint; offset: number; len: number }[] = [
              { opcode: OP_WRITE_OBJ, oid: obj0, offset: OBJ_SIZE - 100, len: 200 },
              { opcode: OP_WRITE_OBJ, oid: obj1, offset: OBJ_SIZE, len: 1 },
              { opcode: OP_WRITE_OBJ, oid: obj0, offset: 0xfffffff0, len: 64 },
              { opcode: OP_WRITE_OBJ, oid: inode, offset: INODE_SIZE - 4, len: 8 },
              {
                opcode: OP_CREATE_AND_WRITE_OBJ,
                oid: vidToDataOid(w.vid, 7),
                offset: OBJ_SIZE - 10,
                len: 20,
              },
              {
                opcode: OP_CREATE_AND_WRITE_OBJ,
                oid: vidToDataOid(w.vid, 8),
                offset: 0,
                len: OBJ_SIZE + 1,
              },
            ];
            for (const k of writes) {
              assert.ok(
                await c.send(concat(
                  header({
                    opcode: k.opcode,
                    flags: FLAG_CMD_WRITE,
                    id: ++id,
                    dataLength: k.len,
                    fill: objFill(k.oid, k.offset),
                  }),
                  new Uint8Array(k.len).fill(0xee),
                )),
              );
              const rep = await c.reply();
              expectResult(
                rep,
                RES_INVALID_PARMS,
                `${hex(k.opcode)} ${k.oid.toString(16)} @${k.offset}+${k.len}`,
              );
            }
            for (const idx of [7, 8]) {
              assert.ok(
                await c.send(header({
                  opcode: OP_EXIST,
                  id: ++id,
                  fill: objFill(vidToDataOid(w.vid, idx), 0),
                })),
              );
              expectResult(await c.reply(), RES_NO_OBJ, `object ${idx} must not exist`);
            }
          } finally {
            c.close();
          }
          await assertHealthy(w, "out-of-range object I/O");
        },
      );

      await t.step(
        "READ_VDIS with a data_length other than 2,097,152 → INVALID_PARMS",
        async () => {
          const c = await Raw.open(w.port);
          try {
            let id = 6000;
            for (const len of [0, 1, 1 << 20, BITMAP_SIZE - 1, BITMAP_SIZE + 1, 2 * BITMAP_SIZE]) {
              assert.ok(await c.send(header({ opcode: OP_READ_VDIS, id: ++id, dataLength: len })));
              const r = await c.reply();
              expectResult(r, RES_INVALID_PARMS, `READ_VDIS data_length ${len}`);
              assert.equal(r.dataLength, 0);
            }
            assert.ok(
              await c.send(header({ opcode: OP_READ_VDIS, id: ++id, dataLength: BITMAP_SIZE })),
            );
            const ok = await c.reply();
            expectResult(ok, RES_SUCCESS, "READ_VDIS data_length 2,097,152");
            assert.equal(ok.data.length, BITMAP_SIZE);
          } finally {
            c.close();
          }
          await assertHealthy(w, "READ_VDIS lengths");
        },
      );

      await t.step(
        "pipelining: 32 requests in flight on one connection, replies matched by id, out of order",
        async () => {
          // A 4 MiB read first, then 31 small requests of several kinds, all in one write. Ids are
          // not sequential. The small ones complete before the big read (it needs disk and 4 MiB
          // of socket), so replies come back in another order than the requests went out.
          const c = await Raw.open(w.port);
          try {
            type Expect = { id: number; opcode: number; result: number; data?: Uint8Array };
            const expects: Expect[] = [];
            const reqs: Uint8Array[] = [];
            const idOf = (i: number) => (0x9e3779b9 * (i + 1)) >>> 0;
            reqs.push(header({
              opcode: OP_READ_OBJ,
              id: idOf(0),
              dataLength: OBJ_SIZE,
              fill: objFill(vidToDataOid(w.vid, 1), 0),
            }));
            expects.push({
              id: idOf(0),
              opcode: OP_READ_OBJ,
              result: RES_SUCCESS,
              data: w.objs[1],
            });
            for (let i = 1; i < 32; i++) {
              const id = idOf(i);
              switch (i % 4) {
                case 0: {
                  const off = i * 4096;
                  reqs.push(header({
                    opcode: OP_READ_OBJ,
                    id,
                    dataLength: 512,
                    fill: objFill(vidToDataOid(w.vid, 0), off),
                  }));
                  expects.push({
                    id,
                    opcode: OP_READ_OBJ,
                    result: RES_SUCCESS,
                    data: w.objs[0].subarray(off, off + 512),
                  });
                  break;
                }
                case 1:
                  reqs.push(header({ opcode: OP_GET_CLUSTER_DEFAULT, id }));
                  expects.push({ id, opcode: OP_GET_CLUSTER_DEFAULT, result: RES_SUCCESS });
                  break;
                case 2:
                  reqs.push(header({ opcode: 0x7e, id }));
                  expects.push({ id, opcode: 0x7e, result: RES_INVALID_PARMS });
                  break;
                case 3:
                  reqs.push(
                    header({ opcode: OP_EXIST, id, fill: objFill(vidToDataOid(w.vid, 0), 0) }),
                  );
                  expects.push({ id, opcode: OP_EXIST, result: RES_SUCCESS });
                  break;
              }
            }
            assert.ok(await c.send(concat(...reqs)));
            const order: number[] = [];
            const byId = new Map(expects.map((e) => [e.id, e]));
            for (let n = 0; n < 32; n++) {
              const r = await c.reply();
              const e = byId.get(r.id);
              assert.ok(e, `reply with unknown or repeated id ${hex(r.id)}`);
              byId.delete(r.id);
              order.push(expects.indexOf(e));
              assert.equal(r.opcode, e.opcode, `reply ${hex(r.id)}: opcode`);
              expectResult(r, e.result, `pipelined request ${hex(r.id)}`);
              if (e.data) assert.ok(equalBytes(r.data, e.data), `reply ${hex(r.id)}: payload`);
              else assert.equal(r.dataLength, 0);
            }
            assert.equal(byId.size, 0);
            assert.notEqual(
              order[0],
              0,
              `the 4 MiB read was answered first: order ${order.join(",")}`,
            );
          } finally {
            c.close();
          }

          // The project's own pipelined client, 32 concurrent requests with mixed sizes.
          const client = await SheepClient.connect({ host: "127.0.0.1", port: w.port });
          try {
            const jobs = Array.from({ length: 32 }, async (_, i) => {
              const idx = i % 2;
              const len = i % 5 === 0 ? OBJ_SIZE : 4096 * (i + 1);
              const off = len === OBJ_SIZE ? 0 : i * 8192;
              const req = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: len });
              req.obj.oid = vidToDataOid(w.vid, idx);
              req.obj.offset = off;
              const { rsp, data } = await client.request(req);
              assert.equal(rsp.result, RES_SUCCESS);
              assert.ok(equalBytes(data, w.objs[idx].subarray(off, off + len)), `job ${i}`);
            });
            const r = await withDeadline(Promise.all(jobs), STEP_DEADLINE_MS);
            assert.ok(r.ok, "32 pipelined requests did not finish in time");
          } finally {
            client.close();
          }
          await assertHealthy(w, "pipelining");
        },
      );

      await t.step(
        "a client that half-closes after its requests still gets every reply",
        async () => {
          const c = await Raw.open(w.port);
          try {
            const reqs = Array.from({ length: 8 }, (_, i) =>
              header({
                opcode: OP_READ_OBJ,
                id: 7000 + i,
                dataLength: OBJ_SIZE,
                fill: objFill(vidToDataOid(w.vid, i % 2), 0),
              }));
            assert.ok(await c.send(concat(...reqs)));
            await c.closeWrite();
            const seen = new Set<number>();
            for (let n = 0; n < 8; n++) {
              const r = await c.reply();
              expectResult(r, RES_SUCCESS, `read ${r.id} after half-close`);
              assert.ok(equalBytes(r.data, w.objs[(r.id - 7000) % 2]), `reply ${r.id} payload`);
              seen.add(r.id);
            }
            assert.equal(seen.size, 8);
            assert.equal((await c.untilClosed(10_000)).length, 0, "bytes after the last reply");
          } finally {
            c.close();
          }
          await assertHealthy(w, "a half-closed client");
        },
      );

      await t.step(
        "many clients at once, each misbehaving differently, while a good one works",
        async () => {
          const good = (async () => {
            for (let i = 0; i < 10; i++) {
              const got = await readObj(w, vidToDataOid(w.vid, 0), i * 65536, 65536);
              assert.ok(equalBytes(got, w.objs[0].subarray(i * 65536, (i + 1) * 65536)));
            }
          })();
          const bad = Array.from({ length: 24 }, async (_, i) => {
            const c = await Raw.open(w.port);
            try {
              switch (i % 4) {
                case 0:
                  await c.send(header({ opcode: OP_READ_OBJ }).subarray(0, 10));
                  break;
                case 1:
                  await c.send(
                    header({ opcode: OP_WRITE_OBJ, flags: FLAG_CMD_WRITE, dataLength: 0xffffffff }),
                  );
                  await c.untilClosed(10_000);
                  break;
                case 2:
                  await c.send(header({
                    opcode: OP_READ_OBJ,
                    dataLength: OBJ_SIZE,
                    fill: objFill(vidToDataOid(w.vid, 0), 0),
                  }));
                  break;
                case 3:
                  await c.send(concat(
                    header({
                      opcode: OP_WRITE_OBJ,
                      flags: FLAG_CMD_WRITE,
                      dataLength: 8192,
                      fill: objFill(vidToDataOid(w.vid, 0), OBJ_SIZE - 4096),
                    }),
                    new Uint8Array(8192).fill(0xee),
                  ));
                  expectResult(await c.reply(), RES_INVALID_PARMS, "write past the end");
                  break;
              }
            } finally {
              c.close();
            }
          });
          const r = await withDeadline(Promise.all([good, ...bad]), STEP_DEADLINE_MS);
          assert.ok(r.ok, "clients did not finish in time");
          await sleep(100);
          await assertHealthy(w, "a crowd of bad clients");
        },
      );
    } finally {
      await w.sheep.stop();
      await w.tmp.cleanup();
    }
  },
});
