/**
 * Benchmarks: `deno task bench [options]`.
 *
 * For now it measures this machine's raw limits (fio) and prints them as a markdown table. The
 * benchmarks of sheepdog itself will run in the same invocation, after these, so their numbers can
 * be quoted as ratios to limits measured minutes apart on the same machine.
 *
 * Options:
 *   --quick          small and short (64 MiB, 1 s, 1 repeat): a smoke run
 *   --size MiB       data file size (default 256)
 *   --runtime S      seconds per fio job (default 3)
 *   --repeats N      repeats per job, median reported (default 3)
 *   --dir PATH       file system to measure (default <checkout>/.test-tmp/bench)
 *   --only a,b       only these raw jobs
 *   --json FILE      also write every number (medians and samples) as JSON to FILE ("-": stdout)
 *
 * Sheep object I/O (bench/sheep_io.ts; after the raw limits; `--quick` and `--repeats` apply too):
 *   --scenarios A,B  A: one sheep, copies 1; B: three sheep, copies 3; "none" skips them
 *   --seq-size MiB   bytes of the sequential phases (default 1024)
 *   --rand-seconds S seconds per random phase (default 5)
 *   --conns N        client connections to the gateway (default 1)
 *
 * Snapshot, clone and delete (bench/snapshot_bench.ts; after the sheep I/O):
 *   --snapshot-sizes LIST    VDI sizes in GiB, half their objects written (default 1,10; "none")
 *   --snapshot-repeats N     snapshots and clones timed per size (default 5)
 *
 * Cluster drivers (bench/driver_bench.ts; after the snapshots): per driver, the latency of a
 * cluster op (NEW_VDI) and of a membership change (SIGKILL → new epoch everywhere), beside
 * corosync's and ZooKeeper's own message latency measured in the same run:
 *   --drivers LIST     local,corosync,zookeeper (default all; "none" skips them)
 *   --driver-ops N     NEW_VDI timed per driver (default 30)
 *   --driver-kills N   SIGKILL rounds per driver (default 3)
 *   --driver-nodes N   sheep per cluster (default 3)
 *
 * NBD export (bench/nbd_bench.ts; after the cluster drivers): three sheep, copies 3, nbdcopy and
 * qemu-img convert both ways, fio through nbdfuse, as ratios to the raw-limits jobs, run again
 * beside each phase:
 *   --nbd-size MiB          bytes copied each way (default 1024; "none" skips it)
 *   --nbd-repeats N         repeats, median reported (default 3)
 *   --nbd-rand-seconds S    seconds per fio job (default 5)
 *
 * Recovery after a node loss (bench/recovery_bench.ts; last): 4 and 6 sheep, copies 3, one
 * SIGKILLed; the re-replication rate against the raw seq write ÷ 3, and a client's seq and random
 * write rates during the recovery against those before it:
 *   --recovery-nodes LIST     cluster sizes, each ≥ 4 (default 4,6; "none" skips it)
 *   --recovery-objects N      4 MiB objects written before the kill (default 256)
 *   --recovery-repeats N      repeats, median reported (default 3)
 *   --recovery-clients LIST   rounds per repeat: idle,seq,rand (default all)
 *   --recovery-throttle T     sheep -R max=N,interval=MS (default none)
 *
 * @module
 */

import { measureRawLimits, RAW_JOBS, rawLimitsTable } from "./harness/raw_limits.ts";
import {
  parseSheepIoArg,
  runSheepIo,
  SHEEP_IO_DEFAULTS,
  SHEEP_IO_USAGE,
  sheepIoHeading,
  type SheepIoOptions,
  sheepIoTable,
} from "./sheep_io.ts";
import {
  parseSnapshotBenchArg,
  runSnapshotBench,
  SNAPSHOT_BENCH_DEFAULTS,
  SNAPSHOT_BENCH_USAGE,
  snapshotBenchHeading,
  type SnapshotBenchOptions,
  snapshotBenchTable,
} from "./snapshot_bench.ts";
import {
  DRIVER_BENCH_DEFAULTS,
  DRIVER_BENCH_USAGE,
  driverBenchHeading,
  type DriverBenchOptions,
  driverBenchTable,
  parseDriverBenchArg,
  runDriverBench,
} from "./driver_bench.ts";
import {
  NBD_BENCH_DEFAULTS,
  NBD_BENCH_USAGE,
  nbdBenchHeading,
  type NbdBenchOptions,
  nbdBenchTable,
  parseNbdBenchArg,
  runNbdBench,
} from "./nbd_bench.ts";
import {
  parseRecoveryBenchArg,
  RECOVERY_BENCH_DEFAULTS,
  RECOVERY_BENCH_USAGE,
  RECOVERY_RAW_JOB,
  recoveryBenchHeading,
  type RecoveryBenchOptions,
  recoveryBenchTable,
  runRecoveryBench,
} from "./recovery_bench.ts";

interface BenchArgs {
  sizeMiB: number;
  runtimeSec: number;
  repeats: number;
  dir: string;
  only?: string[];
  json?: string;
  sheepIo: SheepIoOptions;
  snapshot: SnapshotBenchOptions;
  drivers: DriverBenchOptions;
  nbd: NbdBenchOptions;
  recovery: RecoveryBenchOptions;
}

function usage(): never {
  console.error(
    "usage: deno task bench [--quick] [--size MiB] [--runtime S] [--repeats N] [--dir PATH] " +
      `[--only ${RAW_JOBS.map((j) => j.name).join(",")}] [--json FILE|-]\n${SHEEP_IO_USAGE}\n` +
      `${SNAPSHOT_BENCH_USAGE}\n${DRIVER_BENCH_USAGE}\n${NBD_BENCH_USAGE}\n${RECOVERY_BENCH_USAGE}`,
  );
  Deno.exit(64);
}

