/**
 * Support for the recovery tests with real processes (issue 4): restartable sheep slots with fixed
 * ports and store directories, a writer of checksummed 4 KiB blocks that tracks the last
 * acknowledged version of every block, and the checks after recovery (every object on exactly
 * its ring holders, every replica equal to the model, no stale copy left).
 *
 * Block content: 16-byte header (magic, low 32 bits of the oid, block index, version), then
 * bytes from a generator seeded by the three, and a 4-byte FNV-1a checksum of the rest at the
 * end, so a block read back identifies itself and any corruption shows.
 *
 * @module
 */

import assert from "node:assert/strict";
import { SheepClient } from "../core/net/client.ts";
import { SdReq } from "../core/proto/header.ts";
import { Op, Res, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "../core/proto/constants.ts";
import { decodeClusterInfo } from "../core/proto/cluster_info.ts";
import { decodeRecoveryState } from "../core/proto/stat.ts";
import type { SdNode } from "../core/proto/node.ts";
import { buildRing } from "../core/placement/ring.ts";
import { vidOfName, vidToDataOid } from "../core/hash/oid.ts";
import { Prng } from "../core/recovery/prng.ts";
import {
  expandClusterSpec,
  freePort,
  LOCAL_TEMPLATE,
  runDog,
  runDogOk,
  type SheepProcess,
  sleep,
  startSheep,
  type TempDir,
  tempDir,
  waitUntil,
} from "./harness/mod.ts";
import { connectSheep } from "./harness/proto.ts";

export const BLOCK = 4096;
export const OBJ = 4 * 1024 * 1024;
const BLOCKS_PER_OBJ = OBJ / BLOCK;
const MAGIC = 0x5344424b; // "SDBK"
const CLUSTER_INFO_SIZE = 491_568;

/** The content of block `b` of `oid` at `version`. */
export function blockBytes(oid: bigint, b: number, version: number): Uint8Array {
  const out = new Uint8Array(BLOCK);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, Number(oid & 0xffffffffn), true);
  v.setUint32(8, b, true);
  v.setUint32(12, version, true);
  let x = (Number(oid & 0xffffffn) * 2654435761 ^ (b * 40503) ^ Math.imul(version, 0x9e3779b1)) >>>
    0;
  if (x === 0) x = 1;
  for (let i = 16; i < BLOCK - 4; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    v.setUint32(i, x, true);
  }
  v.setUint32(BLOCK - 4, fnv1a(out.subarray(0, BLOCK - 4)), true);
  return out;
}

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h;
}

/** What a block says about itself, or null when its checksum is wrong. */
export function parseBlock(
  data: Uint8Array,
): { oidLow: number; block: number; version: number } | null {
  if (data.length !== BLOCK) return null;
  const v = new DataView(data.buffer, data.byteOffset, BLOCK);
  if (v.getUint32(0, true) !== MAGIC) return null;
  if (v.getUint32(BLOCK - 4, true) !== fnv1a(data.subarray(0, BLOCK - 4))) return null;
  return {
    oidLow: v.getUint32(4, true),
    block: v.getUint32(8, true),
    version: v.getUint32(12, true),
  };
}

/** The whole object at the given block versions. */
export function objectImage(oid: bigint, versions: Uint32Array): Uint8Array {
  const out = new Uint8Array(OBJ);
  for (let b = 0; b < BLOCKS_PER_OBJ; b++) out.set(blockBytes(oid, b, versions[b]), b * BLOCK);
  return out;
}

// -----------------------------------------------------------------------------------------------
// Sheep slots

/** One sheep that can be killed and started again with the same address and store. */
export class Slot {
  readonly index: number;
  readonly port: number;
  readonly dir: string;
  readonly zone: number;
  proc: SheepProcess | null = null;
  readonly #spec: string;
  readonly #extra: string[];
  readonly #all: SheepProcess[];

