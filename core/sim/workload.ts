/**
 * The simulated clients: concurrent streams of object writes (and some reads) through random
 * gateways, as a VM would issue them (CREATE_AND_WRITE_OBJ for an object's first write, WRITE_OBJ
 * afterwards, one request per block in flight at a time, an object's creation never concurrent with
 * other writes to it), and the model of what every block must hold:
 *
 * - a block's `acked` version is the last write acknowledged to the client (0: zeros);
 * - writes that failed (connection lost, error result) may or may not have landed: they stay
 *   `uncertain` until a later write of the block is acknowledged, and are written again before
 *   the checks, as a VM's block layer resends failed requests.
 * - writeback writes (Flag.CMD_WRITEBACK, as the NBD export sends them; `writebackChance`) are
 *   followed by FLUSH_NODES, as a guest flushes; the block counts as acknowledged only once the
 *   flush succeeded (a crash, here a power failure, may lose an unflushed write), else its
 *   version is uncertain.
 *
 * Block contents are a pure function of (oid, block, version), so a read is checked without
 * keeping the bytes.
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  Flag,
  Op,
  Res,
  SD_INODE_HEADER_SIZE,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { dataOidToIdx, oidToVid, vidToDataOid, vidToVdiOid } from "../hash/oid.ts";
import type { Reply } from "../net/client.ts";
import type { PeerConnection } from "../net/peer_pool.ts";
import type { Prng } from "../recovery/prng.ts";
import type { SimNode, SimWorld } from "./sim_node.ts";

/** Attempts of a check's read before it counts as unanswered (connections may be reset). */
const CHECK_READ_ATTEMPTS = 5;

/**
 * After a write fails, its block is not written again for this long (ms): a VM's driver reconnects
 * after a pause (QEMU's sheepdog driver waits before it resends), which is far longer than a
 * message can stay on the wire. Within that window a failed write may still land; after it, it
 * must not (a later acknowledged write must not be overwritten by an abandoned one).
 */
export const FAILED_WRITE_QUARANTINE_MS = 1000;

/** Shape of the workload. */
export interface WorkloadOptions {
  /** Bytes of one block (the unit of a write). */
  readonly blockSize: number;
  /** Bytes of one data object. */
  readonly objectSize: number;
  /** Client streams issuing requests concurrently. */
  readonly streams: number;
  /** Pause between two requests of a stream (ms range). */
  readonly thinkMs: readonly [number, number];
  /** Probability that a request is a read (of a settled block). */
  readonly readChance: number;
  /** Copies the VDIs were created with (sent in each request, as QEMU does). */
  readonly copies: number;
  /** See FAILED_WRITE_QUARANTINE_MS (0: a failed block may be written again at once). */
  readonly quarantineMs: number;
  /** Probability that a write is writeback, then flushed (0: never, no random draw). */
  readonly writebackChance: number;
}

/** One block's model. */
interface BlockState {
  acked: number;
  uncertain: number[];
  busy: boolean;
  /** No write before this virtual time (see FAILED_WRITE_QUARANTINE_MS). */
  quietUntil: number;
}

/** One object's model. */
interface ObjectState {
  readonly oid: bigint;
  /** The object was created by an acknowledged CREATE_AND_WRITE_OBJ. */
  created: boolean;
  /** A request on the object is in flight that forbids others (its creation). */
  creating: boolean;
  /**
   * Its VDI is being deleted or was deleted (vdi_deletion.ts): no request starts on it any more,
   * the checks read nothing of it and require it gone instead (when its creation was acked).
   */
  retired: boolean;
  readonly blocks: BlockState[];
}

/** A failure the workload saw while running (a read returning impossible data). */
export interface WorkloadViolation {
  readonly what: string;
}

/** The clients and their model. */
export class Workload {
  readonly #world: SimWorld;
  readonly #prng: Prng;
  readonly #opts: WorkloadOptions;
  readonly #gateways: () => SimNode[];
  readonly objects: ObjectState[] = [];
  readonly violations: WorkloadViolation[] = [];
  #version = 0;
  #stopping = false;
  #running = 0;
  readonly #conns = new Map<string, PeerConnection>();
  /** Counters for the report. */
  readonly stats = { writes: 0, acked: 0, failed: 0, reads: 0, flushes: 0 };

