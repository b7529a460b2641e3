/**
 * Recovery after a node loss (issue 4 §5): how fast the survivors re-replicate, and what a client
 * writing through a surviving gateway keeps of its write rate meanwhile.
 *
 * N sheep (default 4 and 6), each in its own zone, copies 3, durable writes (no `-n`), the
 * default throttle (none, as v1.0) unless `--recovery-throttle` is given. With 3 sheep and
 * copies 3 a loss leaves 2 zones: nothing can be re-replicated, hence 4 and 6.
 *
 * Every round starts a fresh cluster, writes OBJECTS 4 MiB data objects (4 KiB of each is enough
 * to allocate it whole, but they are written whole, 8 in flight), drops the stores' page cache
 * (the objects were written long ago, not seconds ago), starts its client on the first sheep, lets
 * it run WARMUP + BEFORE seconds, SIGKILLs the last sheep and waits until every survivor has
 * finished recovering and purged its stale copies. The recovery window is from the SIGKILL to the
 * last survivor's "every node finished; stale objects purged" log line (millisecond timestamps of
 * the same clock), not to when polling noticed it. Three rounds per repeat:
 * - idle: no client; the recovery rate alone;
 * - seq: a client creating new 4 MiB objects of another VDI, SEQ_DEPTH in flight on one
 *   connection (what a guest writing a fresh disk sends);
 * - rand: a client writing 4 KiB blocks at random offsets of the objects being recovered, RAND_DEPTH
 *   in flight on one connection: a write to an object its holder still lacks waits for its
 *   recovery (which takes it first), the cost recovery puts on such a client.
 * The client's figure "before" counts the requests completed in the BEFORE seconds up to the kill
 * (steady state after WARMUP); "during" the requests completed within the recovery window.
 *
 * Recovery rate = bytes the survivors fetched (their "recovery: done" log lines) ÷ the window.
 * Target: ≥ 50% of the machine's raw sequential write (fio, 4 MiB + fdatasync each, measured in the
 * same run) ÷ copies, while the client keeps ≥ 50% of its rate before the kill.
 *
 * Run alone: `deno run --allow-all --v8-flags=--stack-size=4096 bench/recovery_bench.ts --help`
 * (it then measures the raw figure itself); also part of `deno task bench`.
 *
 * @module
 */

import { parseStandaloneArgs, writeJsonReport } from "./harness/standalone.ts";
import { SheepClient } from "../core/net/client.ts";
import { Flag, Op, Res, SD_PROTO_VER } from "../core/proto/constants.ts";
import { SdReq } from "../core/proto/header.ts";
import { vidToDataOid } from "../core/hash/oid.ts";
import { sleep, withDeadline } from "../tests/harness/mod.ts";
import { createVdi, type Slot, Slots, waitRecovered } from "../tests/recovery_support.ts";
import { median, type RawLimits } from "./harness/raw_limits.ts";
import { dropPageCache, loadAverage } from "./sheep_io.ts";
import { seqWrite } from "./workload.ts";
import { CLIENT_BUSY_MAX_IN_FLIGHT, CLIENT_BUSY_PAUSE_RATIO } from "../core/recovery/progress.ts";

const OBJ = 4 << 20;
const BLOCK = 4096;
const MB = 1e6;
const COPIES = 3;
/** The raw-limits job the recovery rate is compared with. */
export const RECOVERY_RAW_JOB = "seq_write_4m_fdatasync";
/** Requests in flight: the seq client ("a few"), the rand client, and the preload. */
const SEQ_DEPTH = 4;
const RAND_DEPTH = 16;
const PRELOAD_DEPTH = 8;
/** Objects of the seq client's VDI (64 GiB: more than any run writes). */
const SEQ_VDI_OBJECTS = 16_384;
/** Targets (issue 4 §5). */
const RECOVERY_TARGET_SHARE = 0.5;
const CLIENT_TARGET_SHARE = 0.5;
/** Deadlines. */
const RECOVERY_DEADLINE_MS = 300_000;
const PRELOAD_MS_PER_OBJECT = 2_000;
const CLIENT_STOP_DEADLINE_MS = 60_000;
const LOG_LINE_DEADLINE_MS = 10_000;
const DEFAULT_NODES = [4, 6];

/** The client running during a round. */
export type ClientKind = "idle" | "seq" | "rand";
const CLIENT_KINDS: readonly ClientKind[] = ["idle", "seq", "rand"];

