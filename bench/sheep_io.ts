/**
 * Object I/O through real sheep daemons, against the raw file system measured in the same run.
 *
 * Scenario A (issue "appliance" §7): one sheep, copies 1. Scenario B (issue "many sheep" §5):
 * three sheep in zones 0-2 on one local-driver cluster, copies 3, the client talking to one
 * gateway. Both: sequential write and read of SIZE (default 1 GiB) in 4 MiB requests with 8 in
 * flight, then 4 KiB random writes and reads at QD1 and QD16 over the objects just written, over
 * one TCP connection (as QEMU and tgt use one connection per VDI). Sheep run without `-n`: every
 * write is on disk (fdatasync) before it is acknowledged.
 *
 * Every repeat starts fresh daemons on a fresh store and interleaves each sheep phase with the
 * matching raw fio job on the same file system (the store's directory), so that each ratio is taken
 * seconds apart; raw goes first in even repeats and the sheep in odd ones. Reported: medians of the
 * repeats, ratio = median(sheep) / median(raw). The client is this process (Deno, one TCP
 * connection), so it shares the machine's cores with the sheep, as a VM would.
 *
 * Fairness of each raw figure (same durability, same concurrency, same cache state):
 * - seq write: fio, 8 writers (8 requests in flight), each writing a fresh file in 4 MiB buffered
 *   writes with an fdatasync after each (`--fdatasync=1`), no preallocation (`--fallocate=none`):
 *   every 4 MiB is durable, blocks and size included, before the next one, as a sheep's create is
 *   before its reply. The sheep does more per object (a file per object: open O_EXCL, rename and a
 *   directory fsync so that the object's name is durable too); that cost is counted against it.
 * - seq read: fio, 8 readers of those files in 4 MiB buffered reads, page cache of the files
 *   dropped first (fio's `invalidate=1`); the sheep's object files are dropped from the page cache
 *   (posix_fadvise DONTNEED, file by file, nothing global) before each phase but the first, as fio
 *   does for its files. Both cold. The client reads each reply into its own buffer (as QEMU reads
 *   into guest memory).
 * - Beside the seq figures, a diagnostic raw figure: the same fio jobs on object-sized files (one
 *   4 MiB file per object, like the store, each write O_DSYNC), which tells the cost of the layout
 *   from the sheep's.
 * - 4 KiB random write: fio with O_DSYNC (`--sync=dsync`: each pwrite durable before the next),
 *   1 writer (QD1) or 16 (QD16), over the files of the seq job (same span as the sheep's objects);
 *   the sheep's WRITE_OBJ is a pwrite + fdatasync of the object's file before the reply (same
 *   cost, measured by hand: 95-103 µs either way here). Not `--fdatasync=1`: with several files fio syncs a randomly
 *   picked file after each write, not the one it wrote, and reported 10-20% more IOPS than a
 *   durable write gets (the figures of 2026-11-21 before 10:30 UTC were taken that way).
 * - Diagnostic "Deno floor" beside the write and random figures: the same client and workload
 *   against minimal Deno servers on the sheep's own stores, one per sheep, the first forwarding
 *   each write to the others; creates go through the plain store's own create
 *   (harness/floor_server.ts).
 * - 4 KiB random read: fio, 1 or 16 readers, O_DIRECT: the device's random read. The sheep reads
 *   through the page cache, dropped before the phase; at these rates it warms by a few percent of
 *   the span during a phase (a buffered fio job would warm it fully within a second: fio runs
 *   in-kernel at 100k+ IOPS and ends up measuring the page cache, not the file system).
 * Copies 3 on one disk write every byte three times: scenario B's write targets divide raw by 3.
 *
 * Memory conditioning: before each seq write phase (raw and sheep alike) a scratch file of the
 * size about to be written is written and deleted (see conditionMemory()): this VM hands freed
 * memory back to its host, and a page cache filled after a quiet spell is 1.5-3× slower to fill.
 *
 * Run alone: `deno run --allow-all --v8-flags=--stack-size=4096 bench/sheep_io.ts --help`; it is also
 * part of `deno task bench`.
 *
 * @module
 */

