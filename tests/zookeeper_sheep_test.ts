/**
 * Real sheep on a real ZooKeeper (issue 6):
 * - a bad `-c zookeeper:…` option and an unreachable ZooKeeper: one line, exit 1;
 * - three sheep on a standalone server: format, VDI create and I/O, a SIGKILLed sheep leaves once
 *   its session expires (new epoch everywhere), its restart rejoins; the latency of a cluster
 *   operation (NEW_VDI) and of the membership change are reported with SD_TIMING=1;
 * - session expiry of one sheep (frozen with SIGSTOP past its session timeout): it stops and exits
 *   1 saying why, the others move to a new epoch, its restart rejoins with a new session;
 * - a restart of the standalone server, and the loss of the leader of a three-server ensemble,
 *   under a running cluster: no sheep leaves, no new epoch, I/O goes on.
 *
 * One standalone server serves the first tests (Java starts slowly); the restart and ensemble
 * tests start their own.
 */

import assert from "node:assert/strict";
import { epochOf, newVdi, waitEpoch } from "./harness/cluster_ops.ts";
import { killAndRejoin, restartSheep } from "./harness/driver_scenarios.ts";
import {
  type Cluster,
  freePort,
  run,
  runDogOk,
  sheepdogCommand,
  startCluster,
  tempDir,
} from "./harness/mod.ts";
import { assertSameBytes, randomBytes } from "./harness/proto.ts";
import { startZooKeeper, type ZooKeeper, zookeeperInstalled } from "./harness/zookeeper.ts";
import { medianOf, reportTiming } from "./harness/timing.ts";

const installed = zookeeperInstalled();
const MIB = 1024 * 1024;
const opts = { sanitizeOps: false, sanitizeResources: false, ignore: !installed };

let shared: ZooKeeper | null = null;
async function zookeeper(): Promise<ZooKeeper> {
  shared ??= await startZooKeeper();
  return shared;
}

let ids = 0;
function spec(zk: ZooKeeper, timeoutMs: number): string {
  return `zookeeper:${zk.connectString}/s${Deno.pid}c${++ids},timeout=${timeoutMs}`;
}

async function sheepLog(c: Cluster, i: number): Promise<string> {
  const s = c.sheep[i];
  return s.logs() + await Deno.readTextFile(`${s.dir}/sheep.log`).catch(() => "");
}

/** Writes `data` at `offset` through sheep `via` and reads the whole range back through `from`. */
async function writeRead(c: Cluster, via: number, offset: number, data: Uint8Array, from: number) {
  await runDogOk(["vdi", "write", "v", String(offset), String(data.length)], {
    port: c.ports[via],
    stdin: data,
  });
  const r = await runDogOk(["vdi", "read", "v", String(offset), String(data.length)], {
    port: c.ports[from],
  });
  assertSameBytes(r.stdout, data, `read through sheep ${from}`);
}

async function sheepCli(args: string[]): Promise<{ code: number; lines: string[] }> {
  const [cmd, ...pre] = sheepdogCommand();
  const r = await run(cmd, [...pre, "sheep", ...args], { deadlineMs: 60_000 });
  return { code: r.code, lines: r.stderrText.trim().split("\n") };
}