/** Options of {@linkcode runRecoveryBench}. */
export interface RecoveryBenchOptions {
  /** Cluster sizes (each ≥ 4: see the module doc); empty: skip the benchmark. */
  nodes: number[];
  /** 4 MiB objects written before the kill. */
  objects: number;
  repeats: number;
  /** Rounds per repeat. */
  clients: ClientKind[];
  /**
   * The rand client writes into the first this many objects (its disk among others'); 0: into all
   * of them.
   */
  randObjects: number;
  /** Client seconds before the measured steady state, and of the steady state. */
  warmupSeconds: number;
  beforeSeconds: number;
  /** `sheep -R max=N,interval=MS`, or null for the default (none). */
  throttle: string | null;
  onProgress?: (line: string) => void;
}

/** Defaults of the full run. */
export const RECOVERY_BENCH_DEFAULTS: RecoveryBenchOptions = {
  nodes: DEFAULT_NODES,
  objects: 256,
  repeats: 3,
  clients: [...CLIENT_KINDS],
  randObjects: 32,
  warmupSeconds: 1,
  beforeSeconds: 3,
  throttle: null,
};

/** One round: one fresh cluster, one kill. */
export interface RecoveryRound {
  nodes: number;
  client: ClientKind;
  /** Bytes the survivors fetched. */
  bytes: number;
  /** Kill → last survivor purged its stale copies, ms. */
  windowMs: number;
  /** Kill → the first survivor logging the new epoch ("node left"), ms: failure detection. */
  detectMs: number;
  /** Bytes/s. */
  rate: number;
  /** Client figure before the kill and during the window: bytes/s (seq) or IOPS (rand). */
  before?: number;
  during?: number;
  /** Slowest client request completed in the window, ms. */
  maxLatencyMs?: number;
  /** 1-minute load average at the start and the end of the round. */
  load: [number, number];
  /**
   * Where the window went: each survivor's "node left", "plan ready" and "recovery: done" times,
   * ms after the kill, and the client's requests completed per TIMELINE_BUCKET_MS from
   * TIMELINE_BEFORE_MS before the kill to the end of the window.
   */
  phases: SurvivorPhases[];
  timeline?: number[];
}

/** When a survivor logged the loss, its plan and its end of recovery (ms; NaN: no line). */
export interface SurvivorPhases {
  left: number;
  plan: number;
  done: number;
}

/** The timeline's bucket, and how far before the kill it starts (ms). */
export const TIMELINE_BUCKET_MS = 100;
export const TIMELINE_BEFORE_MS = 500;

/** The report. */
export interface RecoveryBenchReport {
  startedAt: string;
  options: Omit<RecoveryBenchOptions, "onProgress">;
  /** The raw figure compared with (bytes/s), and its title. */
  rawSeqWrite: number;
  rawTitle: string;
  rounds: RecoveryRound[];
}

// -----------------------------------------------------------------------------------------------
// The client

/** A client loop that records when each request completed. */
class Client {
  readonly done: { at: number; ms: number }[] = [];
  readonly errors: string[] = [];
  #stop = false;
  #loops: Promise<void>[] = [];

  constructor(readonly c: SheepClient) {}

  /** `depth` loops of `one()` until stop(). */
  start(depth: number, one: () => Promise<number>): void {
    this.#loops = Array.from({ length: depth }, async () => {
      while (!this.#stop) {
        const t = Date.now();
        const result = await one();
        if (result !== Res.SUCCESS) {
          this.errors.push(`result 0x${result.toString(16)} at ${t}`);
          continue;
        }
        const now = Date.now();
        this.done.push({ at: now, ms: now - t });
      }
    }).map((loop) =>
      // Kept and thrown by the round, not lost as an unhandled rejection meanwhile.
      loop.catch((e) => {
        this.errors.push(String(e));
      })
    );
  }

  async stop(): Promise<void> {
    this.#stop = true;
    const r = await withDeadline(Promise.all(this.#loops), CLIENT_STOP_DEADLINE_MS);
    if (!r.ok) throw new Error(`the client did not stop within ${CLIENT_STOP_DEADLINE_MS} ms`);
  }

  /** Requests completed in [from, to). */
  count(from: number, to: number): { n: number; maxMs: number } {
    let n = 0;
    let maxMs = 0;
    for (const d of this.done) {
      if (d.at >= from && d.at < to) {
        n++;
        maxMs = Math.max(maxMs, d.ms);
      }
    }
    return { n, maxMs };
  }
}

function startSeqClient(c: SheepClient, vid: number): Client {
  const data = new Uint8Array(OBJ);
  crypto.getRandomValues(data.subarray(0, 65536));
  for (let o = 65536; o < OBJ; o += 65536) data.copyWithin(o, 0, 65536);
  let next = 0;
  const client = new Client(c);
  client.start(SEQ_DEPTH, async () => {
    const idx = next++;
    if (idx >= SEQ_VDI_OBJECTS) throw new Error("the seq client ran out of objects");
    const req = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: OBJ,
    });
    req.obj.oid = vidToDataOid(vid, idx);
    return (await c.request(req, data)).rsp.result;
  });
  return client;
}

