/**
 * The NBD export through real NBD clients (issue 7, benchmark): three sheep (zones 0-2) on one
 * local-driver cluster, copies 3, the first one serving every VDI with `--nbd`. Per repeat, on
 * fresh daemons and a fresh store:
 *
 * - `nbdcopy --flush FILE nbd://…/a` and `nbdcopy nbd://…/a null:` (nbdcopy's defaults otherwise:
 *   up to 4 connections when the server offers multi-conn, 64 requests in flight each, requests
 *   of the export's preferred block size, a whole 4 MiB object);
 * - `qemu-img convert -n -W -m 16 -f raw -O raw FILE nbd://…/b` and the same from `nbd://…/b` to
 *   a null-co target (16 coroutines, out-of-order writes: qemu-img's own fast path; it too moves
 *   preferred-block-size chunks);
 * - fio 4 KiB random writes and reads over VDI `a` through nbdfuse (the VDI as a regular file,
 *   `--direct=1`): QD1 with psync, QD32 with libaio, writes with and without `--fdatasync=1`
 *   (which nbdfuse turns into NBD_CMD_FLUSH). Without /dev/fuse or nbdfuse, fio's own nbd engine
 *   drives the export instead; without both, those rows are skipped with the reason printed.
 *
 * FILE is SIZE bytes of incompressible data in the cluster's scratch directory (the store's file
 * system; each sheep's store is a directory of its own beside it). Every write phase is
 * preceded by the memory conditioning of bench/sheep_io.ts (a scratch file of the bytes about to
 * be put in the page cache, copies × SIZE, written and deleted), every read phase by dropping the
 * sheep's object files from the page cache (cold reads, as the raw O_DIRECT reads are).
 *
 * Each figure sits beside the matching raw-limits job (bench/harness/raw_limits.ts), run by fio on
 * the store's file system in the same repeat, right before the phases it is compared with (the
 * machine is shared and noisy: a raw figure taken minutes apart would make the ratio drift);
 * medians of the repeats. Sequential writes compare with the store's own write (4 MiB +
 * fdatasync) ÷ 3, since copies 3 on one disk write every byte three times; sequential reads with
 * the 4 MiB O_DIRECT read; random writes with 4 KiB + fdatasync ÷ 3 (every NBD write is durable
 * on all three replicas before its reply, flush or not); random reads with 4 KiB O_DIRECT reads.
 * Raw has no QD32 job: QD32 rows compare with its deepest (QD16) job.
 * Targets (issue 7): sequential write ≥ 80% of raw write ÷ 3, sequential read ≥ 60% of raw read.
 *
 * Run alone: `deno run -A --v8-flags=--stack-size=4096 bench/nbd_bench.ts [--nbd-size MiB]
 * [--nbd-repeats N] [--nbd-rand-seconds S] [--quick]`; it is also part of `deno task bench`.
 *
 * @module
 */

import { parseStandaloneArgs, writeJsonReport } from "./harness/standalone.ts";
import {
  type ManagedProcess,
  run,
  type RunResult,
  spawnManaged,
  startCluster,
  waitUntil,
} from "../tests/harness/mod.ts";
import { freePort } from "../tests/harness/ports.ts";
import { findExecutable } from "../tests/harness/tools.ts";
import {
  fioVersion,
  formatBandwidth,
  measureRawLimits,
  median,
  parseFioJson,
  RAW_JOBS,
} from "./harness/raw_limits.ts";
import { conditionMemory, cpuSeconds, dropPageCache, loadAverage } from "./sheep_io.ts";

const MiB = 1024 * 1024;
const COPIES = 3;
const NODES = 3;
/** Deadlines. */
const START_DEADLINE_MS = 60_000;
const NBD_LISTEN_DEADLINE_MS = 15_000;
const MOUNT_DEADLINE_MS = 15_000;
const UMOUNT_DEADLINE_MS = 10_000;
const FUSE_STOP_DEADLINE_MS = 5_000;
const DOG_DEADLINE_MS = 60_000;
/** A copy may take at most this long per GiB (a 20 MB/s floor), plus a fixed allowance. */
const COPY_MS_PER_GIB = 50_000;
const COPY_EXTRA_MS = 30_000;
const FIO_EXTRA_MS = 60_000;
/** Requests in flight for the QD32 fio jobs. */
const DEEP_QD = 32;
/** qemu-img convert's coroutines. */
const QEMU_COROUTINES = 16;

