/**
 * Explores seeds of the cluster simulation:
 * `deno run -A core/sim/run.ts --seeds N --from S [--verbose] [--debug] [--quarantine MS] [--leaks]
 * [--writeback PERCENT]` (PERCENT of the clients' writes writeback, then flushed; default 0).
 * Prints one line per seed and the full report of each failing one; exits 1 when any failed.
 * Objects left of deleted VDIs are listed as leaks; with `--leaks` they fail the seed.
 *
 * @module
 */

import { runClusterSim } from "./cluster_sim.ts";

/** Parses the flags and runs the seeds. */
export async function main(args: string[]): Promise<number> {
  const flag = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
    return v;
  };
  const seeds = flag("--seeds", 20);
  const from = flag("--from", 1);
  const verbose = args.includes("--verbose");
  const logLevel = args.includes("--debug") ? 7 : 6;
  const quarantineMs = args.includes("--quarantine") ? flag("--quarantine", 0) : undefined;
  const failOnLeaks = args.includes("--leaks");
  const writebackPercent = flag("--writeback", 0);
  if (writebackPercent > 100) throw new Error("--writeback is a percentage (0-100)");
  const writebackChance = writebackPercent / 100;
  const failed: number[] = [];
  for (let seed = from; seed < from + seeds; seed++) {
    const t0 = performance.now();
    const r = await runClusterSim(seed, { logLevel, quarantineMs, failOnLeaks, writebackChance });
    const ms = Math.round(performance.now() - t0);
    console.log(
      `seed ${seed} ${
        r.ok ? (r.leaks.length > 0 ? "ok (leaks)" : "ok") : "FAILED"
      } hash ${r.traceHash} steps ${r.steps} ` +
        `virtual ${(r.virtualMs / 1000).toFixed(1)}s real ${ms}ms ${JSON.stringify(r.stats)}`,
    );
    if (!r.ok || verbose || r.leaks.length > 0) console.log(r.report);
    if (verbose) console.log(r.trace);
    if (!r.ok) failed.push(seed);
  }
  console.log(failed.length === 0 ? "all seeds passed" : `failing seeds: ${failed.join(" ")}`);
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