  constructor(
    world: SimWorld,
    prng: Prng,
    opts: WorkloadOptions,
    vids: readonly number[],
    objectsPerVdi: number,
    gateways: () => SimNode[],
  ) {
    assert(opts.objectSize % opts.blockSize === 0, "objects hold whole blocks");
    this.#world = world;
    this.#prng = prng;
    this.#opts = opts;
    this.#gateways = gateways;
    const nblocks = opts.objectSize / opts.blockSize;
    for (const vid of vids) {
      for (let idx = 0; idx < objectsPerVdi; idx++) {
        const blocks = Array.from({ length: nblocks }, () => ({
          acked: 0,
          uncertain: [],
          busy: false,
          quietUntil: 0,
        }));
        this.objects.push({
          oid: vidToDataOid(vid, idx),
          created: false,
          creating: false,
          retired: false,
          blocks,
        });
      }
    }
  }

  /** Streams still running. */
  get running(): number {
    return this.#running;
  }

  /** Starts the client streams; they run until stop(). */
  start(): void {
    this.#stopping = false;
    for (let i = 0; i < this.#opts.streams; i++) {
      this.#running++;
      this.#stream(i).finally(() => this.#running--);
    }
  }

  /** Asks the streams to end after their current request. */
  stop(): void {
    this.#stopping = true;
  }

  /**
   * Stops all I/O to VDI `vid`, as a VM is shut down before its VDI is deleted: no request starts
   * on its objects any more; resolves once none is in flight and no failed write of them may still
   * land (the quarantine, see FAILED_WRITE_QUARANTINE_MS), or false at `untilMs`.
   */
  async retire(vid: number, untilMs: number): Promise<boolean> {
    const { clock } = this.#world;
    const mine = this.objects.filter((o) => oidToVid(o.oid) === vid);
    for (const o of mine) o.retired = true;
    const quiet = () =>
      mine.every((o) =>
        !o.creating && o.blocks.every((b) => !b.busy && b.quietUntil <= clock.now())
      );
    while (!quiet()) {
      if (clock.now() >= untilMs) return false;
      await clock.sleep(50);
    }
    return true;
  }