/** The workloads, in the order they run. */
export type NbdMetric =
  | "nbdcopyWrite"
  | "nbdcopyRead"
  | "qemuWrite"
  | "qemuRead"
  | "randWriteQd1"
  | "randWriteQd1Sync"
  | "randWriteQd32"
  | "randWriteQd32Sync"
  | "randReadQd1"
  | "randReadQd32";

interface MetricSpec {
  key: NbdMetric;
  title: string;
  unit: "MB/s" | "IOPS";
  /** The raw-limits job it is compared with (bench/harness/raw_limits.ts). */
  raw: string;
  /** Compared with raw ÷ divisor (3 for writes: copies 3 on one disk). */
  divisor: number;
  /** Target share of raw ÷ divisor (issue 7). */
  target?: number;
}

const METRICS: readonly MetricSpec[] = [
  {
    key: "nbdcopyWrite",
    title: "nbdcopy file → NBD (--flush)",
    unit: "MB/s",
    raw: "seq_write_4m_fdatasync",
    divisor: COPIES,
    target: 0.8,
  },
  {
    key: "nbdcopyRead",
    title: "nbdcopy NBD → null: (cold)",
    unit: "MB/s",
    raw: "seq_read_4m_direct",
    divisor: 1,
    target: 0.6,
  },
  {
    key: "qemuWrite",
    title: `qemu-img convert -n -W -m ${QEMU_COROUTINES} file → NBD`,
    unit: "MB/s",
    raw: "seq_write_4m_fdatasync",
    divisor: COPIES,
    target: 0.8,
  },
  {
    key: "qemuRead",
    title: `qemu-img convert -m ${QEMU_COROUTINES} NBD → null-co (cold)`,
    unit: "MB/s",
    raw: "seq_read_4m_direct",
    divisor: 1,
    target: 0.6,
  },
  {
    key: "randWriteQd1",
    title: "fio 4 KiB random write QD1",
    unit: "IOPS",
    raw: "randwrite_4k_fdatasync_qd1",
    divisor: COPIES,
  },
  {
    key: "randWriteQd1Sync",
    title: "fio 4 KiB random write QD1, fdatasync each",
    unit: "IOPS",
    raw: "randwrite_4k_fdatasync_qd1",
    divisor: COPIES,
  },
  {
    key: "randWriteQd32",
    title: `fio 4 KiB random write QD${DEEP_QD}`,
    unit: "IOPS",
    raw: "randwrite_4k_fdatasync_qd16",
    divisor: COPIES,
  },
  {
    key: "randWriteQd32Sync",
    title: `fio 4 KiB random write QD${DEEP_QD}, fdatasync each`,
    unit: "IOPS",
    raw: "randwrite_4k_fdatasync_qd16",
    divisor: COPIES,
  },
  {
    key: "randReadQd1",
    title: "fio 4 KiB random read QD1 (cold)",
    unit: "IOPS",
    raw: "randread_4k_qd1",
    divisor: 1,
  },
  {
    key: "randReadQd32",
    title: `fio 4 KiB random read QD${DEEP_QD} (cold)`,
    unit: "IOPS",
    raw: "randread_4k_qd16",
    divisor: 1,
  },
];

/** Size and duration of the raw jobs run beside the phases. */
const RAW_SIZE_MIB = 256;
const RAW_SECONDS = 3;

/** Options of {@linkcode runNbdBench}. */
export interface NbdBenchOptions {
  /** Bytes copied in each direction, in MiB; 0 skips the benchmark. */
  sizeMiB: number;
  repeats: number;
  /** Seconds per fio job. */
  randSeconds: number;
  onProgress?: (line: string) => void;
}