import { parseStandaloneArgs, writeJsonReport } from "./harness/standalone.ts";
import { SheepClient } from "../core/net/client.ts";
import {
  ClusterFlag,
  Flag,
  Op,
  Res,
  SD_NODE_SIZE,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../core/proto/constants.ts";
import { SdReq } from "../core/proto/header.ts";
import { encodeFixedString } from "../core/proto/strings.ts";
import { type Cluster, run, sleep, startCluster, withDeadline } from "../tests/harness/mod.ts";
import { type FloorServer, startFloorServer } from "./harness/floor_server.ts";
import { fioVersion, formatBandwidth, median, parseFioJson } from "./harness/raw_limits.ts";
import { random4k, rssOf, seqRead, seqWrite, type WorkloadResult } from "./workload.ts";

const OBJ = 4 << 20;
const MB = 1e6;
/** Requests in flight for the sequential phases (issue text: 8). */
const SEQ_DEPTH = 8;
/** Deadlines. */
const START_DEADLINE_MS = 60_000;
const JOIN_DEADLINE_MS = 60_000;
const FIO_EXTRA_MS = 120_000;
/** A sequential phase may take at most this long per GiB (a 20 MB/s floor). */
const SEQ_MS_PER_GIB = 50_000;
/** Pause before an "idle" RSS reading, and between its samples. */
const IDLE_SETTLE_MS = 2_000;
const RSS_SAMPLE_MS = 200;

/** The scenarios. */
export interface Scenario {
  id: "A" | "B";
  title: string;
  nodes: number;
  copies: number;
}

export const SCENARIOS: Record<"A" | "B", Scenario> = {
  A: { id: "A", title: "one sheep, copies 1", nodes: 1, copies: 1 },
  B: { id: "B", title: "three sheep (zones 0-2), copies 3, one gateway", nodes: 3, copies: 3 },
};

/** The workloads, in the order they run. */
export type Metric =
  | "seqWrite"
  | "seqRead"
  | "randWriteQd1"
  | "randWriteQd16"
  | "randReadQd1"
  | "randReadQd16";

const METRICS: { key: Metric; title: string; unit: "MB/s" | "IOPS" }[] = [
  { key: "seqWrite", title: "seq write 4 MiB, 8 in flight", unit: "MB/s" },
  { key: "seqRead", title: "seq read 4 MiB, 8 in flight (cold)", unit: "MB/s" },
  { key: "randWriteQd1", title: "4 KiB random write QD1", unit: "IOPS" },
  { key: "randWriteQd16", title: "4 KiB random write QD16", unit: "IOPS" },
  { key: "randReadQd1", title: "4 KiB random read QD1 (cold)", unit: "IOPS" },
  { key: "randReadQd16", title: "4 KiB random read QD16 (cold)", unit: "IOPS" },
];

const RAW_TITLES: Record<Metric, string> = {
  seqWrite: "fio 8 writers, fresh files, 4 MiB + fdatasync each",
  seqRead: "fio 8 readers, 4 MiB, buffered, cold",
  randWriteQd1: "fio 1 writer, 4 KiB O_DSYNC (durable each)",
  randWriteQd16: "fio 16 writers, 4 KiB O_DSYNC (durable each)",
  randReadQd1: "fio 1 reader, 4 KiB O_DIRECT",
  randReadQd16: "fio 16 readers, 4 KiB O_DIRECT",
};

/** A target: figure ≥ share × raw ÷ divisor. */
interface Target {
  share: number;
  divisor: number;
}

const TARGETS: Record<"A" | "B", Partial<Record<Metric, Target>>> = {
  A: {
    seqWrite: { share: 0.7, divisor: 1 },
    seqRead: { share: 0.6, divisor: 1 },
    randWriteQd1: { share: 0.6, divisor: 1 },
  },
  B: {
    seqWrite: { share: 0.8, divisor: 3 },
    seqRead: { share: 0.6, divisor: 1 },
    randWriteQd16: { share: 0.5, divisor: 3 },
  },
};

/** RSS targets in bytes (10^6): A idle, B under load (each sheep). */
const RSS_TARGET_MB = { A: 100, B: 200 };

/** Options of {@linkcode runSheepIo}. */
export interface SheepIoOptions {
  scenarios: ("A" | "B")[];
  repeats: number;
  /** Bytes written and read by the sequential phases, in MiB (a multiple of 4). */
  seqSizeMiB: number;
  /** Seconds per random phase (sheep and fio alike). */
  randSeconds: number;
  /** Client connections to the gateway (1: as QEMU/tgt). */
  conns: number;
  /** Only these workloads (seqWrite always runs: the others use its objects); default all. */
  phases?: Metric[];
  /** Progress lines. */
  onProgress?: (line: string) => void;
}

/** Defaults of the full run. */
export const SHEEP_IO_DEFAULTS: SheepIoOptions = {
  scenarios: ["A", "B"],
  repeats: 3,
  seqSizeMiB: 1024,
  randSeconds: 5,
  conns: 1,
};

/** CPU seconds used by a process during a phase. */
interface CpuUse {
  pid: number;
  seconds: number;
}

/** One measured phase of one repeat. */
export interface PhaseSample {
  /** Bytes/s for MB/s metrics, IOPS for IOPS metrics. */
  sheep: number;
  raw: number;
  /** CPU seconds of each sheep and of this (client) process during the sheep phase. */
  cpu: { sheep: CpuUse[]; client: number; wallSeconds: number };
  /** Average latency of one request in the sheep phase (µs). */
  sheepLatUs: number;
  rawLatUs: number;
  /**
   * Sequential phases only: fio on files of one object each (4 MiB, 8 jobs × SIZE/32 files), to
   * tell the cost of a file per object from the sheep's own (diagnostic; targets use `raw`).
   */
  rawObjectFiles?: number;
  /**
   * All phases but the sequential read: the same client and workload against minimal Deno servers
   * on the sheep's own stores, the gateway's forwarding writes to the others
   * (harness/floor_server.ts; diagnostic).
   */
  floor?: number;
}

/** One repeat of one scenario. */
export interface RepeatResult {
  phases: Partial<Record<Metric, PhaseSample>>;
  /** RSS of each sheep 2 s after format (bytes). */
  idleRss: number[];
  /** 1-minute load average of the machine at the start and the end of the repeat. */
  load: [number, number];
  /** Highest RSS of each sheep sampled during the workloads (bytes). */
  loadRss: number[];
  /** RSS of each sheep 2 s after the workloads (bytes). */
  afterRss: number[];
}

/** A row of the report. */
export interface ReportRow {
  scenario: "A" | "B";
  metric: Metric | "idleRss" | "loadRss";
  title: string;
  unit: string;
  /** Median of the sheep figures (bytes/s, IOPS or bytes). */
  value: number;
  samples: number[];
  /** Median of the raw figures (absent for RSS). */
  raw?: number;
  rawSamples?: number[];
  rawTitle?: string;
  /** value / raw. */
  ratio?: number;
  /** Median of the diagnostic raw figure on object-sized files (seq rows). */
  rawObjectFiles?: number;
  /** Median of the minimal Deno servers' figure (all rows but the sequential read). */
  floor?: number;
  target?: string;
  pass?: boolean;
}

/** What {@linkcode runSheepIo} returns (JSON-ready). */
export interface SheepIoReport {
  startedAt: string;
  fioVersion: string;
  sheepdog: string[];
  options: Omit<SheepIoOptions, "onProgress">;
  cores: number;
  rows: ReportRow[];
  repeats: Record<string, RepeatResult[]>;
}

// ---------------------------------------------------------------------------------------------
// Page cache, CPU and RSS probes

let libc:
  | Deno.DynamicLibrary<{
    open: { parameters: ["buffer", "i32"]; result: "i32" };
    close: { parameters: ["i32"]; result: "i32" };
    posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"]; result: "i32" };
  }>
  | null = null;

const POSIX_FADV_DONTNEED = 4;

/**
 * Drops the page cache of every regular file directly in `dirs` (their clean pages: the sheep
 * synced them). File by file, so that nothing else on the machine is affected.
 */
export async function dropPageCache(dirs: string[]): Promise<number> {
  libc ??= Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"], result: "i32" },
  });
  const enc = new TextEncoder();
  let n = 0;
  for (const dir of dirs) {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      const fd = libc.symbols.open(enc.encode(`${dir}/${e.name}\0`), 0);
      if (fd < 0) continue; // removed meanwhile
      libc.symbols.posix_fadvise(fd, 0n, 0n, POSIX_FADV_DONTNEED);
      libc.symbols.close(fd);
      n++;
    }
  }
  return n;
}