  async #stream(id: number): Promise<void> {
    const { clock } = this.#world;
    while (!this.#stopping) {
      await clock.sleep(this.#prng.between(this.#opts.thinkMs[0], this.#opts.thinkMs[1]));
      if (this.#stopping) break;
      if (this.#prng.chance(this.#opts.readChance)) await this.#randomRead(id);
      else await this.#randomWrite(id);
    }
  }

  /** Blocks whose content is not certain yet (failed writes, unacknowledged creations). */
  unsettled(): number {
    let n = 0;
    for (const o of this.objects) {
      if (o.retired) continue;
      for (const b of o.blocks) if (b.uncertain.length > 0) n++;
    }
    return n;
  }

  /**
   * Writes every uncertain block again until it is acknowledged (a VM resending its failed
   * requests); false when some block is still uncertain at `untilMs`.
   */
  async settle(untilMs: number): Promise<boolean> {
    const { clock } = this.#world;
    while (clock.now() < untilMs) {
      const todo: [ObjectState, number][] = [];
      for (const o of this.objects) {
        o.blocks.forEach((b, i) => {
          if (b.uncertain.length > 0 && this.#writable(o, i)) todo.push([o, i]);
        });
      }
      if (todo.length === 0 && this.unsettled() === 0) return true;
      for (const [o, i] of todo) {
        if (!this.#writable(o, i)) continue;
        await this.#write(-1, o, i);
      }
      await clock.sleep(100);
    }
    return this.unsettled() === 0;
  }

  async #randomWrite(stream: number): Promise<void> {
    const o = this.#prng.pick(this.objects);
    const i = this.#prng.int(o.blocks.length);
    if (!this.#writable(o, i)) return;
    await this.#write(stream, o, i);
  }

  /** A write of block `i` may start now. */
  #writable(o: ObjectState, i: number): boolean {
    const b = o.blocks[i];
    if (o.retired || o.creating || b.busy || b.quietUntil > this.#world.clock.now()) return false;
    // A creation writes the whole object: nothing else of it may be in flight or quarantined.
    return o.created || o.blocks.every((x) => !x.busy && x.quietUntil <= this.#world.clock.now());
  }

  async #write(stream: number, o: ObjectState, i: number): Promise<void> {
    const b = o.blocks[i];
    const version = ++this.#version;
    const create = !o.created;
    const { blockSize, writebackChance } = this.#opts;
    const writeback = writebackChance > 0 && this.#prng.chance(writebackChance);
    const flags = Flag.CMD_WRITE | (writeback ? Flag.CMD_WRITEBACK : 0);
    const req = SdReq.of(create ? Op.CREATE_AND_WRITE_OBJ : Op.WRITE_OBJ, SD_PROTO_VER, {
      flags,
      dataLength: blockSize,
    });
    req.obj.oid = o.oid;
    req.obj.offset = i * blockSize;
    req.obj.copies = this.#opts.copies;
    b.busy = true;
    if (create) o.creating = true;
    this.stats.writes++;
    const what = `${create ? "create" : "write"}${writeback ? " (writeback)" : ""} ${
      o.oid.toString(16)
    }[${i}] v${version}`;
    let ok = false;
    try {
      const r = await this.#send(stream, req, blockContent(o.oid, i, version, blockSize));
      ok = r !== null && r.rsp.result === Res.SUCCESS;
      if (!ok && r !== null) this.#world.trace.event(`${what}: result ${r.rsp.result}`);
      // As QEMU: a new object becomes part of the disk when the inode names it, and the write
      // completes only then (recovery takes an object no inode names for a reclaimed one).
      if (ok && create) ok = await this.#reference(stream, o.oid, what, flags);
      if (ok && writeback) ok = await this.#flush(stream, what);
    } finally {
      b.busy = false;
      if (create) o.creating = false;
    }
    if (ok) {
      this.stats.acked++;
      b.acked = version;
      b.uncertain = [];
      if (create) {
        o.created = true;
        // A creation writes zeros everywhere else: earlier failed creations are gone.
        for (const other of o.blocks) if (other !== b) other.uncertain = [];
      }
      this.#world.trace.event(`${what} acked`);
    } else {
      this.stats.failed++;
      b.uncertain.push(version);
      b.quietUntil = this.#world.clock.now() + this.#opts.quarantineMs;
      this.#world.trace.event(`${what} failed`);
    }
  }

  /** FLUSH_NODES through a random gateway, as a guest's flush; true when acknowledged. */
  async #flush(stream: number, what: string): Promise<boolean> {
    this.stats.flushes++;
    const r = await this.#send(stream, SdReq.of(Op.FLUSH_NODES, SD_SHEEP_PROTO_VER, {}));
    const ok = r !== null && r.rsp.result === Res.SUCCESS;
    if (!ok && r !== null) this.#world.trace.event(`${what}: flush result ${r.rsp.result}`);
    return ok;
  }

  /** Writes the inode's data_vdi_id entry of a created object; true when acknowledged. */
  async #reference(stream: number, oid: bigint, what: string, flags: number): Promise<boolean> {
    const vid = oidToVid(oid);
    const req = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags, dataLength: 4 });
    req.obj.oid = vidToVdiOid(vid);
    req.obj.offset = SD_INODE_HEADER_SIZE + dataOidToIdx(oid) * 4;
    req.obj.copies = this.#opts.copies;
    const entry = new Uint8Array(4);
    new DataView(entry.buffer).setUint32(0, vid, true);
    const r = await this.#send(stream, req, entry);
    const ok = r !== null && r.rsp.result === Res.SUCCESS;
    if (!ok && r !== null) this.#world.trace.event(`${what}: inode update result ${r.rsp.result}`);
    return ok;
  }