/** Defaults of the full run. */
export const NBD_BENCH_DEFAULTS: NbdBenchOptions = { sizeMiB: 1024, repeats: 3, randSeconds: 5 };

/** How fio reaches the export. */
export type FioPath = "nbdfuse" | "fio-nbd-engine" | "none";

/** One measured phase. */
export interface NbdPhaseSample {
  /** Bytes/s or IOPS. */
  value: number;
  /** The matching raw job's figure in this repeat (bytes/s or IOPS, not divided). */
  raw: number;
  /** CPU used by the NBD-serving sheep (gateway) and by the two others, per wall second. */
  cpu: number[];
  wallSeconds: number;
}

/** One repeat. */
export interface NbdRepeat {
  phases: Partial<Record<NbdMetric, NbdPhaseSample>>;
  /** 1-minute load average at the start and the end of the repeat. */
  load: [number, number];
}

/** A row of the report. */
export interface NbdRow {
  metric: NbdMetric;
  title: string;
  unit: "MB/s" | "IOPS";
  value: number;
  samples: number[];
  rawJob: string;
  rawTitle: string;
  /** The raw median (not divided). */
  raw: number;
  rawSamples: number[];
  divisor: number;
  /** value ÷ (raw ÷ divisor). */
  ratio: number;
  target?: string;
  pass?: boolean;
}

/** What {@linkcode runNbdBench} returns (JSON-ready). */
export interface NbdBenchReport {
  startedAt: string;
  options: Omit<NbdBenchOptions, "onProgress">;
  /** Size and duration of the raw jobs. */
  rawJobs: { sizeMiB: number; seconds: number };
  tools: Record<string, string>;
  fioPath: FioPath;
  /** Why fio ran the way it did (or not at all). */
  fioNote: string;
  cores: number;
  rows: NbdRow[];
  repeats: NbdRepeat[];
}

// ---------------------------------------------------------------------------------------------
// Tools

async function toolVersion(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { deadlineMs: 10_000 });
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderrText}`);
  return r.stdoutText.split("\n")[0].trim();
}

/** How fio can reach an NBD export on this machine, and why. */
async function chooseFioPath(): Promise<{ path: FioPath; note: string }> {
  const fuse = await Deno.stat("/dev/fuse").then(() => true, () => false);
  const nbdfuse = findExecutable("nbdfuse") !== null && findExecutable("fusermount3") !== null;
  if (fuse && nbdfuse) return { path: "nbdfuse", note: "fio through nbdfuse, --direct=1" };
  const why = !fuse ? "no /dev/fuse" : "nbdfuse or fusermount3 missing (Debian libnbd-bin, fuse3)";
  const engines = await run("fio", ["--enghelp"], { deadlineMs: 10_000 });
  if (engines.success && /\bnbd\b/.test(engines.stdoutText)) {
    return { path: "fio-nbd-engine", note: `${why}: fio's nbd engine instead of nbdfuse` };
  }
  return { path: "none", note: `${why}, and fio has no nbd engine: fio rows skipped` };
}

