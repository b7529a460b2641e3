/**
 * Cluster drivers (issue 6, benchmark): per driver (local, corosync, zookeeper), with N sheep
 * (default 3, copies 2):
 *
 * - the latency of a cluster operation: NEW_VDI sent straight over the protocol (no dog start-up),
 *   through the sheep in turn, median and p90 of `--driver-ops`;
 * - the latency of a membership change: SIGKILL of the last sheep → the new epoch seen on every
 *   other sheep (polled every 10 ms), median and max of `--driver-kills` (the sheep is restarted
 *   and rejoins between rounds);
 * - beside them, the engine's own message latency measured in the same run: CPG multicast →
 *   delivery back to a bare libcpg client on the same corosync (tests/testdata/cpg_latency.ts),
 *   and a create/delete loop of a znode on the same ZooKeeper (one round trip each, through the
 *   client the driver uses).
 *
 * ZooKeeper sheep use a 2 s session timeout: a SIGKILLed sheep leaves when its session expires, so
 * that latency is mostly the timeout. corosync's totem token is 1 s.
 *
 * With root, everything runs in a private network namespace (the module re-runs itself there via
 * `ip netns exec`), where a corosync of its own listens on loopback; without root corosync is
 * skipped.
 *
 *   deno run -A --v8-flags=--stack-size=4096 bench/driver_bench.ts [--drivers local,zookeeper]
 *     [--driver-ops N] [--driver-kills N] [--driver-nodes N]
 *
 * @module
 */

import { canUseNetns, startCorosync } from "../tests/harness/corosync.ts";
import { newVdi, waitEpoch } from "../tests/harness/cluster_ops.ts";
import { NETNS_ENV, privateNetns } from "../tests/harness/netns.ts";
import { run, runOk, startCluster, startSheep } from "../tests/harness/mod.ts";
import { startZooKeeper, zookeeperInstalled } from "../tests/harness/zookeeper.ts";
import { ZkClient, ZkMode } from "../core/cluster/zk_client.ts";

export const DRIVERS = ["local", "corosync", "zookeeper"] as const;
export type DriverName = typeof DRIVERS[number];

/** Options of {@linkcode runDriverBench}. */
export interface DriverBenchOptions {
  drivers: DriverName[];
  /** NEW_VDI operations timed per driver. */
  ops: number;
  /** SIGKILL rounds per driver. */
  kills: number;
  /** Sheep per cluster. */
  nodes: number;
  onProgress?: (line: string) => void;
}

export const DRIVER_BENCH_DEFAULTS: DriverBenchOptions = {
  drivers: [...DRIVERS],
  ops: 30,
  kills: 3,
  nodes: 3,
};

export const DRIVER_BENCH_USAGE = `Cluster drivers (bench/driver_bench.ts; after the snapshots):
  --drivers LIST     local,corosync,zookeeper (default all; "none" skips them)
  --driver-ops N     NEW_VDI timed per driver (default 30)
  --driver-kills N   SIGKILL → new epoch rounds per driver (default 3)
  --driver-nodes N   sheep per cluster (default 3)`;

/**
 * Consumes one option at argv[i] into `o`; returns how many arguments it used (0: not one of
 * ours). Throws on a bad value.
 */