/**
 * Writes and deletes a scratch file of `mib` MiB in `dir` (no sync). This machine is a VM that
 * hands freed memory back to its host: a writer that fills the page cache after a quiet spell
 * faults its pages back in slowly (fio's 1 GiB seq write measured 0.55-0.84 GB/s that way, and
 * 1.0-2.8 GB/s right after such a file), so each seq write phase, raw and sheep alike, is preceded
 * by this for the bytes it is about to put in the page cache (the sheep's: copies × size).
 */
export async function conditionMemory(dir: string, mib: number): Promise<void> {
  const path = `${dir}/warm.tmp`;
  const count = Math.max(1, Math.ceil(mib / 4));
  const r = await run("dd", [
    "if=/dev/zero",
    `of=${path}`,
    "bs=4M",
    `count=${count}`,
    "status=none",
  ], {
    deadlineMs: 60_000 + count * 200,
  });
  await Deno.remove(path).catch(() => {});
  if (!r.success) throw new Error(`dd for memory conditioning failed: ${r.stderrText}`);
}

/** The machine's 1-minute load average. */
export async function loadAverage(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
}

const CLK_TCK = 100;

/** utime + stime of a process in seconds. */
export async function cpuSeconds(pid: number | "self"): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Samples the RSS of some processes until stopped; keeps the highest of each. */
class RssSampler {
  readonly #pids: number[];
  readonly max: number[];
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;

  constructor(pids: number[]) {
    this.#pids = pids;
    this.max = pids.map(() => 0);
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      Promise.all(this.#pids.map((p) => rssOf(p).catch(() => 0))).then((v) => {
        v.forEach((x, i) => this.max[i] = Math.max(this.max[i], x));
      }).finally(() => this.#busy = false);
    }, RSS_SAMPLE_MS);
  }

  stop(): number[] {
    clearInterval(this.#timer);
    return this.max;
  }
}