function startRandClient(c: SheepClient, vid: number, objects: number): Client {
  const buf = new Uint8Array(BLOCK);
  crypto.getRandomValues(buf);
  const client = new Client(c);
  client.start(RAND_DEPTH, async () => {
    const req = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: BLOCK });
    req.obj.oid = vidToDataOid(vid, Math.floor(Math.random() * objects));
    req.obj.offset = Math.floor(Math.random() * (OBJ / BLOCK)) * BLOCK;
    return (await c.request(req, buf)).rsp.result;
  });
  return client;
}

// -----------------------------------------------------------------------------------------------
// The survivors' logs

/** "2025-01-02 03:04:05.678 +00:00 …" → ms since the epoch. */
function logTime(line: string): number | null {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) ([+-]\d\d:\d\d)/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}${m[3]}`) : null;
}

function props(line: string): Record<string, unknown> | null {
  const m = line.match(/\{.*\}$/);
  return m ? JSON.parse(m[0]) : null;
}

/**
 * From each survivor's log, for `epoch`: the bytes it fetched ("recovery: done") and when it
 * purged its stale copies (the cluster-wide completion). Waits for the lines (they are written
 * before polling can see their effect, but the file may lag), and when the first one learnt of
 * the loss ("node left").
 */
async function recoveryFromLogs(
  survivors: Slot[],
  epoch: number,
): Promise<{ bytes: number; end: number; left: number; phases: SurvivorPhases[] }> {
  const deadline = Date.now() + LOG_LINE_DEADLINE_MS;
  for (;;) {
    let bytes = 0;
    let end = 0;
    let complete = 0;
    let left = Infinity;
    const phases: SurvivorPhases[] = [];
    for (const s of survivors) {
      let fetched: number | null = null;
      let purged: number | null = null;
      const ph: SurvivorPhases = { left: NaN, plan: NaN, done: NaN };
      for (const line of (await Deno.readTextFile(`${s.dir}/sheep.log`)).split("\n")) {
        if (line.includes("recovery: done")) {
          const p = props(line);
          if (p?.epoch === epoch) {
            fetched = Number(p.mb) * MB;
            ph.done = logTime(line) ?? NaN;
          }
        } else if (line.includes("recovery: plan ready")) {
          const p = props(line);
          if (p?.epoch === epoch) ph.plan = logTime(line) ?? NaN;
        } else if (line.includes("stale objects purged")) {
          const p = props(line);
          if (p?.epoch === epoch) purged = logTime(line);
        } else if (line.includes("node left")) {
          const p = props(line);
          if (p?.epoch === epoch) {
            ph.left = logTime(line) ?? NaN;
            left = Math.min(left, ph.left);
          }
        }
      }
      phases.push(ph);
      if (fetched !== null && purged !== null) {
        complete++;
        bytes += fetched;
        end = Math.max(end, purged);
      }
    }
    if (complete === survivors.length && left < Infinity) return { bytes, end, left, phases };
    if (Date.now() > deadline) {
      throw new Error(`only ${complete}/${survivors.length} survivors logged epoch ${epoch}'s end`);
    }
    await sleep(100);
  }
}

// -----------------------------------------------------------------------------------------------
// A round