  async #randomRead(stream: number): Promise<void> {
    const o = this.#prng.pick(this.objects);
    if (!o.created || o.creating) return;
    const i = this.#prng.int(o.blocks.length);
    if (o.retired) return;
    const b = o.blocks[i];
    if (b.busy) return;
    const { blockSize } = this.#opts;
    const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: blockSize });
    req.obj.oid = o.oid;
    req.obj.offset = i * blockSize;
    req.obj.copies = this.#opts.copies;
    b.busy = true;
    this.stats.reads++;
    let r: Reply | null;
    try {
      r = await this.#send(stream, req);
    } finally {
      b.busy = false;
    }
    if (r === null || r.rsp.result !== Res.SUCCESS) return;
    const allowed = [b.acked, ...b.uncertain];
    const got = allowed.find((v) => equalBytes(r.data, blockContent(o.oid, i, v, blockSize)));
    if (got === undefined) {
      const what = `read of ${o.oid.toString(16)}[${i}] returned ${describeBlock(r.data)}, ` +
        `expected one of v${allowed.join(", v")}`;
      this.violations.push({ what });
      this.#world.trace.event(`VIOLATION ${what}`);
    }
  }

  /** Sends through a random serving gateway; null when the request did not get a reply. */
  async #send(stream: number, req: SdReq, data?: Uint8Array): Promise<Reply | null> {
    const gws = this.#gateways();
    if (gws.length === 0) return null;
    const gw = this.#prng.pick(gws);
    const key = `client${stream}>${gw.name}`;
    try {
      let c = this.#conns.get(key);
      if (!c || c.closed) {
        c = await this.#world.net.connect(`client${stream}`, gw.name);
        this.#conns.set(key, c);
      }
      return await c.request(req, data);
    } catch (e) {
      this.#world.trace.event(`client${stream} via ${gw.name}: ${String(e)}`);
      return null;
    }
  }

  /**
   * Reads a whole object through `gw` (for the checks), on a new connection each attempt (a
   * connection may be reset); null when it never answered.
   */
  async readObject(gw: SimNode, oid: bigint): Promise<Reply | null> {
    for (let attempt = 0; attempt < CHECK_READ_ATTEMPTS; attempt++) {
      const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: this.#opts.objectSize });
      req.obj.oid = oid;
      req.obj.copies = this.#opts.copies;
      try {
        const c = await this.#world.net.connect("checker", gw.name);
        try {
          return await c.request(req);
        } finally {
          c.close();
        }
      } catch (e) {
        this.#world.trace.event(`checker via ${gw.name}: ${String(e)}`);
      }
    }
    return null;
  }

  /** The bytes object `o` must hold now (every block settled). */
  expectedObject(o: ObjectState): Uint8Array {
    const { blockSize, objectSize } = this.#opts;
    const out = new Uint8Array(objectSize);
    o.blocks.forEach((b, i) => {
      assert(b.uncertain.length === 0, "expectedObject() of a settled object");
      out.set(blockContent(o.oid, i, b.acked, blockSize), i * blockSize);
    });
    return out;
  }
}

/**
 * The content of block `i` of `oid` at `version` (version 0: zeros): a header naming what it is,
 * then bytes from a small generator seeded by all three, so that any misplaced, stale or torn
 * block is told apart.
 */
export function blockContent(oid: bigint, i: number, version: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (version === 0) return out;
  const v = new DataView(out.buffer);
  v.setUint32(0, version, true);
  v.setUint32(4, i, true);
  v.setBigUint64(8, oid, true);
  let x = ((version * 0x9e3779b1 + i * 0x85ebca6b + Number(oid & 0xffffffffn)) | 1) >>> 0;
  for (let p = 16; p + 4 <= size; p += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    v.setUint32(p, x, true);
  }
  return out;
}

/** "v7 of block 3" or "zeros" or "unknown bytes", for reports. */
export function describeBlock(b: Uint8Array): string {
  if (b.every((x) => x === 0)) return "zeros";
  if (b.length < 16) return "a short block";
  const v = new DataView(b.buffer, b.byteOffset);
  return `v${v.getUint32(0, true)} of block ${v.getUint32(4, true)} of ${
    v.getBigUint64(8, true).toString(16)
  }`;
}

/** Byte equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
