/**
 * Snapshot, clone and delete (issue 5): time and space for VDIs of several sizes with half of
 * their data objects written, on three sheep (zones 0-2, copies 3, durable writes: no `-n`).
 *
 * Per size: a fresh cluster; the VDI is created and every other object written (a 4 KiB write
 * allocates the whole 4 MiB object); then
 * - snapshot: the tag written into the header and NEW_VDI (snapid 1), as dog and QEMU send them,
 *   timed over raw requests (the sheep's share), repeated along a chain of snapshots;
 * - clone: NEW_VDI of a new name from the latest snapshot, repeated;
 * - the bytes every store allocated (blocks on disk, all sheep summed) before and after each;
 * - delete of a clone (what dog sends: data_vdi_id zeroed in batches of 128 entries, each
 *   replaced entry releasing its reference through the ledger, then DEL_VDI);
 * - delete of every member left, working VDI and snapshots, which releases the last references
 *   and removes every data object: the time, and that no data or ledger object remains.
 * One `dog vdi snapshot` is also timed as a process (Deno start-up included), for reference.
 *
 * Run alone: `deno run --allow-all --v8-flags=--stack-size=4096 bench/snapshot_bench.ts --help`;
 * also part of `deno task bench`.
 *
 * @module
 */

import { SheepClient } from "../core/net/client.ts";
import { Flag, Op, Res, SD_INODE_HEADER_SIZE, SD_PROTO_VER } from "../core/proto/constants.ts";
import { SdReq } from "../core/proto/header.ts";
import { encodeFixedString } from "../core/proto/strings.ts";
import { isDataObj, isLedgerObj, parseOid, vidToDataOid, vidToVdiOid } from "../core/hash/oid.ts";
import { type Cluster, startCluster } from "../tests/harness/mod.ts";
import { median } from "./harness/raw_limits.ts";

const OBJ = 4 << 20;
const GIB = 1 << 30;
const FILL_DEPTH = 16;
const DELETE_BATCH = 128;
const TARGET_MS = 100;

/** Options of {@linkcode runSnapshotBench}. */
export interface SnapshotBenchOptions {
  /** VDI sizes in GiB (default 1 and 10). */
  sizesGiB: number[];
  /** Share of the objects written (default 0.5). */
  fill: number;
  /** Snapshots and clones timed per size (default 5). */
  repeats: number;
  onProgress?: (line: string) => void;
}

export const SNAPSHOT_BENCH_DEFAULTS: SnapshotBenchOptions = {
  sizesGiB: [1, 10],
  fill: 0.5,
  repeats: 5,
};

/** What one size measured (times in ms, bytes allocated on disk over all stores). */
export interface SnapshotSizeResult {
  sizeGiB: number;
  objectsWritten: number;
  fillSeconds: number;
  snapshotMs: number[];
  cloneMs: number[];
  snapshotBytes: number[];
  cloneBytes: number[];
  deleteCloneMs: number[];
  deleteAllMs: number;
  deleteAllMembers: number;
  dogSnapshotMs: number;
  leftObjects: number;
}

/** The report. */
export interface SnapshotBenchReport {
  startedAt: string;
  options: Omit<SnapshotBenchOptions, "onProgress">;
  results: SnapshotSizeResult[];
}

class Raw {
  constructor(readonly c: SheepClient) {}

  async req(
    opcode: number,
    set: (r: SdReq) => void,
    data?: Uint8Array,
  ): Promise<{ result: number; vid: number }> {
    const r = SdReq.of(opcode, SD_PROTO_VER, {
      flags: data ? Flag.CMD_WRITE : 0,
      dataLength: data?.length ?? 0,
    });
    set(r);
    const { rsp } = await this.c.request(r, data);
    if (rsp.result !== Res.SUCCESS) {
      throw new Error(`opcode 0x${opcode.toString(16)}: result 0x${rsp.result.toString(16)}`);
    }
    return { result: rsp.result, vid: rsp.vdi.vdiId };
  }

  write(oid: bigint, offset: number, data: Uint8Array, create = false) {
    return this.req(create ? Op.CREATE_AND_WRITE_OBJ : Op.WRITE_OBJ, (r) => {
      r.obj.oid = oid;
      r.obj.offset = offset;
    }, data);
  }

  async newVdi(name: string, size: bigint, base: number, snapshot: boolean): Promise<number> {
    return (await this.req(Op.NEW_VDI, (r) => {
      r.vdi.vdiSize = size;
      r.vdi.baseVdiId = base;
      r.vdi.snapid = snapshot ? 1 : 0;
    }, encodeFixedString(name, 256))).vid;
  }

  delVdi(name: string, tag: string) {
    const p = new Uint8Array(512);
    p.set(encodeFixedString(name, 256));
    p.set(encodeFixedString(tag, 256), 256);
    return this.req(Op.DEL_VDI, () => {}, p);
  }
}

async function allocatedBytes(cl: Cluster): Promise<number> {
  let total = 0;
  for (const s of cl.sheep) {
    for await (const e of Deno.readDir(`${s.dir}/obj`)) {
      if (!e.isFile) continue;
      const st = await Deno.stat(`${s.dir}/obj/${e.name}`);
      total += (st.blocks ?? 0) * 512;
    }
  }
  return total;
}

