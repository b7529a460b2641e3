import assert from "node:assert/strict";
import { canBind, freePort, freePortBelow, isListening } from "./ports.ts";

Deno.test("freePort() returns a bindable port below the ephemeral range, never twice", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const p = freePort();
    assert.ok(p >= 1024 && p < 65536, `port ${p}`);
    assert.ok(!seen.has(p), `port ${p} handed out twice`);
    seen.add(p);
    assert.ok(canBind(p), `port ${p} is not bindable`);
  }
});

Deno.test("freePortBelow(10000) returns a four-digit port for tgt-facing sheep", () => {
  for (let i = 0; i < 20; i++) {
    const p = freePortBelow(10_000);
    assert.ok(p >= 2000 && p < 10_000, `port ${p}`);
  }
});

Deno.test("freePort() skips a port that is taken", async () => {
  const p = freePort();
  const l = Deno.listen({ hostname: "127.0.0.1", port: p });
  try {
    assert.equal(canBind(p), false);
    assert.equal(await isListening(p), true);
  } finally {
    l.close();
  }
  assert.equal(await isListening(p), false);
});