/** Highest of a few RSS readings of each pid, after a pause. */
async function idleRss(pids: number[]): Promise<number[]> {
  await sleep(IDLE_SETTLE_MS);
  const max = pids.map(() => 0);
  for (let i = 0; i < 3; i++) {
    const v = await Promise.all(pids.map((p) => rssOf(p)));
    v.forEach((x, j) => max[j] = Math.max(max[j], x));
    await sleep(RSS_SAMPLE_MS);
  }
  return max;
}

// ---------------------------------------------------------------------------------------------
// Raw fio jobs (see the module comment for why each one is the fair comparison)

const SEQ_FILES = SEQ_DEPTH;

function seqFileList(): string {
  return Array.from({ length: SEQ_FILES }, (_, i) => `seq.${i}`).join(":");
}

interface FioFigure {
  value: number;
  latUs: number;
}

async function fio(
  args: string[],
  side: "read" | "write",
  unit: "MB/s" | "IOPS",
  deadlineMs: number,
): Promise<FioFigure> {
  const r = await run("fio", [...args, "--output-format=json", "--group_reporting"], {
    deadlineMs,
  });
  if (!r.success) {
    throw new Error(
      `fio ${args.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}\n${r.stderrText}${
        r.stdoutText.slice(0, 2000)
      }`,
    );
  }
  const s = parseFioJson(r.stdoutText, side);
  return { value: unit === "MB/s" ? s.bwBytes : s.iops, latUs: s.meanLatUs };
}

function rawJob(
  metric: Metric | "seqWriteObjectFiles" | "seqReadObjectFiles",
  dir: string,
  o: SheepIoOptions,
): { args: string[]; side: "read" | "write"; deadlineMs: number } {
  const common = [`--directory=${dir}`, "--ioengine=psync", "--direct=0", "--fallocate=none"];
  const perFile = Math.max(1, Math.floor(o.seqSizeMiB / SEQ_FILES));
  const seqDeadline = Math.ceil((o.seqSizeMiB / 1024) * SEQ_MS_PER_GIB) + FIO_EXTRA_MS;
  const rand = (rw: string, jobs: number, sync: boolean) => ({
    args: [
      `--name=${metric}`,
      ...common.map((a) => a === "--direct=0" && rw === "randread" ? "--direct=1" : a),
      `--rw=${rw}`,
      "--bs=4k",
      `--numjobs=${jobs}`,
      `--filename=${seqFileList()}`,
      `--size=${perFile * SEQ_FILES}M`,
      "--file_service_type=random",
      "--norandommap",
      "--randrepeat=0",
      // Durable each write with O_DSYNC, not --fdatasync=1: over a list of files fio issues each
      // fdatasync on a randomly picked file, not on the one just written (seen with strace),
      // which flattered the raw figure by 10-20% here (measured by hand).
      ...(sync ? ["--sync=dsync"] : []),
      `--runtime=${o.randSeconds}`,
      "--time_based",
    ],
    side: (rw === "randwrite" ? "write" : "read") as "read" | "write",
    deadlineMs: o.randSeconds * 1000 + FIO_EXTRA_MS,
  });
  switch (metric) {
    case "seqWrite":
      return {
        args: [
          `--name=${metric}`,
          ...common,
          "--rw=write",
          "--bs=4M",
          `--numjobs=${SEQ_FILES}`,
          `--size=${perFile}M`,
          "--filename_format=seq.$jobnum",
          "--fdatasync=1",
        ],
        side: "write",
        deadlineMs: seqDeadline,
      };
    case "seqRead":
      return {
        args: [
          `--name=${metric}`,
          ...common,
          "--rw=read",
          "--bs=4M",
          `--numjobs=${SEQ_FILES}`,
          `--size=${perFile}M`,
          "--filename_format=seq.$jobnum",
          "--invalidate=1",
        ],
        side: "read",
        deadlineMs: seqDeadline,
      };
    case "randWriteQd1":
      return rand("randwrite", 1, true);
    case "seqWriteObjectFiles":
    case "seqReadObjectFiles": {
      const files = Math.max(1, Math.floor(perFile / 4));
      return {
        args: [
          `--name=${metric}`,
          ...common,
          metric === "seqWriteObjectFiles" ? "--rw=write" : "--rw=read",
          "--bs=4M",
          `--numjobs=${SEQ_FILES}`,
          `--nrfiles=${files}`,
          "--filesize=4M",
          `--size=${files * 4}M`,
          "--file_service_type=sequential",
          "--filename_format=obj.$jobnum.$filenum",
          metric === "seqWriteObjectFiles" ? "--sync=dsync" : "--invalidate=1",
        ],
        side: metric === "seqWriteObjectFiles" ? "write" : "read",
        deadlineMs: seqDeadline,
      };
    }
    case "randWriteQd16":
      return rand("randwrite", 16, true);
    case "randReadQd1":
      return rand("randread", 1, false);
    case "randReadQd16":
      return rand("randread", 16, false);
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster under test

async function expectOk(c: SheepClient, what: string, req: SdReq, data?: Uint8Array) {
  const r = await c.request(req, data);
  if (r.rsp.result !== Res.SUCCESS) {
    throw new Error(`${what} failed with result 0x${r.rsp.result.toString(16)}`);
  }
  return r;
}

/** Waits until `n` sheep are members, formats with `copies`, creates a VDI; returns its vid. */
async function formatAndCreate(
  c: SheepClient,
  n: number,
  copies: number,
  vdiBytes: number,
): Promise<number> {
  const end = Date.now() + JOIN_DEADLINE_MS;
  for (;;) {
    const req = SdReq.of(Op.GET_NODE_LIST, SD_SHEEP_PROTO_VER, { dataLength: SD_NODE_SIZE * 16 });
    const r = await c.request(req);
    if (r.rsp.result === Res.SUCCESS && r.rsp.node.nrNodes >= n) break;
    if (Date.now() > end) {
      throw new Error(
        `only ${r.rsp.node.nrNodes} of ${n} sheep joined within ${JOIN_DEADLINE_MS} ms`,
      );
    }
    await sleep(100);
  }
  const fs = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 6 });
  fs.cluster.copies = copies;
  fs.cluster.flags = ClusterFlag.AUTO_VNODES;
  fs.cluster.blockSizeShift = 22;
  await expectOk(c, "MAKE_FS", fs, new TextEncoder().encode("plain\0"));
  const nv = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
  nv.vdi.vdiSize = BigInt(vdiBytes);
  nv.vdi.copies = copies;
  const r = await expectOk(c, "NEW_VDI", nv, encodeFixedString("bench", 256));
  return r.rsp.vdi.vdiId;
}