function parseArgs(argv: string[]): BenchArgs {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const a: BenchArgs = {
    sizeMiB: 256,
    runtimeSec: 3,
    repeats: 3,
    dir: `${root}/.test-tmp/bench`,
    sheepIo: { ...SHEEP_IO_DEFAULTS },
    snapshot: { ...SNAPSHOT_BENCH_DEFAULTS },
    drivers: { ...DRIVER_BENCH_DEFAULTS },
    nbd: { ...NBD_BENCH_DEFAULTS },
    recovery: { ...RECOVERY_BENCH_DEFAULTS },
  };
  const num = (v: string | undefined): number => {
    const n = Number(v);
    if (!v || !Number.isFinite(n) || n <= 0) usage();
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === "--quick") {
      Object.assign(a, { sizeMiB: 64, runtimeSec: 1, repeats: 1 });
      parseSheepIoArg(argv, i, a.sheepIo);
      Object.assign(a.snapshot, { sizesGiB: [1], repeats: 3 });
      parseDriverBenchArg(argv, i, a.drivers);
      parseNbdBenchArg(argv, i, a.nbd);
      parseRecoveryBenchArg(argv, i, a.recovery);
    } else if (k === "--size") a.sizeMiB = num(argv[++i]);
    else if (k === "--runtime") a.runtimeSec = num(argv[++i]);
    else if (k === "--repeats") {
      a.repeats = Math.round(num(argv[++i]));
      a.sheepIo.repeats = a.repeats;
      a.nbd.repeats = a.repeats;
      a.recovery.repeats = a.repeats;
    } else if (k === "--dir") a.dir = argv[++i] ?? usage();
    else if (k === "--only") a.only = (argv[++i] ?? usage()).split(",");
    else if (k === "--json") a.json = argv[++i] ?? usage();
    else {
      let used = 0;
      try {
        used = parseSheepIoArg(argv, i, a.sheepIo) || parseSnapshotBenchArg(argv, i, a.snapshot) ||
          parseDriverBenchArg(argv, i, a.drivers) || parseNbdBenchArg(argv, i, a.nbd) ||
          parseRecoveryBenchArg(argv, i, a.recovery);
      } catch (e) {
        console.error(`bench: ${e instanceof Error ? e.message : e}`);
      }
      if (used === 0) usage();
      i += used - 1;
    }
  }
  for (const n of a.only ?? []) {
    if (!RAW_JOBS.some((j) => j.name === n)) usage();
  }
  // The recovery rate is a ratio to this raw job: it always runs with the recovery benchmark.
  if (a.only && a.recovery.nodes.length > 0) a.only = [...new Set([...a.only, RECOVERY_RAW_JOB])];
  return a;
}

async function main(): Promise<void> {
  const a = parseArgs(Deno.args);
  const raw = await measureRawLimits({
    dir: a.dir,
    sizeMiB: a.sizeMiB,
    runtimeSec: a.runtimeSec,
    repeats: a.repeats,
    only: a.only,
    onProgress: (job, r) => console.error(`bench: raw ${job} (${r + 1}/${a.repeats})`),
  });
  const sheepIo = a.sheepIo.scenarios.length > 0
    ? await runSheepIo({ ...a.sheepIo, onProgress: (line) => console.error(line) })
    : null;
  const snapshot = a.snapshot.sizesGiB.length > 0
    ? await runSnapshotBench({ ...a.snapshot, onProgress: (line) => console.error(line) })
    : null;
  const drivers = a.drivers.drivers.length > 0
    ? await runDriverBench({ ...a.drivers, onProgress: (line) => console.error(line) })
    : null;
  const nbd = a.nbd.sizeMiB > 0
    ? await runNbdBench({ ...a.nbd, onProgress: (line) => console.error(line) })
    : null;
  const recovery = a.recovery.nodes.length > 0
    ? await runRecoveryBench({ ...a.recovery, onProgress: (line) => console.error(line) }, raw)
    : null;
  const report = {
    machine: { cores: navigator.hardwareConcurrency },
    raw,
    sheepIo,
    snapshot,
    drivers,
    nbd,
    recovery,
  };
  if (a.json === "-") {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  if (a.json) await Deno.writeTextFile(a.json, JSON.stringify(report, null, 2) + "\n");
  console.log(
    `## Raw limits of this machine\n\nfio ${raw.fioVersion.replace(/^fio-/, "")}, ` +
      `${a.sizeMiB} MiB file, ${a.runtimeSec} s per job, median of ${a.repeats}, ` +
      `${navigator.hardwareConcurrency} cores, measured ${raw.startedAt}\n`,
  );
  console.log(rawLimitsTable(raw));
  if (sheepIo) console.log(`\n${sheepIoHeading(sheepIo)}\n${sheepIoTable(sheepIo)}`);
  if (snapshot) console.log(`\n${snapshotBenchHeading(snapshot)}\n${snapshotBenchTable(snapshot)}`);
  if (drivers) console.log(`\n${driverBenchHeading(drivers)}\n${driverBenchTable(drivers)}`);
  if (nbd) console.log(`\n${nbdBenchHeading(nbd)}\n${nbdBenchTable(nbd)}`);
  if (recovery) {
    console.log(`\n${recoveryBenchHeading(recovery)}\n${recoveryBenchTable(recovery)}`);
  }
}

if (import.meta.main) await main();