export function parseDriverBenchArg(argv: string[], i: number, o: DriverBenchOptions): number {
  const num = (k: string): number => {
    const n = Number(argv[i + 1]);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${k} wants a positive integer`);
    return n;
  };
  switch (argv[i]) {
    case "--drivers": {
      const v = argv[i + 1] ?? "";
      const list = v === "none" ? [] : v === "all" ? [...DRIVERS] : v.split(",");
      for (const d of list) {
        if (!(DRIVERS as readonly string[]).includes(d)) {
          throw new Error(`--drivers: unknown driver '${d}' (${DRIVERS.join(", ")})`);
        }
      }
      o.drivers = list as DriverName[];
      return 2;
    }
    case "--driver-ops":
      o.ops = num("--driver-ops");
      return 2;
    case "--driver-kills":
      o.kills = num("--driver-kills");
      return 2;
    case "--driver-nodes":
      o.nodes = num("--driver-nodes");
      if (o.nodes < 2) throw new Error("--driver-nodes wants at least 2");
      return 2;
    case "--quick":
      Object.assign(o, { ops: 10, kills: 1 });
      return 1;
  }
  return 0;
}

/** The numbers of one driver (null: skipped, see `note`). */
export interface DriverRow {
  driver: DriverName;
  opMedianMs: number | null;
  opP90Ms: number | null;
  killMedianMs: number | null;
  killMaxMs: number | null;
  /** The engine's own message latency (µs), or null for `local`. */
  engine: { what: string; medianUs: number; p90Us: number } | null;
  note?: string;
}

export interface DriverBenchResult {
  nodes: number;
  ops: number;
  kills: number;
  netns: boolean;
  rows: DriverRow[];
}

function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** NEW_VDI and SIGKILL rounds on one cluster driver (`template`: a `-c` template). */
async function measureCluster(
  driver: DriverName,
  template: string,
  o: DriverBenchOptions,
): Promise<Omit<DriverRow, "engine">> {
  const n = o.nodes;
  const say = (s: string) => o.onProgress?.(`bench: drivers: ${driver}: ${s}`);
  await using c = await startCluster(n, {
    clusterTemplate: template,
    copies: 2,
    extraArgs: ["-n"],
  });
  await waitEpoch(c.ports, 1, 30_000);
  // A few unmeasured creates first (connections, JIT).
  for (let i = 0; i < 3; i++) await newVdi(c.ports[i % n], `warm${i}`, 4n << 20n);
  const ops: number[] = [];
  for (let i = 0; i < o.ops; i++) {
    ops.push((await newVdi(c.ports[i % n], `op${i}`, 4n << 20n)).ms);
  }
  say(`NEW_VDI median ${quantile(ops, 0.5).toFixed(2)} ms`);
  const kills: number[] = [];
  let epoch = 1;
  const last = n - 1;
  const others = c.ports.slice(0, last);
  for (let k = 0; k < o.kills; k++) {
    const t0 = performance.now();
    await c.sheep[last].kill();
    const seen = await waitEpoch(others, epoch + 1, 60_000, t0);
    epoch++;
    kills.push(Math.max(...seen));
    say(`SIGKILL ${k + 1}: new epoch everywhere after ${Math.max(...seen).toFixed(0)} ms`);
    // Restart it with the same store and port, and wait for the rejoin everywhere.
    const again = startSheep({
      dir: c.sheep[last].dir,
      port: c.ports[last],
      zone: last,
      cluster: c.clusterSpec,
      extraArgs: ["-n"],
      logFile: `${c.sheep[last].dir}.${k + 1}.log`,
    });
    c.sheep[last] = again;
    await again.waitReady();
    await waitEpoch(c.ports, epoch + 1, 60_000);
    epoch++;
  }
  return {
    driver,
    opMedianMs: round2(quantile(ops, 0.5)),
    opP90Ms: round2(quantile(ops, 0.9)),
    killMedianMs: Math.round(quantile(kills, 0.5)),
    killMaxMs: Math.round(Math.max(...kills)),
  };
}

const CPG_LATENCY = new URL("../tests/testdata/cpg_latency.ts", import.meta.url).pathname;

/** CPG's own latency, from a bare libcpg client on this namespace's corosync. */
async function cpgLatency(count: number): Promise<{ medianUs: number; p90Us: number }> {
  const r = await runOk(Deno.execPath(), [
    "run",
    "--allow-all",
    "--v8-flags=--stack-size=4096",
    CPG_LATENCY,
    String(count),
  ], { deadlineMs: 120_000 });
  const j = JSON.parse(r.stdoutText.trim().split("\n").at(-1)!);
  return { medianUs: j.medianUs, p90Us: j.p90Us };
}

/** A znode create/delete loop: the median and p90 of each round trip (µs). */
async function zkLatency(
  servers: string,
  count: number,
): Promise<{ create: [number, number]; remove: [number, number] }> {
  const zk = new ZkClient(servers, 10_000);
  try {
    await zk.waitConnected(30_000, "the benchmark's ZooKeeper client");
    const base = `/sdbench${Deno.pid}`;
    await zk.mkdirs(base);
    const cr: number[] = [];
    const rm: number[] = [];
    for (let i = 0; i < count + 20; i++) {
      const t0 = performance.now();
      const p = await zk.create(`${base}/n${i}`, new Uint8Array(64), ZkMode.PERSISTENT);
      const t1 = performance.now();
      await zk.remove(p);
      const t2 = performance.now();
      if (i >= 20) {
        cr.push((t1 - t0) * 1000);
        rm.push((t2 - t1) * 1000);
      }
    }
    await zk.remove(base);
    const q = (xs: number[]): [number, number] => [
      Math.round(quantile(xs, 0.5)),
      Math.round(quantile(xs, 0.9)),
    ];
    return { create: q(cr), remove: q(rm) };
  } finally {
    await zk.close();
  }
}

async function benchOne(driver: DriverName, o: DriverBenchOptions): Promise<DriverRow> {
  const skipped = (note: string): DriverRow => ({
    driver,
    opMedianMs: null,
    opP90Ms: null,
    killMedianMs: null,
    killMaxMs: null,
    engine: null,
    note,
  });
  o.onProgress?.(`bench: drivers: ${driver}`);
  switch (driver) {
    case "local":
      return { ...await measureCluster(driver, "local:{root}/cluster", o), engine: null };
    case "corosync": {
      if (privateNetns() === null) return skipped("needs root (a private network namespace)");
      const cs = await startCorosync({ here: true });
      try {
        const cpg = await cpgLatency(500);
        const row = await measureCluster(driver, "corosync:{id}", o);
        return {
          ...row,
          engine: { what: "CPG mcast → delivery (AGREED, 1 node)", ...cpg },
          note: "totem token 1000 ms",
        };
      } finally {
        await cs.stop();
      }
    }
    case "zookeeper": {
      if (!zookeeperInstalled()) return skipped("ZooKeeper is not installed");
      const zk = await startZooKeeper(1);
      try {
        const lat = await zkLatency(zk.connectString, 500);
        const row = await measureCluster(
          driver,
          `zookeeper:${zk.connectString}/{id},timeout=2000`,
          o,
        );
        return {
          ...row,
          engine: {
            what: "znode create (standalone); delete " +
              `${lat.remove[0]} / ${lat.remove[1]} µs`,
            medianUs: lat.create[0],
            p90Us: lat.create[1],
          },
          note: "session timeout 2000 ms",
        };
      } finally {
        await zk.stop();
      }
    }
  }
}

/**
 * Runs the benchmark. With root, in a private network namespace (the module runs itself there
 * and hands back its JSON); else here, without corosync.
 */
export async function runDriverBench(o: DriverBenchOptions): Promise<DriverBenchResult> {
  if (privateNetns() === null && await canUseNetns()) {
    const ns = `sdb${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
    await runOk("ip", ["netns", "add", ns], { deadlineMs: 10_000 });
    try {
      await runOk("ip", ["-n", ns, "link", "set", "lo", "up"], { deadlineMs: 10_000 });
      const r = await run("ip", [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "--allow-all",
        "--v8-flags=--stack-size=4096",
        new URL(import.meta.url).pathname,
        "--json",
        "--drivers",
        o.drivers.join(","),
        "--driver-ops",
        String(o.ops),
        "--driver-kills",
        String(o.kills),
        "--driver-nodes",
        String(o.nodes),
      ], { deadlineMs: 30 * 60_000, env: { [NETNS_ENV]: ns, NO_COLOR: "1" } });
      for (const l of r.stderrText.split("\n")) if (l.startsWith("bench:")) o.onProgress?.(l);
      if (!r.success) {
        throw new Error(`driver benchmark in namespace ${ns} failed:\n${r.stderrText}`);
      }
      return JSON.parse(r.stdoutText);
    } finally {
      await run("ip", ["netns", "delete", ns], { deadlineMs: 10_000 });
    }
  }
  const rows: DriverRow[] = [];
  for (const d of o.drivers) rows.push(await benchOne(d, o));
  return {
    nodes: o.nodes,
    ops: o.ops,
    kills: o.kills,
    netns: privateNetns() !== null,
    rows,
  };
}

export function driverBenchHeading(r: DriverBenchResult): string {
  return `## Cluster drivers\n\n${r.nodes} sheep, copies 2; cluster op: NEW_VDI over the ` +
    `protocol through the sheep in turn (median / p90 of ${r.ops}); membership change: SIGKILL ` +
    `of one sheep → the new epoch on every other sheep (median / max of ${r.kills}); the ` +
    `engine's own message latency measured in the same run${
      r.netns ? ", in a private network namespace" : ""
    }\n`;
}

export function driverBenchTable(r: DriverBenchResult): string {
  const f = (x: number | null, d = 2) => x === null ? "—" : x.toFixed(d);
  const lines = [
    "| driver | cluster op median ms | p90 ms | SIGKILL → new epoch median ms | max ms | " +
    "engine message latency median / p90 µs | notes |",
    "|---|---:|---:|---:|---:|---|---|",
  ];
  for (const x of r.rows) {
    const engine = x.engine ? `${x.engine.medianUs} / ${x.engine.p90Us} (${x.engine.what})` : "—";
    lines.push(
      `| ${x.driver} | ${f(x.opMedianMs)} | ${f(x.opP90Ms)} | ${f(x.killMedianMs, 0)} | ` +
        `${f(x.killMaxMs, 0)} | ${engine} | ${x.note ?? ""} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const o: DriverBenchOptions = { ...DRIVER_BENCH_DEFAULTS };
  let json = false;
  for (let i = 0; i < Deno.args.length;) {
    if (Deno.args[i] === "--json") {
      json = true;
      i++;
      continue;
    }
    const used = parseDriverBenchArg(Deno.args, i, o);
    if (used === 0) {
      console.error(`usage: driver_bench.ts [--json]\n${DRIVER_BENCH_USAGE}`);
      Deno.exit(64);
    }
    i += used;
  }
  const r = await runDriverBench({ ...o, onProgress: (l) => console.error(l) });
  if (json) console.log(JSON.stringify(r));
  else console.log(`${driverBenchHeading(r)}\n${driverBenchTable(r)}`);
}
