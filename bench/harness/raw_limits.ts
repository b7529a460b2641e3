/**
 * This machine's raw limits, measured with fio in the same run as the benchmarks they are compared
 * with (the machine is shared and noisy: quote medians of repeats, and ratios taken in one run).
 *
 * The write jobs use the durability the store gives an acknowledged write: a 4 MiB object write
 * followed by fdatasync (and, for reference, O_DIRECT with one sync at the end); 4 KiB random
 * writes with an fdatasync after each, at one writer (QD1) and sixteen concurrent writers on files
 * of their own (QD16, like sixteen outstanding client writes to different objects).
 *
 * @module
 */

/** Sizes and durations of one measurement. */
export interface RawLimitsOptions {
  /** Directory on the file system under test (a scratch subdirectory is created and removed). */
  dir: string;
  /** Data file size in MiB (default 256). */
  sizeMiB?: number;
  /** Seconds per fio job (default 3). */
  runtimeSec?: number;
  /** Repeats of every job; the median is reported (default 3). */
  repeats?: number;
  /** Only these jobs (names of {@linkcode RAW_JOBS}). */
  only?: string[];
  /** Called before each fio run, for progress output. */
  onProgress?: (job: string, repeat: number) => void;
}

/** One fio job of the raw-limits set. */
export interface RawJob {
  name: string;
  /** What it measures, for the table. */
  title: string;
  /** `read` or `write`: which side of fio's report holds the numbers. */
  side: "read" | "write";
  /** Concurrent writers/readers with a file each (numjobs), default 1. */
  numjobs?: number;
  /** fio options (without name/filename/size/runtime/output format). */
  args: string[];
}

/** The jobs, in the order they run (reads come after the writes that laid out the file). */
export const RAW_JOBS: readonly RawJob[] = [
  {
    name: "seq_write_4m_direct",
    title: "seq write 4 MiB, O_DIRECT, fsync at end",
    side: "write",
    args: ["--rw=write", "--bs=4M", "--direct=1", "--ioengine=psync", "--end_fsync=1"],
  },
  {
    name: "seq_write_4m_fdatasync",
    title: "seq write 4 MiB, fdatasync each (the store's write)",
    side: "write",
    args: ["--rw=write", "--bs=4M", "--direct=0", "--ioengine=psync", "--fdatasync=1"],
  },
  {
    name: "seq_read_4m_direct",
    title: "seq read 4 MiB, O_DIRECT",
    side: "read",
    args: ["--rw=read", "--bs=4M", "--direct=1", "--ioengine=psync"],
  },
  {
    name: "randwrite_4k_fdatasync_qd1",
    title: "rand write 4 KiB, fdatasync each, QD1",
    side: "write",
    args: ["--rw=randwrite", "--bs=4k", "--direct=0", "--ioengine=psync", "--fdatasync=1"],
  },
  {
    name: "randwrite_4k_fdatasync_qd16",
    title: "rand write 4 KiB, fdatasync each, 16 writers",
    side: "write",
    numjobs: 16,
    args: ["--rw=randwrite", "--bs=4k", "--direct=0", "--ioengine=psync", "--fdatasync=1"],
  },
  {
    name: "randread_4k_qd1",
    title: "rand read 4 KiB, O_DIRECT, QD1",
    side: "read",
    args: ["--rw=randread", "--bs=4k", "--direct=1", "--ioengine=psync"],
  },
  {
    name: "randread_4k_qd16",
    title: "rand read 4 KiB, O_DIRECT, QD16 (libaio)",
    side: "read",
    args: ["--rw=randread", "--bs=4k", "--direct=1", "--ioengine=libaio", "--iodepth=16"],
  },
];

/** Numbers of one fio run. */
export interface FioSample {
  /** Bytes per second. */
  bwBytes: number;
  iops: number;
  /** Mean completion latency of one I/O (incl. its sync for fdatasync jobs), microseconds. */
  meanLatUs: number;
}

/** Median numbers of one job, with every sample. */
export interface RawResult extends FioSample {
  name: string;
  title: string;
  samples: FioSample[];
}

/** Everything one measurement produced (JSON-ready). */
export interface RawLimits {
  fioVersion: string;
  dir: string;
  sizeMiB: number;
  runtimeSec: number;
  repeats: number;
  startedAt: string;
  results: RawResult[];
}

