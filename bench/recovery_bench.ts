/**
 * Recovery rate after a node loss (issue 4 §5): N sheep (default 3 and 6), copies 3, a number
 * of 4 MiB objects written, one sheep SIGKILLed; the time from the kill until every survivor has
 * finished recovering (STAT_RECOVERY idle, stale copies purged) and the bytes the survivors
 * re-replicated (their "recovery: done" log lines) give the rate. With `--load`, a client keeps
 * writing 4 KiB blocks through a survivor during the recovery, and its write rate before and
 * during the recovery is reported too.
 *
 *   deno run -A bench/recovery_bench.ts [--nodes 4,6] [--objects 96] [--nosync] [--load]
 *     [--throttle max=N,interval=MS]
 *
 * With 3 sheep and copies 3 a loss leaves 2 zones: nothing to re-replicate, hence 4 and 6.
 *
 * @module
 */

import { Res } from "../core/proto/constants.ts";
import { sleep } from "../tests/harness/mod.ts";
import { createVdi, Slots, waitRecovered, Writer } from "../tests/recovery_support.ts";

interface Opts {
  nodes: number[];
  objects: number;
  nosync: boolean;
  load: boolean;
  /** sheep -R max=N,interval=MS */
  throttle: string | null;
}

function parse(args: string[]): Opts {
  const o: Opts = { nodes: [4, 6], objects: 96, nosync: false, load: false, throttle: null };
  for (let i = 0; i < args.length; i++) {
    switch (args[i]) {
      case "--nodes":
        o.nodes = args[++i].split(",").map(Number);
        break;
      case "--objects":
        o.objects = Number(args[++i]);
        break;
      case "--nosync":
        o.nosync = true;
        break;
      case "--throttle":
        o.throttle = args[++i];
        break;
      case "--load":
        o.load = true;
        break;
      default:
        throw new Error(`unknown option ${args[i]}`);
    }
  }
  return o;
}

/** Bytes fetched by recovery of `epoch`, from the survivors' logs. */
async function fetchedBytes(slots: Slots, epoch: number): Promise<number> {
  let total = 0;
  for (const s of slots.up()) {
    const log = await Deno.readTextFile(`${s.dir}/sheep.log`);
    for (const line of log.split("\n")) {
      if (!line.includes("recovery: done")) continue;
      const m = line.match(/\{.*\}$/);
      if (!m) continue;
      const f = JSON.parse(m[0]);
      if (f.epoch === epoch) total += f.mb * 1e6;
    }
  }
  return total;
}

async function writeRate(writer: Writer, ms: number): Promise<number> {
  const a = writer.counts.writesAcked;
  await sleep(ms);
  return ((writer.counts.writesAcked - a) * 4096) / (ms / 1000) / 1e6;
}

async function one(n: number, o: Opts): Promise<string> {
  const copies = 3;
  const extra = [...(o.nosync ? ["-n"] : []), ...(o.throttle ? ["-R", o.throttle] : [])];
  await using slots = await Slots.create(n, extra, "recbench");
  await slots.startAll();
  await slots.format(copies);
  const perVdi = 64;
  const vids: number[] = [];
  for (let i = 0; i * perVdi < o.objects; i++) {
    vids.push(await createVdi(slots.slots[0].port, `b${i}`, `${perVdi * 4}M`));
  }
  const loader = new Writer(vids, Math.min(perVdi, o.objects), 1, () => [slots.slots[0].port]);
  loader.oids.splice(o.objects);
  await loader.createAll();
  const victim = slots.slots[n - 1];
  let before = 0;
  let during = 0;
  let writer: Writer | null = null;
  if (o.load) {
    writer = new Writer(vids, 4, 2, () => [slots.slots[0].port]);
    writer.tolerate.add(Res.WAIT_FOR_JOIN);
    writer.versions.clear();
    for (const oid of writer.oids) writer.versions.set(oid, loader.versions.get(oid)!);
    writer.start(1_000_000);
    await sleep(1000);
    before = await writeRate(writer, 4000);
  }
  const slow: string[] = [];
  if (writer) {
    writer.onAck = (start, ms) => {
      if (ms > 200) slow.push(`${start - t0}+${ms}`);
    };
  }
  const t0 = Date.now();
  const acked0 = writer?.counts.writesAcked ?? 0;
  await victim.kill();
  const done = await waitRecovered(slots, n - 1, 600_000);
  const secs = (Date.now() - t0) / 1000;
  if (writer) during = ((writer.counts.writesAcked - acked0) * 4096) / secs / 1e6;
  await writer?.stop();
  if (slow.length > 0) {
    console.error(`slow writes (start after kill + ms): ${slow.slice(0, 30).join(" ")}`);
  }
  const bytes = await fetchedBytes(slots, done.epoch);
  const rate = bytes / 1e6 / secs;
  let line = `| ${n} | ${copies} | ${o.objects} | ${(bytes / 1e6).toFixed(0)} MB | ` +
    `${secs.toFixed(1)} s | ${rate.toFixed(1)} MB/s |`;
  if (o.load) line += ` ${before.toFixed(1)} MB/s | ${during.toFixed(1)} MB/s |`;
  return line;
}

if (import.meta.main) {
  const o = parse(Deno.args);
  const head =
    "| sheep | copies | objects | re-replicated | time (kill → done everywhere) | rate |";
  const rows = [head + (o.load ? " client 4K writes before | during |" : "")];
  rows.push(rows[0].replace(/[^|]/g, "-"));
  for (const n of o.nodes) rows.push(await one(n, o));
  console.log(rows.join("\n"));
}