  constructor(index: number, root: string, spec: string, extra: string[], all: SheepProcess[]) {
    this.index = index;
    this.port = freePort();
    this.dir = `${root}/sheep${index}`;
    this.zone = index;
    this.#spec = spec;
    this.#extra = extra;
    this.#all = all;
  }

  get up(): boolean {
    return this.proc !== null && this.proc.running;
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts it (does not wait). */
  start(extra: string[] = []): SheepProcess {
    assert.ok(!this.up, `sheep ${this.index} is already running`);
    const p = startSheep({
      dir: this.dir,
      port: this.port,
      zone: this.zone,
      cluster: this.#spec,
      extraArgs: [...this.#extra, ...extra],
      logFile: `${this.dir}.log`,
    });
    this.proc = p;
    this.#all.push(p);
    return p;
  }

  async kill(): Promise<void> {
    if (this.proc) await this.proc.kill();
    this.proc = null;
  }

  dog(args: string[], deadlineMs = 60_000) {
    return runDog(args, { port: this.port, deadlineMs });
  }
}

/** A set of slots on one local-driver path. */
export class Slots implements AsyncDisposable {
  readonly slots: Slot[] = [];
  readonly root: string;
  readonly spec: string;
  readonly #tmp: TempDir;
  readonly #all: SheepProcess[] = [];
  readonly #extra: string[];

  private constructor(tmp: TempDir, extra: string[], spec: string) {
    this.#tmp = tmp;
    this.root = tmp.path;
    this.spec = spec;
    this.#extra = extra;
  }

  /**
   * `n` slots on one cluster: the local driver by default, or `driver`, a `-c` template
   * expanded by expandClusterSpec ({root}, {id}), e.g. `corosync:{id}`.
   */
  static async create(
    n: number,
    extra: string[] = ["-n"],
    prefix = "rec",
    driver?: string,
  ): Promise<Slots> {
    const tmp = await tempDir(prefix);
    const spec = expandClusterSpec(driver ?? LOCAL_TEMPLATE, tmp.path);
    const s = new Slots(tmp, extra, spec);
    for (let i = 0; i < n; i++) s.add();
    return s;
  }

  add(): Slot {
    const slot = new Slot(this.slots.length, this.root, this.spec, this.#extra, this.#all);
    this.slots.push(slot);
    return slot;
  }

  up(): Slot[] {
    return this.slots.filter((s) => s.up);
  }

  /** Starts the given slots at once and waits until each accepts connections. */
  async startAll(which: Slot[] = this.slots): Promise<void> {
    const ps = which.map((s) => s.start());
    await Promise.all(ps.map((p) => p.waitReady(45_000)));
  }

  async format(copies: number): Promise<void> {
    await runDogOk(["cluster", "format", "-c", String(copies)], { port: this.slots[0].port });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.#all.map((p) => p.stop(10_000).catch(() => {})));
    await this.#tmp.cleanup();
  }
}

// -----------------------------------------------------------------------------------------------
// Raw requests

export async function rawClusterInfo(c: SheepClient) {
  const req = SdReq.of(Op.CLUSTER_INFO, SD_SHEEP_PROTO_VER, { dataLength: CLUSTER_INFO_SIZE });
  const { rsp, data } = await c.request(req);
  if (rsp.result !== Res.SUCCESS) throw new Error(`CLUSTER_INFO: result ${rsp.result}`);
  return decodeClusterInfo(data);
}

export async function rawRecoveryState(c: SheepClient) {
  const req = SdReq.of(Op.STAT_RECOVERY, SD_SHEEP_PROTO_VER, { dataLength: 24 });
  const { rsp, data } = await c.request(req);
  if (rsp.result !== Res.SUCCESS) throw new Error(`STAT_RECOVERY: result ${rsp.result}`);
  return decodeRecoveryState(data);
}

/** One request on a fresh connection to `port` (closed after). */
export async function once<T>(port: number, f: (c: SheepClient) => Promise<T>): Promise<T> {
  const c = await connectSheep(port);
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

/** The stale copies in a store directory. */
export function staleFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/obj/.stale`)].map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * Waits until every running slot is at the same epoch with `members` members, not recovering,
 * and has no stale copies left (the cluster-wide completion purged them). Returns the epoch's
 * nodes and the time it took.
 */
export async function waitRecovered(
  slots: Slots,
  members: number,
  deadlineMs = 60_000,
): Promise<{ nodes: SdNode[]; epoch: number; ms: number }> {
  const t0 = Date.now();
  let last = "";
  let nodes: SdNode[] = [];
  let epoch = 0;
  await waitUntil(
    async () => {
      const up = slots.up();
      try {
        const infos = await Promise.all(up.map((s) => once(s.port, rawClusterInfo)));
        const states = await Promise.all(up.map((s) => once(s.port, rawRecoveryState)));
        const stale = up.map((s) => staleFiles(s.dir).length);
        last = up.map((s, i) =>
          `${s.index}: epoch ${infos[i].epoch} status ${infos[i].status} nodes ${
            infos[i].nodes.length
          } recovering ${states[i].inRecovery} ${states[i].nrFinished}/${states[i].nrTotal} stale ${
            stale[i]
          }`
        ).join("; ");
        const e = infos[0].epoch;
        const ok = infos.every((ci) => ci.epoch === e && ci.status === 1) &&
          infos[0].nodes.length === members && states.every((st) => !st.inRecovery) &&
          stale.every((n) => n === 0);
        if (ok) {
          nodes = infos[0].nodes;
          epoch = e;
        }
        return ok;
      } catch (err) {
        last = String(err);
        return false;
      }
    },
    deadlineMs,
    "recovery to finish everywhere",
    200,
  ).catch((e) => {
    throw new Error(`${e.message}\n  last: ${last}`);
  });
  return { nodes, epoch, ms: Date.now() - t0 };
}

// -----------------------------------------------------------------------------------------------
// The writer

/** Counts of a Writer. */
export interface WriterCounts {
  writesAcked: number;
  /** Writes whose outcome is unknown (the connection to the gateway broke); redone. */
  writesUnsure: number;
  /** Requests a client saw fail with a result code (must stay 0). */
  errors: string[];
  readsVerified: number;
}

/**
 * Writes and reads checksummed 4 KiB blocks of a fixed set of data objects through one sheep at
 * a time (the first of `gateways()` that answers), and keeps the last acknowledged version of
 * every block. A write whose connection breaks is unknown: the block is written again with a new
 * version through another sheep until one is acknowledged, so at the end the model is exact.
 */
export class Writer {
  readonly oids: bigint[];
  readonly versions = new Map<bigint, Uint32Array>();
  /** Blocks whose last write is not acknowledged yet (content may be either version). */
  readonly unsure = new Map<bigint, Set<number>>();
  readonly counts: WriterCounts = { writesAcked: 0, writesUnsure: 0, errors: [], readsVerified: 0 };
  readonly rng: Prng;
  /** Result codes that are expected for now (e.g. WAIT_FOR_JOIN while the cluster restarts). */
  readonly tolerate = new Set<number>();
  /** Called after every acknowledged write with its start time and latency (ms). */
  onAck: ((start: number, ms: number) => void) | null = null;
  readonly #gateways: () => number[];
  #client: SheepClient | null = null;
  #clientPort = 0;
  #stop = false;
  #running: Promise<void> | null = null;
  #version = 1;

  constructor(vids: number[], objectsPerVdi: number, seed: number, gateways: () => number[]) {
    this.oids = [];
    for (const vid of vids) {
      for (let i = 0; i < objectsPerVdi; i++) this.oids.push(vidToDataOid(vid, i));
    }
    this.rng = new Prng(seed);
    this.#gateways = gateways;
  }

  /** Creates every object with version 0 in all blocks. */
  async createAll(): Promise<void> {
    for (const oid of this.oids) {
      const v = new Uint32Array(BLOCKS_PER_OBJ);
      await this.#withClient(async (c) => {
        const req = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
          flags: 1,
          dataLength: OBJ,
        });
        req.obj.oid = oid;
        const { rsp } = await c.request(req, objectImage(oid, v));
        if (rsp.result !== Res.SUCCESS) {
          throw new Error(`create ${oid.toString(16)}: ${rsp.result}`);
        }
      });
      this.versions.set(oid, v);
    }
  }

  /** Starts writing (and every `readEvery` writes, reading a block back) until stop(). */
  start(readEvery = 4): void {
    this.#stop = false;
    this.#running = (async () => {
      let n = 0;
      while (!this.#stop) {
        await this.writeOne();
        if (++n % readEvery === 0) await this.readOne();
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#running;
    this.#running = null;
    // Settle every unsure block with an acknowledged write.
    for (const [oid, set] of [...this.unsure]) {
      for (const b of [...set]) await this.#write(oid, b);
    }
    this.#client?.close();
    this.#client = null;
  }

  /** One write of a random block. */
  async writeOne(): Promise<void> {
    const oid = this.rng.pick(this.oids);
    await this.#write(oid, this.rng.int(BLOCKS_PER_OBJ));
  }

  async #write(oid: bigint, b: number): Promise<void> {
    const started = Date.now();
    for (;;) {
      const version = this.#version++;
      const data = blockBytes(oid, b, version);
      const req = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: 1, dataLength: BLOCK });
      req.obj.oid = oid;
      req.obj.offset = b * BLOCK;
      let result: number;
      try {
        result = await this.#withClient(async (c) => (await c.request(req, data)).rsp.result);
      } catch {
        // The gateway died with the write in flight: unknown; write again elsewhere.
        this.counts.writesUnsure++;
        this.#markUnsure(oid, b, true);
        continue;
      }
      if (result !== Res.SUCCESS && this.tolerate.has(result)) {
        // Expected while the whole cluster is down or waiting: unknown, write again later.
        this.counts.writesUnsure++;
        this.#markUnsure(oid, b, true);
        await sleep(100);
        continue;
      }
      if (result !== Res.SUCCESS) {
        this.counts.errors.push(
          `write ${oid.toString(16)} block ${b}: result 0x${result.toString(16)}`,
        );
        this.#markUnsure(oid, b, true);
        await sleep(100);
        if (this.counts.errors.length > 50) throw new Error(this.counts.errors.join("\n"));
        continue;
      }
      this.versions.get(oid)![b] = version;
      this.#markUnsure(oid, b, false);
      this.counts.writesAcked++;
      this.onAck?.(started, Date.now() - started);
      return;
    }
  }

  #markUnsure(oid: bigint, b: number, unsure: boolean): void {
    let set = this.unsure.get(oid);
    if (unsure) {
      if (!set) this.unsure.set(oid, set = new Set());
      set.add(b);
    } else if (set) {
      set.delete(b);
      if (set.size === 0) this.unsure.delete(oid);
    }
  }

  /** Reads a random settled block back and checks it is the last acknowledged version. */
  async readOne(): Promise<void> {
    const oid = this.rng.pick(this.oids);
    const b = this.rng.int(BLOCKS_PER_OBJ);
    if (this.unsure.get(oid)?.has(b)) return;
    const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: BLOCK });
    req.obj.oid = oid;
    req.obj.offset = b * BLOCK;
    let reply;
    try {
      reply = await this.#withClient((c) => c.request(req));
    } catch {
      return; // the gateway died: nothing learnt
    }
    if (this.tolerate.has(reply.rsp.result)) return;
    if (reply.rsp.result !== Res.SUCCESS) {
      this.counts.errors.push(
        `read ${oid.toString(16)} block ${b}: result 0x${reply.rsp.result.toString(16)}`,
      );
      return;
    }
    const want = this.versions.get(oid)![b];
    const got = parseBlock(reply.data);
    if (!got || got.version !== want || got.block !== b) {
      this.counts.errors.push(
        `read ${oid.toString(16)} block ${b}: got ${JSON.stringify(got)}, want version ${want}`,
      );
      return;
    }
    this.counts.readsVerified++;
  }

  /** Runs `f` on a connection to a live gateway, reconnecting elsewhere when it breaks. */
  async #withClient<T>(f: (c: SheepClient) => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      if (!this.#client || this.#client.closed) {
        this.#client = null;
        for (const port of this.#gateways()) {
          try {
            this.#client = await connectSheep(port);
            this.#clientPort = port;
            break;
          } catch {
            // next
          }
        }
        if (!this.#client) {
          if (attempt > 600) throw new Error("no gateway answers");
          await sleep(100);
          continue;
        }
      }
      try {
        return await f(this.#client);
      } catch (e) {
        this.#client.close();
        this.#client = null;
        throw e;
      }
    }
  }

  /** The port of the gateway in use. */
  get gatewayPort(): number {
    return this.#clientPort;
  }
}

// -----------------------------------------------------------------------------------------------
// Checks

/**
 * Every object of `writer` is on exactly its holders in the ring of `nodes` (files on disk),
 * every holder's file equals the model, and no slot has a stale copy. Returns the number of
 * divergent replicas and lost blocks found (the assertion message lists the first ones).
 */
export function checkPlacement(
  slots: Slots,
  nodes: SdNode[],
  copies: number,
  writer: Writer,
): { divergent: number; lost: number; files: number } {
  const ring = buildRing(nodes);
  const byAddr = new Map(slots.slots.map((s) => [s.addr, s]));
  const problems: string[] = [];
  let divergent = 0;
  let lost = 0;
  let files = 0;
  for (const oid of writer.oids) {
    const name = oid.toString(16).padStart(16, "0");
    const holders = new Set(
      ring.place(oid, Math.min(copies, ring.nrZones)).map((n) =>
        `${[...n.nid.addr.subarray(12)].join(".")}:${n.nid.port}`
      ),
    );
    const want = objectImage(oid, writer.versions.get(oid)!);
    for (const s of slots.up()) {
      let data: Uint8Array | null = null;
      try {
        data = Deno.readFileSync(`${s.dir}/obj/${name}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      if (!holders.has(s.addr)) {
        if (data) problems.push(`${name} on ${s.addr}, not a holder`);
        continue;
      }
      if (!data) {
        problems.push(`${name} missing on holder ${s.addr}`);
        divergent++;
        continue;
      }
      files++;
      if (data.length !== OBJ || !equal(data, want)) {
        divergent++;
        for (let b = 0; b < BLOCKS_PER_OBJ; b++) {
          const got = parseBlock(data.subarray(b * BLOCK, (b + 1) * BLOCK));
          if (got?.version !== writer.versions.get(oid)![b]) {
            lost++;
            problems.push(
              `${name} on ${s.addr} block ${b}: version ${got?.version} want ${
                writer.versions.get(oid)![b]
              }`,
            );
            break;
          }
        }
      }
    }
    for (const h of holders) {
      if (!byAddr.get(h)?.up) problems.push(`holder ${h} of ${name} is down`);
    }
  }
  for (const s of slots.up()) {
    const st = staleFiles(s.dir);
    if (st.length > 0) problems.push(`${s.addr} keeps ${st.length} stale copies`);
  }
  assert.equal(problems.length, 0, problems.slice(0, 20).join("\n"));
  return { divergent, lost, files };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Creates a VDI with dog (so every sheep knows its copies) and returns its id. */
export async function createVdi(
  port: number,
  name: string,
  size: string,
  copies?: number,
): Promise<number> {
  const args = ["vdi", "create", name, size];
  if (copies !== undefined) args.push("-c", String(copies));
  await runDogOk(args, { port });
  const vid = vidOfName(name);
  const r = await runDogOk(["vdi", "list", "-r", name], { port });
  assert.ok(
    r.stdoutText.includes(` ${vid.toString(16)} `),
    `vid ${vid.toString(16)}: ${r.stdoutText}`,
  );
  return vid;
}
