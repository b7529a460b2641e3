import assert from "node:assert/strict";
import { liveManagedPids, run, runOk, spawnManaged, waitUntil } from "./process.ts";
import { tempDir } from "./tempdir.ts";

Deno.test("run() returns exit code, stdout bytes and stderr text", async () => {
  const r = await run("sh", ["-c", "printf 'a\\0b'; echo err >&2; exit 3"]);
  assert.equal(r.code, 3);
  assert.equal(r.success, false);
  assert.equal(r.timedOut, false);
  assert.deepEqual([...r.stdout], [97, 0, 98]);
  assert.equal(r.stderrText, "err\n");
});

Deno.test("run() feeds stdin, also more than a pipe buffer", async () => {
  const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
  const r = await run("cat", [], { stdin: big });
  assert.equal(r.code, 0);
  assert.deepEqual(r.stdout, big);
});

Deno.test("run() kills a command at its deadline", async () => {
  const t0 = Date.now();
  const r = await run("sleep", ["30"], { deadlineMs: 300 });
  assert.equal(r.timedOut, true);
  assert.equal(r.success, false);
  assert.equal(r.signal, "SIGKILL");
  assert.ok(Date.now() - t0 < 5_000, "took too long");
});

Deno.test("run() of a missing program throws a clear error", async () => {
  await assert.rejects(run("no-such-program-xyz", []), /command not found/);
});

Deno.test("runOk() throws with stderr on failure", async () => {
  await assert.rejects(runOk("sh", ["-c", "echo boom >&2; exit 1"]), /exited 1[\s\S]*boom/);
});

Deno.test("spawnManaged(): logs, stop() with SIGTERM, then SIGKILL after the deadline", async () => {
  await using dir = await tempDir("proc");
  const log = `${dir.path}/out.log`;
  // Ignores SIGTERM, so stop() must fall back to SIGKILL.
  const p = spawnManaged(["sh", "-c", "trap '' TERM; echo started; exec sleep 30"], {
    logFile: log,
  });
  try {
    assert.ok(liveManagedPids().includes(p.pid));
    await waitUntil(() => p.logs().includes("started"), 5_000, "output");
    const t0 = Date.now();
    const st = await p.stop(300);
    assert.equal(st.signal, "SIGKILL");
    assert.ok(Date.now() - t0 < 5_000);
    assert.equal(p.running, false);
    assert.ok(!liveManagedPids().includes(p.pid));
    assert.match(await Deno.readTextFile(log), /started/);
    // Idempotent.
    assert.equal((await p.stop()).signal, "SIGKILL");
  } finally {
    await p.kill();
  }
});

Deno.test("spawnManaged(): stop() of a process that handles SIGTERM", async () => {
  const p = spawnManaged(["sleep", "30"]);
  try {
    const st = await p.stop(5_000);
    assert.equal(st.signal, "SIGTERM");
  } finally {
    await p.kill();
  }
});
