import assert from "node:assert/strict";
import { AppliedOps } from "./applied_ops.ts";
import { systemTimers } from "../cluster/deadline.ts";

Deno.test("AppliedOps.waitFor() resolves true when the op is recorded later", async () => {
  const a = new AppliedOps(systemTimers);
  const p = a.waitFor("127.0.0.1:7000", 5, 1000);
  a.record("127.0.0.1:7000", 4);
  a.record("127.0.0.1:7000", 5);
  assert.equal(await p, true);
  assert.equal(a.has("127.0.0.1:7000", 5), true);
  assert.equal(a.has("127.0.0.1:7001", 5), false);
});

Deno.test("AppliedOps.waitFor() resolves false at its deadline for an op never applied", async () => {
  const a = new AppliedOps(systemTimers);
  assert.equal(await a.waitFor("n", 1, 20), false);
});

Deno.test("AppliedOps forgets the oldest ops of a sender beyond its bound", () => {
  const a = new AppliedOps(systemTimers);
  for (let i = 0; i < 5000; i++) a.record("n", i);
  assert.equal(a.has("n", 0), false);
  assert.equal(a.has("n", 4999), true);
});
