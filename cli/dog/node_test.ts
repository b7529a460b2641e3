/**
 * Unit tests of `dog node …` against an in-process fake cluster (not the real daemon).
 */
import assert from "node:assert/strict";
import { Op, Res } from "../../core/proto/constants.ts";
import { runDogCaptured, startFake } from "./test_harness.ts";

Deno.test("node list --json gives id, address, vnodes and zone", async () => {
  const fake = startFake(2);
  try {
    const run = await runDogCaptured(["node", "list", "--json"], { fake });
    assert.deepEqual(JSON.parse(run.stdout), [
      { id: 0, host: "127.0.0.1", port: 7000, vnodes: 128, zone: 0 },
      { id: 1, host: "127.0.0.1", port: 7001, vnodes: 128, zone: 1 },
    ]);
  } finally {
    await fake.stop();
  }
});

Deno.test("node kill sends KILL_NODE to the node with that id", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(["node", "kill", "1"], { fake });
    assert.equal(run.code, 0);
    const kill = fake.seen.find((s) => s.opcode === Op.KILL_NODE)!;
    assert.equal(kill.node, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("node kill -l sends KILL_NODE to the sheep dog is connected to", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(["node", "kill", "-l", "-p", "7002"], { fake });
    assert.equal(run.code, 0);
    assert.equal(fake.seen.find((s) => s.opcode === Op.KILL_NODE)!.node, 2);
  } finally {
    await fake.stop();
  }
});

Deno.test("node kill rejects ids that are not members with exit 64", async () => {
  const fake = startFake(3);
  try {
    const big = await runDogCaptured(["node", "kill", "3"], { fake });
    assert.ok(big.stderr.startsWith("Invalid node id '3'\nUsage: dog node kill "));
    assert.equal(big.code, 64);
    const word = await runDogCaptured(["node", "kill", "x"], { fake });
    assert.ok(word.stderr.startsWith("Invalid node id 'x', please specify a numeric value\n"));
    assert.equal(word.code, 64);
  } finally {
    await fake.stop();
  }
});

Deno.test("node info skips a node that fails and still prints the totals", async () => {
  const fake = startFake(2);
  try {
    fake.failures.set(Op.STAT_SHEEP, Res.SYSTEM_ERROR);
    const failing = await runDogCaptured(["node", "info"], { fake });
    assert.equal(
      failing.stderr,
      "Response's result: System error\nResponse's result: System error\n" +
        "Cannot get information from any nodes\n",
    );
    assert.equal(failing.code, 2);
  } finally {
    await fake.stop();
  }
});

Deno.test("node info adds up the sizes of working VDIs only", async () => {
  const fake = startFake(1);
  try {
    await runDogCaptured(["cluster", "format", "-c", "1"], { fake });
    await runDogCaptured(["vdi", "create", "a", "100M"], { fake });
    await runDogCaptured(["vdi", "create", "b", "8M"], { fake });
    await runDogCaptured(["vdi", "snapshot", "b"], { fake });
    const run = await runDogCaptured(["node", "info", "-r"], { fake });
    assert.equal(
      run.stdout,
      "0 78640807936 0 78640807936 0%\nTotal 78640807936 0 78640807936 0% 113246208\n",
    );
  } finally {
    await fake.stop();
  }
});

Deno.test("node log level set, get and list", async () => {
  const fake = startFake(1);
  try {
    assert.equal(
      (await runDogCaptured(["node", "log", "level", "set", "debug"], { fake })).code,
      0,
    );
    assert.equal(fake.logLevel, 7);
    assert.equal(
      (await runDogCaptured(["node", "log", "level", "get"], { fake })).stdout,
      "debug (7)\n",
    );
    const list = await runDogCaptured(["node", "log", "level", "list"], { fake });
    assert.equal(
      list.stdout,
      "emerg (0)\nalert (1)\ncrit (2)\nerr (3)\nwarning (4)\nnotice (5)\ninfo (6)\ndebug (7)\n",
    );
    const bad = await runDogCaptured(["node", "log", "level", "set", "loud"], { fake });
    assert.ok(bad.stderr.startsWith("invalid log level: loud\nUsage: dog node log "));
    assert.equal(bad.code, 64);
  } finally {
    await fake.stop();
  }
});

Deno.test("node log level get exits 255 when the request fails", async () => {
  const fake = startFake(1);
  try {
    fake.failures.set(Op.GET_LOGLEVEL, Res.INVALID_PARMS);
    const run = await runDogCaptured(["node", "log", "level", "get"], { fake });
    assert.equal(run.stderr, "Failed to execute request\n");
    assert.equal(run.code, 255);
  } finally {
    await fake.stop();
  }
});
