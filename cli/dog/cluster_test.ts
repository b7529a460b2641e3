/**
 * Unit tests of `dog cluster …` against an in-process fake cluster (not the real daemon).
 */
import assert from "node:assert/strict";
import { ClusterFlag, Op, Res } from "../../core/proto/constants.ts";
import { DegradedReason } from "../../core/proto/degraded.ts";
import { FORMAT_NOT_EMPTY } from "./confirm.ts";
import { runDogCaptured, startFake, TRANSCRIPT_SECONDS } from "./test_harness.ts";

const opcodes = (fake: { seen: { opcode: number }[] }) => fake.seen.map((s) => s.opcode);

Deno.test("cluster format asks before wiping a cluster that has VDIs, and stops on no", async () => {
  const fake = startFake(3);
  try {
    await runDogCaptured(["cluster", "format", "-c", "2"], { fake });
    await runDogCaptured(["vdi", "create", "test", "1M"], { fake });
    fake.seen.length = 0;
    const run = await runDogCaptured(["cluster", "format", "-c", "2"], { fake, stdin: "no\n" });
    assert.equal(run.stdout, FORMAT_NOT_EMPTY);
    assert.equal(run.code, 0);
    assert.ok(!opcodes(fake).includes(Op.MAKE_FS));
    assert.ok(opcodes(fake).includes(Op.READ_VDIS));
    assert.equal(fake.inuse.size, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format goes on after yes in any case", async () => {
  const fake = startFake(3);
  try {
    await runDogCaptured(["cluster", "format", "-c", "2"], { fake });
    await runDogCaptured(["vdi", "create", "test", "1M"], { fake });
    const run = await runDogCaptured(["cluster", "format", "-c", "2"], { fake, stdin: "YES\n" });
    assert.equal(run.stdout, FORMAT_NOT_EMPTY + "using backend plain store\n");
    assert.equal(run.code, 0);
    assert.equal(fake.inuse.size, 0);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format -f neither asks nor reads the VDI bitmap", async () => {
  const fake = startFake(1);
  try {
    fake.inuse.add(5);
    const run = await runDogCaptured(["cluster", "format", "-f"], { fake });
    assert.equal(run.stdout, "using backend plain store\n");
    assert.ok(!opcodes(fake).includes(Op.READ_VDIS));
    assert.ok(opcodes(fake).includes(Op.MAKE_FS));
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format asks when there are fewer nodes than copies", async () => {
  const fake = startFake(1);
  try {
    const run = await runDogCaptured(["cluster", "format"], { fake });
    assert.equal(
      run.stdout,
      "Number of copies (3) is larger than number of nodes (1).\n" +
        "Are you sure you want to continue? [yes/no]: ",
    );
    assert.equal(run.code, 0);
    assert.ok(!opcodes(fake).includes(Op.MAKE_FS));
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format sends copies, policy, flags, shift, ctime and the store name", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(
      ["cluster", "format", "-c", "2:1", "-z", "23", "-t", "-l", "-R", "-F", "-b", "tree"],
      { fake },
    );
    assert.equal(run.stdout, "using backend tree store\n");
    const req = fake.seen.find((s) => s.opcode === Op.MAKE_FS)!;
    assert.equal(req.req.protoVer, 0x0a);
    assert.equal(req.req.cluster.copies, 3);
    assert.equal(req.req.cluster.copyPolicy, 0x11);
    assert.equal(req.req.cluster.blockSizeShift, 23);
    assert.equal(
      req.req.cluster.flags,
      ClusterFlag.STRICT | ClusterFlag.USE_LOCK | ClusterFlag.RECYCLE_VID |
        ClusterFlag.AVOID_DISKFULL | ClusterFlag.AUTO_VNODES,
    );
    assert.equal(req.req.cluster.ctime >> 32n, BigInt(TRANSCRIPT_SECONDS));
    assert.deepEqual([...req.data], [...new TextEncoder().encode("tree\0")]);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format -V is refused on sheep that run with auto vnodes", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(["cluster", "format", "-V", "-c", "2"], { fake });
    assert.equal(
      run.stderr,
      "Can not apply the option of '-V', because there are vnode strategy of sheep is auto in the cluster\n",
    );
    assert.equal(run.code, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format rejects a bad -c with v1.0's help and exit 1", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(["cluster", "format", "-c", "3:1"], { fake });
    assert.ok(run.stderr.startsWith("Invalid parameter 3:1\nTo create replicated vdi, set -c x\n"));
    assert.equal(run.code, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format lists the stores when the store is unknown", async () => {
  const fake = startFake(1);
  try {
    fake.failures.set(Op.MAKE_FS, Res.NO_STORE);
    const run = await runDogCaptured(["cluster", "format", "-f", "-b", "nosuch"], { fake });
    assert.equal(
      run.all,
      "using backend nosuch store\nFormat failed: Targeted backend store is not found\n" +
        "Available stores:\n---------------------------------------\nplain tree\n",
    );
    assert.equal(run.code, 2);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster info doubles the node slots on BUFFER_SMALL until every epoch fits", async () => {
  const fake = startFake(2);
  try {
    await runDogCaptured(["cluster", "format", "-c", "2"], { fake });
    // Epochs 1 and 2 had three more nodes, which left since.
    fake.epochCount = 3;
    fake.headerEpoch = 3;
    fake.formerNodes = 3;
    fake.seen.length = 0;
    const run = await runDogCaptured(["cluster", "info", "-r"], { fake });
    const s = TRANSCRIPT_SECONDS;
    const five = "127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7100:128, " +
      "127.0.0.1:7101:128, 127.0.0.1:7102:128";
    assert.equal(
      run.stdout,
      "running, auto-recovery enabled\n\n" +
        `${s + 2} 3 [127.0.0.1:7000:128, 127.0.0.1:7001:128]\n` +
        `${s + 1} 2 [${five}]\n` +
        `${s} 1 [${five}]\n`,
    );
    const stats = fake.seen.filter((x) => x.opcode === Op.STAT_CLUSTER);
    assert.deepEqual(stats.map((x) => x.req.cluster.nodesNr), [2, 4, 8]);
    assert.deepEqual(
      stats.map((x) => x.req.dataLength),
      [2, 4, 8].map((n) => 3 * (48 + n * 80)),
    );
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster info --json describes status and epochs", async () => {
  const fake = startFake(1);
  try {
    const before = JSON.parse(
      (await runDogCaptured(["cluster", "info", "--json"], { fake })).stdout,
    );
    assert.equal(before.status, "Waiting for cluster to be formatted");
    assert.deepEqual(before.epochs, []);
    await runDogCaptured(["cluster", "format", "-c", "1"], { fake });
    const after = JSON.parse(
      (await runDogCaptured(["cluster", "info", "--json"], { fake })).stdout,
    );
    assert.equal(after.status, "running");
    assert.equal(after.autoRecovery, true);
    assert.equal(after.redundancy, "1");
    assert.equal(after.createdAt, TRANSCRIPT_SECONDS);
    assert.deepEqual(after.epochs, [{
      epoch: 1,
      time: TRANSCRIPT_SECONDS,
      nodes: [{ host: "127.0.0.1", port: 7000, vnodes: 128, zone: 0 }],
    }]);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster shutdown reports a refused request and exits 1", async () => {
  const fake = startFake(1);
  try {
    fake.failures.set(Op.SHUTDOWN, Res.INVALID_PARMS);
    const run = await runDogCaptured(["cluster", "shutdown"], { fake });
    assert.equal(run.stderr, "Response's result: Invalid parameters\nFailed to execute request\n");
    assert.equal(run.code, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("cluster format -F sets AVOID_DISKFULL; cluster info reports a degraded cluster", async () => {
  const fake = startFake(3);
  try {
    await runDogCaptured(["cluster", "format", "-c", "2", "-F"], { fake });
    assert.equal(fake.flags & ClusterFlag.AVOID_DISKFULL, ClusterFlag.AVOID_DISKFULL);
    // A sheep without STAT_DEGRADED (v1.0) answers INVALID_PARMS: v1.0's status line.
    let run = await runDogCaptured(["cluster", "info", "-r"], { fake });
    assert.match(run.stdout, /^running, auto-recovery enabled\n/);
    fake.degraded = [];
    run = await runDogCaptured(["cluster", "info"], { fake });
    assert.match(run.stdout, /^Cluster status: running, auto-recovery enabled\n/);
    fake.degraded = [{
      node: fake.nodes[1],
      reason: DegradedReason.NOT_STARTED,
      needed: 48 << 20,
      free: 20 << 20,
    }];
    run = await runDogCaptured(["cluster", "info"], { fake });
    assert.equal(
      run.stdout.split("\n")[0],
      "Cluster status: running, degraded (recovery not started: node 127.0.0.1:7001 would be out of space)",
    );
    assert.equal(run.code, 0);
    run = await runDogCaptured(["cluster", "info", "-r"], { fake });
    assert.match(run.stdout, /^running, degraded \(recovery not started: node 127\.0\.0\.1:7001 /);
    const json = JSON.parse((await runDogCaptured(["cluster", "info", "--json"], { fake })).stdout);
    assert.deepEqual(json.degraded, [{
      host: "127.0.0.1",
      port: 7001,
      reason: "recovery not started",
      neededBytes: 48 << 20,
      freeBytes: 20 << 20,
    }]);
  } finally {
    await fake.stop();
  }
});