function dataLeft(cl: Cluster): number {
  let n = 0;
  for (const s of cl.sheep) {
    for (const e of Deno.readDirSync(`${s.dir}/obj`)) {
      if (!/^[0-9a-f]{16}$/.test(e.name)) continue;
      const oid = parseOid(e.name);
      if (isDataObj(oid) || isLedgerObj(oid)) n++;
    }
  }
  return n;
}

/** dog's delete: entries zeroed in batches (each releasing references), then DEL_VDI. */
async function deleteLikeDog(raw: Raw, name: string, tag: string, vid: number, count: number) {
  for (let start = 0; start < count; start += DELETE_BATCH) {
    const n = Math.min(DELETE_BATCH, count - start);
    await raw.write(vidToVdiOid(vid), SD_INODE_HEADER_SIZE + 4 * start, new Uint8Array(4 * n));
  }
  await raw.delVdi(name, tag);
}

async function measureSize(
  sizeGiB: number,
  o: SnapshotBenchOptions,
): Promise<SnapshotSizeResult> {
  await using cl = await startCluster(3, { copies: 3 });
  const c = await SheepClient.connect({ host: "127.0.0.1", port: cl.ports[0] });
  const raw = new Raw(c);
  try {
    const size = BigInt(sizeGiB) * BigInt(GIB);
    const count = Number(size / BigInt(OBJ));
    const vid = await raw.newVdi("bench", size, 0, false);
    // Fill: every 1/fill-th object gets 4 KiB (the object is allocated whole).
    const step = Math.max(1, Math.round(1 / o.fill));
    const idxs: number[] = [];
    for (let i = 0; i < count; i += step) idxs.push(i);
    o.onProgress?.(`bench: snapshot ${sizeGiB} GiB: writing ${idxs.length} objects`);
    const t0 = performance.now();
    const block = new Uint8Array(4096).fill(0x5a);
    let next = 0;
    await Promise.all(Array.from({ length: FILL_DEPTH }, async () => {
      while (next < idxs.length) {
        const idx = idxs[next++];
        await raw.write(vidToDataOid(vid, idx), 0, block, true);
        const e = new Uint8Array(4);
        new DataView(e.buffer).setUint32(0, vid, true);
        await raw.write(vidToVdiOid(vid), SD_INODE_HEADER_SIZE + 4 * idx, e);
      }
    }));
    const fillSeconds = (performance.now() - t0) / 1000;

    const r: SnapshotSizeResult = {
      sizeGiB,
      objectsWritten: idxs.length,
      fillSeconds,
      snapshotMs: [],
      cloneMs: [],
      snapshotBytes: [],
      cloneBytes: [],
      deleteCloneMs: [],
      deleteAllMs: 0,
      deleteAllMembers: 0,
      dogSnapshotMs: 0,
      leftObjects: 0,
    };
    let working = vid;
    const snaps: { tag: string; vid: number }[] = [];
    for (let i = 0; i < o.repeats; i++) {
      const tag = `s${i}`;
      const before = await allocatedBytes(cl);
      const t = performance.now();
      await raw.write(vidToVdiOid(working), 256, encodeFixedString(tag, 256));
      const nv = await raw.newVdi("bench", size, working, true);
      r.snapshotMs.push(performance.now() - t);
      r.snapshotBytes.push((await allocatedBytes(cl)) - before);
      snaps.push({ tag, vid: working });
      working = nv;
    }
    const clones: { name: string; vid: number }[] = [];
    const base = snaps[snaps.length - 1].vid;
    for (let i = 0; i < o.repeats; i++) {
      const name = `clone${i}`;
      const before = await allocatedBytes(cl);
      const t = performance.now();
      const cv = await raw.newVdi(name, size, base, false);
      r.cloneMs.push(performance.now() - t);
      r.cloneBytes.push((await allocatedBytes(cl)) - before);
      clones.push({ name, vid: cv });
    }
    // One snapshot through dog, process start-up included.
    const td = performance.now();
    const d = await cl.dog(["vdi", "snapshot", "-s", "dog", "bench"]);
    r.dogSnapshotMs = performance.now() - td;
    if (!d.success) throw new Error(`dog vdi snapshot: ${d.stderrText}`);
    snaps.push({ tag: "dog", vid: working });
    o.onProgress?.(`bench: snapshot ${sizeGiB} GiB: deleting`);
    for (const cv of clones) {
      const t = performance.now();
      await deleteLikeDog(raw, cv.name, "", cv.vid, count);
      r.deleteCloneMs.push(performance.now() - t);
    }
    // The rest: the working VDI, then the snapshots newest first.
    const wvid = (await raw.req(Op.GET_VDI_INFO, () => {}, encodeFixedString("bench", 256))).vid;
    const t1 = performance.now();
    await deleteLikeDog(raw, "bench", "", wvid, count);
    for (const s of [...snaps].reverse()) await deleteLikeDog(raw, "bench", s.tag, s.vid, count);
    r.deleteAllMs = performance.now() - t1;
    r.deleteAllMembers = snaps.length + 1;
    r.leftObjects = dataLeft(cl);
    return r;
  } finally {
    c.close();
  }
}