Deno.test("zookeeper sheep: a bad option or an unreachable ZooKeeper is one line and exit 1", async () => {
  const dir = await tempDir("zk-bad");
  try {
    const port = String(freePort());
    const base = ["-f", "-p", port, "-b", "127.0.0.1"];
    let r = await sheepCli([...base, "-c", "zookeeper:", `${dir.path}/a`]);
    assert.equal(r.code, 1);
    assert.equal(r.lines.length, 1, r.lines.join("\n"));
    assert.match(r.lines[0], /^sheep: invalid zookeeper option: no ZooKeeper server given/);
    r = await sheepCli([...base, "-c", "zookeeper:127.0.0.1:2181,timeout=x", `${dir.path}/b`]);
    assert.equal(r.code, 1);
    assert.match(r.lines[0], /timeout 'x' is not a number/);
    // Nobody listens on this port: the connection deadline is the session timeout.
    const dead = freePort();
    r = await sheepCli([
      ...base,
      "-c",
      `zookeeper:127.0.0.1:${dead},timeout=1000`,
      `${dir.path}/c`,
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.lines.length, 1, r.lines.join("\n"));
    assert.match(
      r.lines[0],
      /^sheep: zookeeper driver: .*cannot connect to ZooKeeper at 127\.0\.0\.1:\d+/,
    );
  } finally {
    await dir.cleanup();
  }
});

Deno.test({
  name: "zookeeper sheep: three sheep: I/O, a SIGKILLed sheep leaves, its restart rejoins",
  ...opts,
  fn: async () => {
    const zk = await zookeeper();
    await using c = await startCluster(3, { cluster: spec(zk, 2000), copies: 2 });
    await waitEpoch(c.ports, 1, 20_000);
    await killAndRejoin(c, {
      driver: "zookeeper",
      leaveDeadlineMs: 30_000,
      leaveNote: " (session timeout 2000)",
      // Watches, not the 1 s poll, must drive the reads.
      checkLatencies: (ms) =>
        assert.ok(medianOf(ms) < 500, `median NEW_VDI latency ${medianOf(ms)} ms`),
    });
  },
});

Deno.test({
  name: "zookeeper sheep: a sheep whose session expires exits 1; the others go on; it rejoins",
  ...opts,
  fn: async () => {
    const zk = await zookeeper();
    await using c = await startCluster(3, { cluster: spec(zk, 2000), copies: 2 });
    await waitEpoch(c.ports, 1, 20_000);
    await runDogOk(["vdi", "create", "v", "64M"], { port: c.ports[0] });
    const data = randomBytes(4 * MIB);
    await writeRead(c, 0, 0, data, 1);
    // Frozen past its session timeout: ZooKeeper expires the session, the others see it leave.
    c.sheep[2].signal("SIGSTOP");
    try {
      await waitEpoch([c.ports[0], c.ports[1]], 2, 30_000);
    } finally {
      c.sheep[2].signal("SIGCONT");
    }
    // Thawed, it learns that its session is gone: it stops serving and exits 1.
    const st = await c.sheep[2].exited;
    assert.equal(st.code, 1);
    assert.match(await sheepLog(c, 2), /lost the cluster.*(session expired|session timeout)/s);
    await writeRead(c, 1, 4 * MIB, randomBytes(4 * MIB), 0);
    // Restarted (a new session), it rejoins.
    const again = restartSheep(c, 2);
    try {
      await again.waitReady();
      await waitEpoch(c.ports, 3, 20_000);
      const r = await runDogOk(["vdi", "read", "v", "0", String(data.length)], {
        port: c.ports[2],
      });
      assertSameBytes(r.stdout, data, "read through the rejoined sheep");
    } finally {
      await again.stop();
    }
  },
});

/** Runs `disturb` under a running 3-sheep cluster and checks that nobody noticed. */
async function undisturbed(zk: ZooKeeper, disturb: () => Promise<void>): Promise<void> {
  await using c = await startCluster(3, { cluster: spec(zk, 8000), copies: 2 });
  await waitEpoch(c.ports, 1, 20_000);
  await runDogOk(["vdi", "create", "v", "64M"], { port: c.ports[0] });
  await writeRead(c, 0, 0, randomBytes(4 * MIB), 1);
  const t0 = performance.now();
  await disturb();
  // Cluster operations and I/O go on, through every sheep.
  await newVdi(c.ports[1], "after", 4n * BigInt(MIB));
  reportTiming(
    "zookeeper: first cluster op done after the disturbance, ms",
    Math.round(performance.now() - t0),
  );
  await writeRead(c, 2, 4 * MIB, randomBytes(4 * MIB), 0);
  for (const [i, s] of c.sheep.entries()) {
    assert.ok(s.running, `sheep ${i} exited:\n${await sheepLog(c, i)}`);
    assert.equal(await epochOf(c.ports[i]), 1, `sheep ${i} saw a membership change`);
  }
}

Deno.test({
  name: "zookeeper sheep: a restart of the standalone server does not disturb the cluster",
  ...opts,
  fn: async () => {
    const zk = await startZooKeeper();
    try {
      await undisturbed(zk, async () => {
        await zk.stopServer(0);
        zk.startServer(0);
        await zk.waitServing();
      });
    } finally {
      await zk.stop();
    }
  },
});

Deno.test({
  name:
    "zookeeper sheep: losing the leader of a three-server ensemble does not disturb the cluster",
  ...opts,
  fn: async () => {
    const zk = await startZooKeeper(3);
    try {
      await undisturbed(zk, async () => {
        const leader = await zk.leader();
        assert.notEqual(leader, null);
        await zk.killServer(leader!);
      });
    } finally {
      await zk.stop();
    }
  },
});

Deno.test({
  name: "zookeeper sheep: stop the shared server",
  ...opts,
  fn: async () => {
    await shared?.stop();
    shared = null;
  },
});