async function phaseDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const r = await withDeadline(p, ms);
  if (!r.ok) throw new Error(`${what} did not finish within ${ms} ms`);
  return r.value;
}

/**
 * One repeat of a scenario: fresh daemons and store, raw and sheep phases interleaved (raw first
 * in even repeats, sheep first in odd ones, so that neither side always gets the page cache and
 * memory state the other one left).
 */
async function runRepeat(sc: Scenario, o: SheepIoOptions, index: number): Promise<RepeatResult> {
  const say = o.onProgress ?? (() => {});
  const objects = Math.max(1, Math.floor(o.seqSizeMiB / 4));
  const load0 = await loadAverage();
  const cluster: Cluster = await startCluster(sc.nodes, { readyDeadlineMs: START_DEADLINE_MS });
  const clients: SheepClient[] = [];
  try {
    const rawDir = `${cluster.root}/raw`;
    await Deno.mkdir(rawDir);
    const pids = cluster.sheep.map((s) => s.pid);
    const gw = { host: "127.0.0.1", port: cluster.ports[0] };
    const admin = await SheepClient.connect(gw);
    clients.push(admin);
    const vid = await formatAndCreate(admin, sc.nodes, sc.copies, objects * OBJ);
    const idle = await idleRss(pids);
    say(`  idle RSS ${idle.map((x) => (x / MB).toFixed(0)).join("/")} MB`);
    const data: SheepClient[] = [];
    for (let i = 0; i < o.conns; i++) data.push(await SheepClient.connect(gw));
    clients.push(...data);
    const objDirs = cluster.sheep.map((s) => `${s.dir}/obj`);
    const sampler = new RssSampler(pids);
    sampler.start();
    const phases: Partial<Record<Metric, PhaseSample>> = {};
    const seqDeadline = Math.ceil((o.seqSizeMiB / 1024) * SEQ_MS_PER_GIB) * sc.copies + 30_000;
    const randDeadline = o.randSeconds * 1000 + 60_000;
    try {
      for (const m of METRICS) {
        if (o.phases && m.key !== "seqWrite" && !o.phases.includes(m.key)) continue;
        const job = rawJob(m.key, rawDir, o);
        const seqW = m.key === "seqWrite";
        const measureRaw = async () => {
          if (seqW) await conditionMemory(rawDir, o.seqSizeMiB);
          return await fio(job.args, job.side, m.unit, job.deadlineMs);
        };
        let raw: FioFigure | null = index % 2 === 0 ? await measureRaw() : null;
        // As fio drops the page cache of its files when a job starts (invalidate=1).
        if (!seqW) await dropPageCache(objDirs);
        if (seqW) await conditionMemory(rawDir, o.seqSizeMiB * sc.copies);
        const cpu0 = await Promise.all(pids.map((p) => cpuSeconds(p)));
        const self0 = await cpuSeconds("self");
        const t0 = performance.now();
        let w: WorkloadResult;
        if (m.key === "seqWrite") {
          w = await phaseDeadline(seqWrite(data, vid, objects, SEQ_DEPTH), seqDeadline, m.key);
        } else if (m.key === "seqRead") {
          w = await phaseDeadline(seqRead(data, vid, objects, SEQ_DEPTH), seqDeadline, m.key);
        } else {
          const qd = m.key.endsWith("Qd1") ? 1 : 16;
          const write = m.key.startsWith("randWrite");
          w = await phaseDeadline(
            random4k(data, vid, objects, qd, o.randSeconds, write),
            randDeadline,
            m.key,
          );
        }
        const wall = (performance.now() - t0) / 1000;
        const cpu1 = await Promise.all(pids.map((p) => cpuSeconds(p)));
        const self1 = await cpuSeconds("self");
        raw ??= await measureRaw();
        let rawObjectFiles: number | undefined;
        if (m.key === "seqWrite" || m.key === "seqRead") {
          const j = rawJob(
            m.key === "seqWrite" ? "seqWriteObjectFiles" : "seqReadObjectFiles",
            rawDir,
            o,
          );
          if (seqW) await conditionMemory(rawDir, o.seqSizeMiB);
          rawObjectFiles = (await fio(j.args, j.side, m.unit, j.deadlineMs)).value;
        }
        let floor: number | undefined;
        if (m.key !== "seqRead") {
          if (seqW) await conditionMemory(rawDir, o.seqSizeMiB * sc.copies);
          floor = await measureFloor(
            objDirs,
            vid,
            objects,
            m.key,
            o,
            seqW ? seqDeadline : randDeadline,
          );
        }
        const value = m.unit === "MB/s" ? w.bytes / w.seconds : w.iops;
        const depth = m.key.startsWith("seq") ? SEQ_DEPTH : (m.key.endsWith("Qd1") ? 1 : 16);
        phases[m.key] = {
          sheep: value,
          raw: raw.value,
          cpu: {
            sheep: pids.map((pid, i) => ({ pid, seconds: cpu1[i] - cpu0[i] })),
            client: self1 - self0,
            wallSeconds: wall,
          },
          sheepLatUs: (w.seconds / w.ops) * depth * 1e6,
          rawLatUs: raw.latUs,
          ...(rawObjectFiles !== undefined ? { rawObjectFiles } : {}),
          ...(floor !== undefined ? { floor } : {}),
        };
        const fmt = (x: number) => m.unit === "MB/s" ? formatBandwidth(x) : `${Math.round(x)} IOPS`;
        const cpuText = pids.map((_, i) => `${Math.round(((cpu1[i] - cpu0[i]) / wall) * 100)}%`)
          .join("/");
        say(
          `  ${m.key}: sheep ${fmt(value)}, raw ${fmt(raw.value)} (${
            ((value / raw.value) * 100).toFixed(0)
          }%); ` +
            `cpu sheep ${cpuText}, client ${Math.round(((self1 - self0) / wall) * 100)}%` +
            (floor !== undefined ? `; floor ${fmt(floor)}` : ""),
        );
      }
    } finally {
      sampler.stop();
    }
    const after = await idleRss(pids);
    return {
      phases,
      idleRss: idle,
      loadRss: sampler.max,
      afterRss: after,
      load: [load0, await loadAverage()],
    };
  } finally {
    for (const c of clients) c.close();
    await cluster.stopAll();
  }
}