/** Median of numbers (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Extracts the numbers of `side` from fio's JSON output (warnings before the JSON are skipped). */
export function parseFioJson(stdout: string, side: "read" | "write"): FioSample {
  const start = stdout.indexOf("{");
  if (start < 0) throw new Error(`no JSON in fio output: ${stdout.slice(0, 300)}`);
  // deno-lint-ignore no-explicit-any
  const doc = JSON.parse(stdout.slice(start)) as any;
  const job = doc?.jobs?.[0];
  const s = job?.[side];
  if (!s) throw new Error(`fio output has no jobs[0].${side}`);
  if (job.error) throw new Error(`fio job failed with error ${job.error}`);
  let latNs = Number(s.lat_ns?.mean ?? s.clat_ns?.mean ?? 0);
  // With fdatasync=1 fio reports the sync's latency apart: an acknowledged write costs both.
  const sync = job.sync?.lat_ns;
  if (side === "write" && typeof sync?.mean === "number" && sync.N > 0) latNs += sync.mean;
  return { bwBytes: Number(s.bw_bytes), iops: Number(s.iops), meanLatUs: latNs / 1000 };
}

async function fio(args: string[]): Promise<string> {
  const out = await new Deno.Command("fio", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `fio ${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}${text}`,
    );
  }
  return text;
}

/** fio's version string, or throws a clear error when fio is missing. */
export async function fioVersion(): Promise<string> {
  try {
    return (await fio(["--version"])).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "fio is not installed (Debian package fio; bin/setup --test-deps installs it)",
      );
    }
    throw e;
  }
}

/** Runs every job `repeats` times and returns the medians. */
export async function measureRawLimits(opts: RawLimitsOptions): Promise<RawLimits> {
  const sizeMiB = opts.sizeMiB ?? 256;
  const runtimeSec = opts.runtimeSec ?? 3;
  const repeats = opts.repeats ?? 3;
  const version = await fioVersion();
  await Deno.mkdir(opts.dir, { recursive: true });
  const work = await Deno.makeTempDir({ dir: opts.dir, prefix: "raw-limits-" });
  const jobs = RAW_JOBS.filter((j) => !opts.only || opts.only.includes(j.name));
  const results: RawResult[] = [];
  const startedAt = new Date().toISOString();
  try {
    for (const job of jobs) {
      const samples: FioSample[] = [];
      for (let r = 0; r < repeats; r++) {
        opts.onProgress?.(job.name, r);
        const n = job.numjobs ?? 1;
        const where = n > 1
          ? [
            `--directory=${work}`,
            `--numjobs=${n}`,
            `--size=${Math.max(1, Math.floor(sizeMiB / n))}M`,
          ]
          : [`--filename=${work}/data`, `--size=${sizeMiB}M`];
        const args = [
          `--name=${job.name}`,
          ...where,
          ...job.args,
          `--runtime=${runtimeSec}`,
          "--time_based",
          "--group_reporting",
          "--output-format=json",
        ];
        samples.push(parseFioJson(await fio(args), job.side));
      }
      results.push({
        name: job.name,
        title: job.title,
        bwBytes: median(samples.map((s) => s.bwBytes)),
        iops: median(samples.map((s) => s.iops)),
        meanLatUs: median(samples.map((s) => s.meanLatUs)),
        samples,
      });
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return { fioVersion: version, dir: opts.dir, sizeMiB, runtimeSec, repeats, startedAt, results };
}

/** Formats a bandwidth in bytes/s as MB/s or GB/s (decimal, as fio and the docs quote them). */
export function formatBandwidth(bytesPerSec: number): string {
  if (bytesPerSec >= 1e9) return `${(bytesPerSec / 1e9).toFixed(2)} GB/s`;
  return `${(bytesPerSec / 1e6).toFixed(1)} MB/s`;
}

/** A markdown table of the medians. */
export function rawLimitsTable(r: RawLimits): string {
  const rows = [
    "| what | median | IOPS | mean latency |",
    "|---|---|---|---|",
    ...r.results.map((x) =>
      `| ${x.title} | ${formatBandwidth(x.bwBytes)} | ${
        Math.round(x.iops).toLocaleString("en-US")
      } | ${x.meanLatUs.toFixed(0)} µs |`
    ),
  ];
  return rows.join("\n");
}