async function round(n: number, kind: ClientKind, o: RecoveryBenchOptions): Promise<RecoveryRound> {
  const load0 = await loadAverage();
  const extra = o.throttle ? ["-R", o.throttle] : [];
  await using slots = await Slots.create(n, extra, "recbench");
  await slots.startAll();
  await slots.format(COPIES);
  const gw = slots.slots[0];
  const dataVid = await createVdi(gw.port, "data", `${o.objects * 4}M`);
  const seqVid = kind === "seq" ? await createVdi(gw.port, "seq", `${SEQ_VDI_OBJECTS * 4}M`) : 0;
  const c = await SheepClient.connect({ host: "127.0.0.1", port: gw.port });
  try {
    const pre = await withDeadline(
      seqWrite([c], dataVid, o.objects, PRELOAD_DEPTH),
      o.objects * PRELOAD_MS_PER_OBJECT,
    );
    if (!pre.ok) throw new Error(`writing ${o.objects} objects took too long`);
    await dropPageCache(slots.slots.map((s) => `${s.dir}/obj`));

    const client = kind === "seq"
      ? startSeqClient(c, seqVid)
      : kind === "rand"
      ? startRandClient(c, dataVid, o.randObjects || o.objects)
      : null;
    let done: Awaited<ReturnType<typeof waitRecovered>>;
    let t0 = 0;
    try {
      if (client) await sleep((o.warmupSeconds + o.beforeSeconds) * 1000);
      t0 = Date.now();
      await slots.slots[n - 1].kill();
      done = await waitRecovered(slots, n - 1, RECOVERY_DEADLINE_MS);
    } finally {
      await client?.stop();
    }
    const { bytes, end, left, phases } = await recoveryFromLogs(slots.up(), done.epoch);
    const windowMs = Math.max(1, end - t0);
    const r: RecoveryRound = {
      nodes: n,
      client: kind,
      bytes,
      windowMs,
      detectMs: left - t0,
      rate: bytes / (windowMs / 1000),
      load: [load0, await loadAverage()],
      phases: phases.map((p) => ({ left: p.left - t0, plan: p.plan - t0, done: p.done - t0 })),
    };
    if (client) {
      if (client.errors.length > 0) {
        throw new Error(`client writes failed: ${client.errors.slice(0, 10).join("; ")}`);
      }
      const unit = kind === "seq" ? OBJ : 1;
      const b = client.count(t0 - o.beforeSeconds * 1000, t0);
      const d = client.count(t0, end);
      r.before = (b.n * unit) / o.beforeSeconds;
      r.during = (d.n * unit) / (windowMs / 1000);
      r.maxLatencyMs = d.maxMs;
      r.timeline = [];
      for (let at = t0 - TIMELINE_BEFORE_MS; at < end; at += TIMELINE_BUCKET_MS) {
        r.timeline.push(client.count(at, at + TIMELINE_BUCKET_MS).n);
      }
    }
    return r;
  } finally {
    c.close();
  }
}

/** Runs the benchmark; `raw` must hold {@linkcode RECOVERY_RAW_JOB}. */
export async function runRecoveryBench(
  opts: Partial<RecoveryBenchOptions>,
  raw: RawLimits,
): Promise<RecoveryBenchReport> {
  const o: RecoveryBenchOptions = { ...RECOVERY_BENCH_DEFAULTS, ...opts };
  const rawJob = raw.results.find((x) => x.name === RECOVERY_RAW_JOB);
  if (!rawJob) throw new Error(`the raw limits lack ${RECOVERY_RAW_JOB}`);
  const report: RecoveryBenchReport = {
    startedAt: new Date().toISOString(),
    options: {
      nodes: o.nodes,
      objects: o.objects,
      repeats: o.repeats,
      clients: o.clients,
      randObjects: o.randObjects,
      warmupSeconds: o.warmupSeconds,
      beforeSeconds: o.beforeSeconds,
      throttle: o.throttle,
    },
    rawSeqWrite: rawJob.bwBytes,
    rawTitle: rawJob.title,
    rounds: [],
  };
  for (let rep = 0; rep < o.repeats; rep++) {
    for (const n of o.nodes) {
      for (const kind of o.clients) {
        o.onProgress?.(`bench: recovery ${n} sheep, ${kind} client (${rep + 1}/${o.repeats})`);
        const r = await round(n, kind, o);
        o.onProgress?.(
          `bench: recovery ${(r.bytes / MB).toFixed(0)} MB in ${r.windowMs} ms ` +
            `(loss seen after ${r.detectMs} ms)` +
            (r.before !== undefined
              ? `, client ${r.before.toFixed(0)} → ${r.during!.toFixed(0)}`
              : ""),
        );
        o.onProgress?.(
          `bench:   survivors (left/plan/done ms): ${
            r.phases.map((p) => `${p.left}/${p.plan}/${p.done}`).join(" ")
          }` +
            (r.timeline
              ? `; client per ${TIMELINE_BUCKET_MS} ms from -${TIMELINE_BEFORE_MS}: ${
                r.timeline.join(" ")
              }`
              : ""),
        );
        report.rounds.push(r);
      }
    }
  }
  return report;
}