/** Runs the benchmark. */
export async function runSnapshotBench(
  opts: Partial<SnapshotBenchOptions> = {},
): Promise<SnapshotBenchReport> {
  const o: SnapshotBenchOptions = { ...SNAPSHOT_BENCH_DEFAULTS, ...opts };
  const report: SnapshotBenchReport = {
    startedAt: new Date().toISOString(),
    options: { sizesGiB: o.sizesGiB, fill: o.fill, repeats: o.repeats },
    results: [],
  };
  for (const s of o.sizesGiB) report.results.push(await measureSize(s, o));
  return report;
}

function ms(v: number): string {
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

function bytes(v: number): string {
  return v >= 1 << 20 ? `${(v / (1 << 20)).toFixed(1)} MiB` : `${Math.round(v / 1024)} KiB`;
}

/** The heading of the table. */
export function snapshotBenchHeading(r: SnapshotBenchReport): string {
  return `## Snapshot, clone and delete\n\nThree sheep (zones 0-2), copies 3, durable writes; ` +
    `VDIs of ${r.options.sizesGiB.join(" and ")} GiB with ${r.options.fill * 100}% of their ` +
    `4 MiB objects written; median of ${r.options.repeats} (snapshots along one chain, clones of ` +
    `its newest snapshot); times of the raw requests at one gateway; space = blocks allocated on ` +
    `disk by all three stores together; target: snapshot and clone under ${TARGET_MS} ms, ` +
    `independent of the size, no data copied. Measured ${r.startedAt}.\n`;
}

/** A markdown table, one column per size. */
export function snapshotBenchTable(r: SnapshotBenchReport): string {
  const cols = r.results.map((x) => `${x.sizeGiB} GiB (${x.objectsWritten} objects)`);
  const row = (title: string, f: (x: SnapshotSizeResult) => string) =>
    `| ${title} | ${r.results.map(f).join(" | ")} |`;
  const lines = [
    `| | ${cols.join(" | ")} |`,
    `|---|${cols.map(() => "---:").join("|")}|`,
    row("snapshot (tag write + NEW_VDI), ms", (x) => ms(median(x.snapshotMs))),
    row("snapshot, space added", (x) => bytes(median(x.snapshotBytes))),
    row("clone (NEW_VDI), ms", (x) => ms(median(x.cloneMs))),
    row("clone, space added", (x) => bytes(median(x.cloneBytes))),
    row(
      "snapshot and clone under target",
      (x) => Math.max(median(x.snapshotMs), median(x.cloneMs)) < TARGET_MS ? "yes" : "**no**",
    ),
    row("`dog vdi snapshot` as a process, ms", (x) => ms(x.dogSnapshotMs)),
    row("delete of a clone (release + DEL_VDI), ms", (x) => ms(median(x.deleteCloneMs))),
    row(
      "delete of the rest (working + snapshots), s",
      (x) => `${(x.deleteAllMs / 1000).toFixed(2)} (${x.deleteAllMembers} VDIs)`,
    ),
    row("data + ledger objects left after", (x) => String(x.leftObjects)),
    row("fill (for reference), s", (x) => x.fillSeconds.toFixed(1)),
  ];
  return lines.join("\n") + "\n";
}

export const SNAPSHOT_BENCH_USAGE = `options of the snapshot benchmark:
  --snapshot-sizes LIST   VDI sizes in GiB (default 1,10; "none" skips the benchmark)
  --snapshot-repeats N    snapshots and clones timed per size (default 5)`;

/** Applies one option at argv[i]; returns how many arguments it used (0: not ours). */
export function parseSnapshotBenchArg(
  argv: string[],
  i: number,
  o: SnapshotBenchOptions,
): number {
  switch (argv[i]) {
    case "--snapshot-sizes": {
      const v = argv[i + 1] ?? "";
      o.sizesGiB = v === "none" ? [] : v.split(",").map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n <= 0 || n > 4096) throw new Error(`bad size ${x}`);
        return n;
      });
      return 2;
    }
    case "--snapshot-repeats": {
      const n = Number(argv[i + 1]);
      if (!Number.isInteger(n) || n <= 0) throw new Error("--snapshot-repeats needs a number");
      o.repeats = n;
      return 2;
    }
  }
  return 0;
}

if (import.meta.main) {
  const o: SnapshotBenchOptions = { ...SNAPSHOT_BENCH_DEFAULTS };
  for (let i = 0; i < Deno.args.length;) {
    if (Deno.args[i] === "--help") {
      console.log(SNAPSHOT_BENCH_USAGE);
      Deno.exit(0);
    }
    const used = parseSnapshotBenchArg(Deno.args, i, o);
    if (used === 0) {
      console.error(SNAPSHOT_BENCH_USAGE);
      Deno.exit(64);
    }
    i += used;
  }
  const r = await runSnapshotBench({ ...o, onProgress: (l) => console.error(l) });
  console.log(`${snapshotBenchHeading(r)}\n${snapshotBenchTable(r)}`);
}