/**
 * The phase `metric` once more, against floor servers (harness/floor_server.ts) on the sheep's
 * stores, with the page cache dropped first as for the sheep phase: one per sheep, the first (the
 * gateway's store) forwarding writes to the others. The sequential write creates the objects of
 * another vid (the sheep's exist by then); the result is in the metric's unit.
 */
async function measureFloor(
  objDirs: string[],
  vid: number,
  objects: number,
  metric: Metric,
  o: SheepIoOptions,
  deadlineMs: number,
): Promise<number> {
  await dropPageCache(objDirs);
  const peers: FloorServer[] = [];
  const clients: SheepClient[] = [];
  let server: FloorServer | null = null;
  try {
    for (const dir of objDirs.slice(1)) peers.push(await startFloorServer(dir));
    server = await startFloorServer(objDirs[0], peers.map((p) => p.port));
    const at = { host: "127.0.0.1", port: server.port };
    for (let i = 0; i < o.conns; i++) clients.push(await SheepClient.connect(at));
    if (metric === "seqWrite") {
      const other = (vid + 1) % (1 << 24) || 1;
      const w = await phaseDeadline(
        seqWrite(clients, other, objects, SEQ_DEPTH),
        deadlineMs,
        `${metric} (floor)`,
      );
      return w.bytes / w.seconds;
    }
    const qd = metric.endsWith("Qd1") ? 1 : 16;
    const write = metric.startsWith("randWrite");
    const w = await phaseDeadline(
      random4k(clients, vid, objects, qd, o.randSeconds, write),
      deadlineMs,
      `${metric} (floor)`,
    );
    return w.iops;
  } finally {
    for (const c of clients) c.close();
    await server?.stop();
    await Promise.all(peers.map((p) => p.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

function buildRows(id: "A" | "B", reps: RepeatResult[]): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const m of METRICS) {
    const got = reps.map((r) => r.phases[m.key]).filter((p): p is PhaseSample => !!p);
    if (got.length === 0) continue;
    const value = median(got.map((p) => p.sheep));
    const raw = median(got.map((p) => p.raw));
    const row: ReportRow = {
      scenario: id,
      metric: m.key,
      title: m.title,
      unit: m.unit,
      value,
      samples: got.map((p) => p.sheep),
      raw,
      rawSamples: got.map((p) => p.raw),
      rawTitle: RAW_TITLES[m.key],
      ratio: value / raw,
    };
    const objectFiles = got.map((p) => p.rawObjectFiles).filter((x): x is number =>
      x !== undefined
    );
    if (objectFiles.length > 0) row.rawObjectFiles = median(objectFiles);
    const floors = got.map((p) => p.floor).filter((x): x is number => x !== undefined);
    if (floors.length > 0) row.floor = median(floors);
    const t = TARGETS[id][m.key];
    if (t) {
      const need = t.share / t.divisor;
      row.target = t.divisor === 1
        ? `≥ ${pct(t.share)} of raw`
        : `≥ ${pct(t.share)} of raw÷${t.divisor} (${pct(need)} of raw)`;
      row.pass = value >= need * raw;
    }
    rows.push(row);
  }
  const maxOf = (f: (r: RepeatResult) => number[]) => reps.map((r) => Math.max(...f(r)));
  const idle = maxOf((r) => r.idleRss);
  const load = maxOf((r) => r.loadRss);
  const idleRow: ReportRow = {
    scenario: id,
    metric: "idleRss",
    title: `idle RSS after format (highest sheep)`,
    unit: "MB",
    value: median(idle),
    samples: idle,
  };
  const loadRow: ReportRow = {
    scenario: id,
    metric: "loadRss",
    title: `RSS under load, sampled every ${RSS_SAMPLE_MS} ms (highest sheep)`,
    unit: "MB",
    value: median(load),
    samples: load,
  };
  if (id === "A") {
    idleRow.target = `≤ ${RSS_TARGET_MB.A} MB`;
    idleRow.pass = idleRow.value <= RSS_TARGET_MB.A * MB;
  } else {
    loadRow.target = `≤ ${RSS_TARGET_MB.B} MB each`;
    loadRow.pass = loadRow.value <= RSS_TARGET_MB.B * MB;
  }
  rows.push(idleRow, loadRow);
  return rows;
}

function fmtValue(unit: string, x: number): string {
  if (unit === "MB/s") return formatBandwidth(x);
  if (unit === "MB") return `${(x / MB).toFixed(0)} MB`;
  return `${Math.round(x).toLocaleString("en-US")} IOPS`;
}

/** The report as a markdown table. */
export function sheepIoTable(r: SheepIoReport): string {
  const lines = [
    "| scenario | workload | sheepdog | raw, same run | ratio | target | result | raw on 4 MiB files | Deno floor |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.scenario} | ${row.title} | ${fmtValue(row.unit, row.value)} | ${
        row.raw !== undefined ? `${fmtValue(row.unit, row.raw)} (${row.rawTitle})` : "—"
      } | ${row.ratio !== undefined ? pct(row.ratio) : "—"} | ${row.target ?? "—"} | ${
        row.pass === undefined ? "—" : row.pass ? "pass" : "**miss**"
      } | ${row.rawObjectFiles !== undefined ? fmtValue(row.unit, row.rawObjectFiles) : "—"} | ${
        row.floor !== undefined && row.raw !== undefined
          ? `${fmtValue(row.unit, row.floor)} (${pct(row.floor / row.raw)} of raw)`
          : "—"
      } |`,
    );
  }
  return lines.join("\n");
}

function loadRange(r: SheepIoReport): string {
  const all = Object.values(r.repeats).flatMap((reps) => reps.flatMap((x) => x.load));
  if (all.length === 0) return "unknown";
  return `${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)}`;
}

/** A heading paragraph for the table: what ran, how often, where. */
export function sheepIoHeading(r: SheepIoReport): string {
  const o = r.options;
  const list = o.scenarios.map((s) => `${s} = ${SCENARIOS[s].title}`).join("; ");
  return `## Sheep object I/O (${list})\n\n` +
    `${o.seqSizeMiB} MiB sequential, ${o.randSeconds} s per random phase, ${o.conns} client ` +
    `connection(s), median of ${o.repeats} repeats (fresh daemons and store each), raw figures ` +
    `by ${r.fioVersion} on the store's file system interleaved with the sheep phases; ` +
    `${r.cores} cores; sheep run as \`${r.sheepdog.join(" ")} sheep\` without -n; ` +
    `measured ${r.startedAt}, machine load average ${loadRange(r)} during the run. ` +
    `"raw on 4 MiB files": the same fio job on one file per object (diagnostic). ` +
    `"Deno floor": the same client and workload against minimal Deno servers that do only the ` +
    `positional write + fdatasync (or read) of each request on the sheep's own object files, ` +
    `or the plain store's create for a whole-object write, the first forwarding each write to ` +
    `the others in B (bench/harness/floor_server.ts): what any Deno processes behind loopback ` +
    `TCP reach here (diagnostic).\n`;
}

/** Runs the chosen scenarios and returns the report. */
export async function runSheepIo(opts: Partial<SheepIoOptions> = {}): Promise<SheepIoReport> {
  const o: SheepIoOptions = { ...SHEEP_IO_DEFAULTS, ...opts };
  if (o.seqSizeMiB < 4 || o.seqSizeMiB % 4 !== 0) {
    throw new Error("--seq-size must be a multiple of 4 MiB");
  }
  const { sheepdogCommand } = await import("../tests/harness/paths.ts");
  const report: SheepIoReport = {
    startedAt: new Date().toISOString(),
    fioVersion: await fioVersion(),
    sheepdog: sheepdogCommand(),
    options: {
      scenarios: o.scenarios,
      repeats: o.repeats,
      seqSizeMiB: o.seqSizeMiB,
      randSeconds: o.randSeconds,
      conns: o.conns,
      ...(o.phases ? { phases: o.phases } : {}),
    },
    cores: navigator.hardwareConcurrency,
    rows: [],
    repeats: {},
  };
  for (const id of o.scenarios) {
    const sc = SCENARIOS[id];
    const reps: RepeatResult[] = [];
    for (let i = 0; i < o.repeats; i++) {
      o.onProgress?.(`bench: sheep_io ${id} (${sc.title}) repeat ${i + 1}/${o.repeats}`);
      reps.push(await runRepeat(sc, o, i));
    }
    report.repeats[id] = reps;
    report.rows.push(...buildRows(id, reps));
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Command line

export const SHEEP_IO_USAGE = `options of the sheep I/O benchmark:
  --scenarios A,B     A: one sheep, copies 1; B: three sheep, copies 3 (default A,B; "none" skips)
  --repeats N         repeats, median reported (default 3)
  --seq-size MiB      bytes of the sequential phases, multiple of 4 (default 1024)
  --rand-seconds S    seconds per random phase (default 5)
  --conns N           client connections to the gateway (default 1)
  --phases LIST       only these of ${METRICS.map((m) => m.key).join(",")}
                      (seqWrite always runs: the others use the objects it writes)
  --quick             64 MiB, 2 s, 1 repeat: a smoke run`;

/**
 * Applies one sheep-io option at argv[i] to `o`; returns how many arguments it used (0: not
 * ours). Throws on a bad value.
 */
export function parseSheepIoArg(argv: string[], i: number, o: SheepIoOptions): number {
  const num = (v: string | undefined, what: string): number => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) throw new Error(`${what} needs a positive number`);
    return n;
  };
  switch (argv[i]) {
    case "--scenarios": {
      const v = argv[i + 1] ?? "";
      const list = v === "none" ? [] : v.split(",").map((s) => s.trim().toUpperCase());
      for (const s of list) if (s !== "A" && s !== "B") throw new Error(`unknown scenario ${s}`);
      o.scenarios = list as ("A" | "B")[];
      return 2;
    }
    case "--repeats":
      o.repeats = Math.round(num(argv[i + 1], "--repeats"));
      return 2;
    case "--seq-size":
      o.seqSizeMiB = num(argv[i + 1], "--seq-size");
      return 2;
    case "--rand-seconds":
      o.randSeconds = num(argv[i + 1], "--rand-seconds");
      return 2;
    case "--conns":
      o.conns = Math.round(num(argv[i + 1], "--conns"));
      return 2;
    case "--phases": {
      const list = (argv[i + 1] ?? "").split(",");
      for (const p of list) {
        if (!METRICS.some((m) => m.key === p)) throw new Error(`unknown phase ${p}`);
      }
      o.phases = list as Metric[];
      return 2;
    }
    case "--quick":
      Object.assign(o, { seqSizeMiB: 64, randSeconds: 2, repeats: 1 });
      return 1;
  }
  return 0;
}

async function main(): Promise<void> {
  const o: SheepIoOptions = { ...SHEEP_IO_DEFAULTS };
  const args = parseStandaloneArgs(
    { name: "sheep_io", usage: SHEEP_IO_USAGE, parseArg: parseSheepIoArg },
    Deno.args,
    o,
  );
  if (args === null) return;
  o.onProgress = (l) => console.error(l);
  const report = await runSheepIo(o);
  if (await writeJsonReport(args.json, report)) return;
  console.log(sheepIoHeading(report));
  console.log(sheepIoTable(report));
}

if (import.meta.main) await main();