// -----------------------------------------------------------------------------------------------
// Report

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

function verdict(pass: boolean): string {
  return pass ? "pass" : "**miss**";
}

/** The heading of the table. */
export function recoveryBenchHeading(r: RecoveryBenchReport): string {
  const o = r.options;
  const loads = r.rounds.flatMap((x) => x.load);
  const load = loads.length
    ? `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`
    : "unknown";
  return `## Recovery after a node loss\n\n` +
    `${o.nodes.join(" and ")} sheep, each its own zone, copies ${COPIES}, durable writes, ` +
    `recovery throttle ${o.throttle ?? "none (the default)"}; while a sheep serves client I/O ` +
    `it fetches at most ${CLIENT_BUSY_MAX_IN_FLIGHT} objects nobody waits for at a time, and ` +
    `for other client ops than creates pauses ${CLIENT_BUSY_PAUSE_RATIO}× as long as each took ` +
    `(core/recovery/progress.ts); ${o.objects} objects of 4 MiB ` +
    `written (page cache dropped), then the last sheep SIGKILLed; window = SIGKILL → the last ` +
    `survivor purging its stale copies (every survivor recovered); rate = bytes the survivors ` +
    `fetched ÷ window. With 3 sheep a loss leaves 2 zones for 3 copies: nothing to ` +
    `re-replicate, hence 4 and 6. Client on the first sheep (a survivor), one connection: ` +
    `"seq" creates 4 MiB objects of another VDI, ${SEQ_DEPTH} in flight; "rand" writes 4 KiB ` +
    `at random into ${
      o.randObjects ? `the first ${o.randObjects} of the objects` : "all the objects"
    } being recovered, ${RAND_DEPTH} in flight (a write to an object its new holder lacks ` +
    `waits for that object's recovery); "before" = the ` +
    `${o.beforeSeconds} s up to the kill (after ${o.warmupSeconds} s of warm-up), "during" = ` +
    `the window. Raw: ${r.rawTitle}, ${(r.rawSeqWrite / MB).toFixed(0)} MB/s in the same run. ` +
    `Targets: recovery ≥ ${pct(RECOVERY_TARGET_SHARE)} of raw ÷ ${COPIES} while the client ` +
    `keeps ≥ ${pct(CLIENT_TARGET_SHARE)} of its rate. Median of ${o.repeats} (fresh cluster ` +
    `per round); measured ${r.startedAt}, load average ${load}, ${navigator.hardwareConcurrency} ` +
    `cores.\n`;
}

/** A markdown table, one column per cluster size. */
export function recoveryBenchTable(r: RecoveryBenchReport): string {
  const sizes = r.options.nodes;
  const floor = r.rawSeqWrite / COPIES;
  const pick = (n: number, k: ClientKind) =>
    r.rounds.filter((x) => x.nodes === n && x.client === k);
  const med = (n: number, k: ClientKind, f: (x: RecoveryRound) => number) =>
    median(pick(n, k).map(f));
  const row = (title: string, f: (n: number) => string) =>
    `| ${title} | ${sizes.map(f).join(" | ")} |`;
  const lines = [
    `| | ${sizes.map((n) => `${n} sheep`).join(" | ")} |`,
    `|---|${sizes.map(() => "---:").join("|")}|`,
  ];
  for (const k of r.options.clients) {
    const label = k === "idle" ? "no client" : `${k} client`;
    lines.push(
      row(
        `recovery, ${label}: MB re-replicated / window s`,
        (n) =>
          `${(med(n, k, (x) => x.bytes) / MB).toFixed(0)} / ${
            (med(n, k, (x) => x.windowMs) / 1000).toFixed(1)
          }`,
      ),
      row(`recovery, ${label}: MB/s (share of raw ÷ ${COPIES})`, (n) => {
        const v = med(n, k, (x) => x.rate);
        return `${(v / MB).toFixed(1)} (${pct(v / floor)})`;
      }),
    );
    if (k === "idle") continue;
    const unit = k === "seq" ? "MB/s" : "IOPS";
    const fmt = (v: number) => k === "seq" ? (v / MB).toFixed(1) : Math.round(v).toString();
    lines.push(
      row(`${label}: ${unit} before → during (kept)`, (n) => {
        const b = med(n, k, (x) => x.before!);
        const d = med(n, k, (x) => x.during!);
        return `${fmt(b)} → ${fmt(d)} (${
          pct(median(pick(n, k).map((x) => x.during! / x.before!)))
        })`;
      }),
      row(
        `${label}: slowest request in the window, ms`,
        (n) => med(n, k, (x) => x.maxLatencyMs!).toFixed(0),
      ),
      row(`${label}: targets`, (n) => {
        const rate = med(n, k, (x) => x.rate) >= RECOVERY_TARGET_SHARE * floor;
        const kept = median(pick(n, k).map((x) => x.during! / x.before!)) >= CLIENT_TARGET_SHARE;
        return `recovery ${verdict(rate)}, client ${verdict(kept)}`;
      }),
    );
  }
  return lines.join("\n") + "\n";
}