async function mustRun(cmd: string, args: string[], deadlineMs: number): Promise<RunResult> {
  const r = await run(cmd, args, { deadlineMs });
  if (!r.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}\n` +
        `--- stderr ---\n${r.stderrText}--- stdout ---\n${r.stdoutText.slice(0, 2000)}`,
    );
  }
  return r;
}

/** Writes `mib` MiB of incompressible data (a random MiB, each copy with its own first bytes). */
async function writeSource(path: string, mib: number): Promise<void> {
  const block = new Uint8Array(MiB);
  for (let o = 0; o < MiB; o += 65536) crypto.getRandomValues(block.subarray(o, o + 65536));
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let i = 0; i < mib; i++) {
      new DataView(block.buffer).setUint32(0, i);
      let off = 0;
      while (off < MiB) off += await f.write(block.subarray(off));
    }
    await f.syncData();
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The nbdfuse mount

/** nbdfuse of one export; `close()` unmounts and stops it (also on SIGINT while mounted). */
class FuseMount {
  readonly file: string;
  readonly #mnt: string;
  readonly #proc: ManagedProcess;
  readonly #onSigint: () => void;
  #closed = false;

  private constructor(mnt: string, proc: ManagedProcess) {
    this.#mnt = mnt;
    this.file = `${mnt}/disk`;
    this.#proc = proc;
    // Ctrl-C of the bench must not leave a mount behind: unmount synchronously, then exit.
    this.#onSigint = () => {
      new Deno.Command("fusermount3", { args: ["-u", this.#mnt], stdout: "null", stderr: "null" })
        .outputSync();
      this.#proc.signal("SIGKILL");
      Deno.exit(130);
    };
    Deno.addSignalListener("SIGINT", this.#onSigint);
  }

  static async mount(mnt: string, url: string, size: number): Promise<FuseMount> {
    await Deno.mkdir(mnt, { recursive: true });
    const proc = spawnManaged(["nbdfuse", `${mnt}/disk`, url]);
    const m = new FuseMount(mnt, proc);
    try {
      await waitUntil(
        async () => {
          if (!proc.running) throw new Error(`nbdfuse exited\n${proc.logTail()}`);
          return (await Deno.stat(m.file).catch(() => null))?.size === size;
        },
        MOUNT_DEADLINE_MS,
        `the nbdfuse mount of ${url}`,
      );
    } catch (e) {
      await m.close();
      throw e;
    }
    return m;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    Deno.removeSignalListener("SIGINT", this.#onSigint);
    const r = await run("fusermount3", ["-u", this.#mnt], { deadlineMs: UMOUNT_DEADLINE_MS });
    await this.#proc.stop(FUSE_STOP_DEADLINE_MS);
    // fusermount3 fails when nbdfuse already went and took its mount with it: check the result.
    const still = (await Deno.readTextFile("/proc/self/mounts")).includes(` ${this.#mnt} `);
    if (still) {
      throw new Error(`cannot unmount ${this.#mnt}: ${r.stderrText || `exit ${r.code}`}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One repeat

function fioArgs(metric: NbdMetric, target: string[], sizeBytes: number, seconds: number): {
  args: string[];
  side: "read" | "write";
} {
  const write = metric.startsWith("randWrite");
  const deep = metric.includes("Qd32");
  return {
    args: [
      `--name=${metric}`,
      ...target,
      `--size=${sizeBytes}`,
      `--rw=${write ? "randwrite" : "randread"}`,
      "--bs=4k",
      ...(deep ? [`--iodepth=${DEEP_QD}`] : []),
      ...(metric.endsWith("Sync") ? ["--fdatasync=1"] : []),
      "--norandommap",
      "--randrepeat=0",
      `--runtime=${seconds}`,
      "--time_based",
      "--output-format=json",
    ],
    side: write ? "write" : "read",
  };
}

async function runRepeat(
  o: NbdBenchOptions,
  fioPath: FioPath,
  rawJobs: { sizeMiB: number; seconds: number },
): Promise<NbdRepeat> {
  const say = o.onProgress ?? (() => {});
  const size = o.sizeMiB * MiB;
  const load0 = await loadAverage();
  const nbdPort = freePort();
  const cluster = await startCluster(NODES, {
    copies: COPIES,
    nodeArgs: [["--nbd", `127.0.0.1:${nbdPort}`]],
    readyDeadlineMs: START_DEADLINE_MS,
  });
  const phases: Partial<Record<NbdMetric, NbdPhaseSample>> = {};
  try {
    const gw = cluster.sheep[0];
    await gw.waitListening(nbdPort, NBD_LISTEN_DEADLINE_MS);
    for (const v of ["a", "b"]) {
      const r = await cluster.dog(["vdi", "create", v, String(size)], {
        deadlineMs: DOG_DEADLINE_MS,
      });
      if (!r.success) throw new Error(`dog vdi create ${v} failed: ${r.stderrText}`);
    }
    const url = (v: string) => `nbd://127.0.0.1:${nbdPort}/${v}`;
    const src = `${cluster.root}/source.raw`;
    await writeSource(src, o.sizeMiB);
    const pids = cluster.sheep.map((s) => s.pid);
    const objDirs = cluster.sheep.map((s) => `${s.dir}/obj`);
    const copyDeadline = Math.ceil((o.sizeMiB / 1024) * COPY_MS_PER_GIB) * COPIES +
      COPY_EXTRA_MS;

    // Each raw job runs once per repeat, right before the first phase compared with it.
    const rawFigures = new Map<string, number>();
    const rawFigure = async (m: MetricSpec) => {
      let f = rawFigures.get(m.raw);
      if (f === undefined) {
        const r = await measureRawLimits({
          dir: cluster.root,
          sizeMiB: rawJobs.sizeMiB,
          runtimeSec: rawJobs.seconds,
          repeats: 1,
          only: [m.raw],
        });
        f = m.unit === "MB/s" ? r.results[0].bwBytes : r.results[0].iops;
        rawFigures.set(m.raw, f);
      }
      return f;
    };
    const measure = async (
      m: MetricSpec,
      body: () => Promise<number>,
    ): Promise<void> => {
      const raw = await rawFigure(m);
      if (m.unit === "MB/s" && m.key.endsWith("Write")) {
        await conditionMemory(cluster.root, o.sizeMiB * COPIES);
      }
      if (m.key.endsWith("Read") || m.key.startsWith("randRead")) await dropPageCache(objDirs);
      const cpu0 = await Promise.all(pids.map((p) => cpuSeconds(p)));
      const t0 = performance.now();
      const result = await body();
      const wall = (performance.now() - t0) / 1000;
      const cpu1 = await Promise.all(pids.map((p) => cpuSeconds(p)));
      const value = m.unit === "MB/s" ? size / wall : result;
      const cpu = pids.map((_, i) => (cpu1[i] - cpu0[i]) / wall);
      phases[m.key] = { value, raw, cpu, wallSeconds: wall };
      const fmt = (x: number) => m.unit === "MB/s" ? formatBandwidth(x) : `${Math.round(x)} IOPS`;
      say(
        `  ${m.key}: ${fmt(value)}, raw ${fmt(raw)}${m.divisor === 1 ? "" : ` ÷ ${m.divisor}`} ` +
          `(${pct(value / (raw / m.divisor))}); cpu sheep ${
            cpu.map((c) => `${Math.round(c * 100)}%`).join("/")
          }`,
      );
    };
    const spec = (k: NbdMetric) => METRICS.find((m) => m.key === k)!;

    await measure(spec("nbdcopyWrite"), async () => {
      await mustRun("nbdcopy", ["--flush", src, url("a")], copyDeadline);
      return 0;
    });
    await measure(spec("nbdcopyRead"), async () => {
      await mustRun("nbdcopy", [url("a"), "null:"], copyDeadline);
      return 0;
    });
    const qemuM = ["-m", String(QEMU_COROUTINES)];
    await measure(spec("qemuWrite"), async () => {
      await mustRun("qemu-img", [
        "convert",
        "-n",
        "-W",
        ...qemuM,
        "-f",
        "raw",
        "-O",
        "raw",
        src,
        url("b"),
      ], copyDeadline);
      return 0;
    });
    await measure(spec("qemuRead"), async () => {
      await mustRun("qemu-img", [
        "convert",
        "-n",
        ...qemuM,
        "-f",
        "raw",
        "--target-image-opts",
        url("b"),
        `driver=null-co,size=${size}`,
      ], copyDeadline);
      return 0;
    });
    await Deno.remove(src);

    if (fioPath !== "none") {
      const mount = fioPath === "nbdfuse"
        ? await FuseMount.mount(`${cluster.root}/mnt`, url("a"), size)
        : null;
      try {
        for (const m of METRICS.filter((x) => x.unit === "IOPS")) {
          const deep = m.key.includes("Qd32");
          const target = mount
            ? [
              `--filename=${mount.file}`,
              "--direct=1",
              `--ioengine=${deep ? "libaio" : "psync"}`,
            ]
            : ["--ioengine=nbd", `--uri=${url("a")}`];
          const job = fioArgs(m.key, target, size, o.randSeconds);
          await measure(m, async () => {
            const r = await mustRun(
              "fio",
              job.args,
              o.randSeconds * 1000 + FIO_EXTRA_MS,
            );
            return parseFioJson(r.stdoutText, job.side).iops;
          });
        }
      } finally {
        await mount?.close();
      }
    }
    return { phases, load: [load0, await loadAverage()] };
  } finally {
    await cluster.stopAll();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

function buildRows(reps: NbdRepeat[]): NbdRow[] {
  const rows: NbdRow[] = [];
  for (const m of METRICS) {
    const got = reps.map((r) => r.phases[m.key]).filter((p): p is NbdPhaseSample => !!p);
    if (got.length === 0) continue;
    const rawValue = median(got.map((p) => p.raw));
    const value = median(got.map((p) => p.value));
    const row: NbdRow = {
      metric: m.key,
      title: m.title,
      unit: m.unit,
      value,
      samples: got.map((p) => p.value),
      rawJob: m.raw,
      rawTitle: RAW_JOBS.find((j) => j.name === m.raw)?.title ?? m.raw,
      raw: rawValue,
      rawSamples: got.map((p) => p.raw),
      divisor: m.divisor,
      ratio: value / (rawValue / m.divisor),
    };
    if (m.target !== undefined) {
      row.target = `≥ ${pct(m.target)} of raw${m.divisor === 1 ? "" : ` ÷ ${m.divisor}`}`;
      row.pass = row.ratio >= m.target;
    }
    rows.push(row);
  }
  return rows;
}

function fmtValue(unit: string, x: number): string {
  return unit === "MB/s" ? formatBandwidth(x) : `${Math.round(x).toLocaleString("en-US")} IOPS`;
}

/** The report as a markdown table. */
export function nbdBenchTable(r: NbdBenchReport): string {
  const lines = [
    "| workload | sheepdog over NBD | raw, same run | compared with | ratio | target | result |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.title} | ${fmtValue(row.unit, row.value)} | ${
        fmtValue(row.unit, row.raw)
      } (${row.rawTitle}) | ` +
        `${row.divisor === 1 ? "raw" : `raw ÷ ${row.divisor}`} | ${pct(row.ratio)} | ` +
        `${row.target ?? "—"} | ${row.pass === undefined ? "—" : row.pass ? "pass" : "**miss**"} |`,
    );
  }
  return lines.join("\n");
}

function loadRange(r: NbdBenchReport): string {
  const all = r.repeats.flatMap((x) => x.load);
  if (all.length === 0) return "unknown";
  return `${Math.min(...all).toFixed(1)}-${Math.max(...all).toFixed(1)}`;
}

/** A heading paragraph for the table: what ran, how often, where. */
export function nbdBenchHeading(r: NbdBenchReport): string {
  const o = r.options;
  const t = r.tools;
  return `## NBD export (three sheep, zones 0-2, copies 3, NBD served by the first)\n\n` +
    `${o.sizeMiB} MiB copied each way (each direction into a fresh VDI), ${o.randSeconds} s ` +
    `per fio job over the first VDI, median of ${o.repeats} repeats (fresh daemons and store ` +
    `each); ${t.nbdcopy}, ${t["qemu-img"]}, ${t.fio}; ${r.fioNote}; sheep without -n; NBD ` +
    `writes are writeback (acknowledged once all three replicas have them, durable on all three ` +
    `at the client's FLUSH): nbdcopy --flush and qemu-img (which flushes before it disconnects) ` +
    `are timed to the end of their final FLUSH, and the rows "fdatasync each" flush after every ` +
    `write; reads cold; raw figures: the ` +
    `raw-limits jobs (${r.rawJobs.sizeMiB} MiB file, ${r.rawJobs.seconds} s) on the store's file ` +
    `system, each run in every repeat right before the phases compared with it (QD32 rows ` +
    `against raw QD16, the deepest raw job); ${r.cores} cores; measured ${r.startedAt}, machine ` +
    `load average ${loadRange(r)} during the run.\n`;
}

/** Runs the benchmark. */
export async function runNbdBench(opts: Partial<NbdBenchOptions>): Promise<NbdBenchReport> {
  const o: NbdBenchOptions = { ...NBD_BENCH_DEFAULTS, ...opts };
  for (const [cmd, pkg] of [["nbdcopy", "libnbd-bin"], ["qemu-img", "qemu-utils"]]) {
    if (findExecutable(cmd) === null) {
      throw new Error(`${cmd} is not installed (Debian package ${pkg})`);
    }
  }
  const fio = await chooseFioPath();
  o.onProgress?.(`bench: nbd: ${fio.note}`);
  const report: NbdBenchReport = {
    startedAt: new Date().toISOString(),
    options: { sizeMiB: o.sizeMiB, repeats: o.repeats, randSeconds: o.randSeconds },
    rawJobs: {
      sizeMiB: Math.min(RAW_SIZE_MIB, o.sizeMiB),
      seconds: Math.min(RAW_SECONDS, o.randSeconds),
    },
    tools: {
      nbdcopy: await toolVersion("nbdcopy", ["--version"]),
      "qemu-img": await toolVersion("qemu-img", ["--version"]),
      fio: await fioVersion(),
    },
    fioPath: fio.path,
    fioNote: fio.note,
    cores: navigator.hardwareConcurrency,
    rows: [],
    repeats: [],
  };
  for (let i = 0; i < o.repeats; i++) {
    o.onProgress?.(`bench: nbd repeat ${i + 1}/${o.repeats}`);
    report.repeats.push(await runRepeat(o, fio.path, report.rawJobs));
  }
  report.rows = buildRows(report.repeats);
  return report;
}

// ---------------------------------------------------------------------------------------------
// Command line

export const NBD_BENCH_USAGE = `NBD export (bench/nbd_bench.ts; after the cluster drivers):
  --nbd-size MiB          bytes copied each way (default 1024; "none" skips the benchmark)
  --nbd-repeats N         repeats, median reported (default 3)
  --nbd-rand-seconds S    seconds per fio job (default 5)
  --quick                 64 MiB, 2 s, 1 repeat`;

/**
 * Applies one option at argv[i] to `o`; returns how many arguments it used (0: not ours). Throws
 * on a bad value.
 */
export function parseNbdBenchArg(argv: string[], i: number, o: NbdBenchOptions): number {
  const num = (k: string): number => {
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${k} wants a positive integer`);
    return n;
  };
  switch (argv[i]) {
    case "--nbd-size":
      o.sizeMiB = argv[i + 1] === "none" ? 0 : num("--nbd-size");
      return 2;
    case "--nbd-repeats":
      o.repeats = num("--nbd-repeats");
      return 2;
    case "--nbd-rand-seconds":
      o.randSeconds = num("--nbd-rand-seconds");
      return 2;
    case "--quick":
      // A size already set to "none" stays skipped.
      Object.assign(o, { sizeMiB: o.sizeMiB === 0 ? 0 : 64, randSeconds: 2, repeats: 1 });
      return 1;
  }
  return 0;
}

async function main(): Promise<void> {
  const o: NbdBenchOptions = { ...NBD_BENCH_DEFAULTS };
  const args = parseStandaloneArgs(
    { name: "nbd_bench", usage: NBD_BENCH_USAGE, parseArg: parseNbdBenchArg },
    Deno.args,
    o,
  );
  if (args === null || o.sizeMiB === 0) return;
  o.onProgress = (l) => console.error(l);
  const report = await runNbdBench(o);
  if (await writeJsonReport(args.json, report)) return;
  console.log(nbdBenchHeading(report));
  console.log(nbdBenchTable(report));
}

if (import.meta.main) await main();