// -----------------------------------------------------------------------------------------------
// Command line

export const RECOVERY_BENCH_USAGE = `options of the recovery benchmark:
  --recovery-nodes LIST     cluster sizes, each ≥ 4 (default ${
  DEFAULT_NODES.join(",")
}; "none" skips it)
  --recovery-objects N      4 MiB objects written before the kill (default 256)
  --recovery-repeats N      repeats, median reported (default 3)
  --recovery-clients LIST   rounds per repeat: ${CLIENT_KINDS.join(",")} (default all)
  --recovery-rand-objects N the rand client writes into the first N objects (default 32; 0: all)
  --recovery-throttle T     sheep -R max=N,interval=MS (default: none, v1.0's default)
  --quick                   4 sheep, 48 objects, 1 repeat: a smoke run`;

/** Applies one option at argv[i]; returns how many arguments it used (0: not ours). */
export function parseRecoveryBenchArg(
  argv: string[],
  i: number,
  o: RecoveryBenchOptions,
): number {
  const int = (what: string, min: number): number => {
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < min) throw new Error(`${what} needs an integer ≥ ${min}`);
    return n;
  };
  switch (argv[i]) {
    case "--recovery-nodes": {
      const v = argv[i + 1] ?? "";
      o.nodes = v === "none" ? [] : v.split(",").map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n < COPIES + 1 || n > 32) {
          throw new Error(`bad cluster size ${x} (${COPIES + 1}-32)`);
        }
        return n;
      });
      return 2;
    }
    case "--recovery-objects":
      o.objects = int("--recovery-objects", 1);
      return 2;
    case "--recovery-rand-objects":
      o.randObjects = int("--recovery-rand-objects", 0);
      return 2;
    case "--recovery-repeats":
      o.repeats = int("--recovery-repeats", 1);
      return 2;
    case "--recovery-clients": {
      const list = (argv[i + 1] ?? "").split(",");
      for (const k of list) {
        if (!(CLIENT_KINDS as readonly string[]).includes(k)) {
          throw new Error(`unknown client ${k}`);
        }
      }
      o.clients = list as ClientKind[];
      return 2;
    }
    case "--recovery-throttle": {
      const v = argv[i + 1] ?? "";
      if (!/^max=\d+,interval=\d+$/.test(v)) {
        throw new Error("--recovery-throttle max=N,interval=MS");
      }
      o.throttle = v;
      return 2;
    }
    case "--quick":
      if (o.nodes.length > 0) o.nodes = [DEFAULT_NODES[0]];
      Object.assign(o, { objects: 48, repeats: 1 });
      return 1;
  }
  return 0;
}

async function main(): Promise<void> {
  const o: RecoveryBenchOptions = { ...RECOVERY_BENCH_DEFAULTS };
  const args = parseStandaloneArgs(
    { name: "recovery_bench", usage: RECOVERY_BENCH_USAGE, parseArg: parseRecoveryBenchArg },
    Deno.args,
    o,
  );
  if (args === null) return;
  const { measureRawLimits } = await import("./harness/raw_limits.ts");
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const raw = await measureRawLimits({
    dir: `${root}/.test-tmp/bench`,
    only: [RECOVERY_RAW_JOB],
    onProgress: (job, r) => console.error(`bench: raw ${job} (${r + 1})`),
  });
  const r = await runRecoveryBench({ ...o, onProgress: (l) => console.error(l) }, raw);
  if (await writeJsonReport(args.json, r)) return;
  console.log(`${recoveryBenchHeading(r)}\n${recoveryBenchTable(r)}`);
}

if (import.meta.main) await main();
