import assert from "node:assert/strict";
import { mapBounded } from "./bounded.ts";

Deno.test("mapBounded() consumes results in item order whatever order they finish in", async () => {
  const seen: number[] = [];
  await mapBounded([30, 10, 20, 0], 4, async (ms) => {
    await new Promise((r) => setTimeout(r, ms));
    return ms;
  }, (r) => {
    seen.push(r);
  });
  assert.deepEqual(seen, [30, 10, 20, 0]);
});

Deno.test("mapBounded() never has more than the limit in flight", async () => {
  let inFlight = 0;
  let peak = 0;
  await mapBounded([...Array(20).keys()], 3, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
    return i;
  }, () => {});
  assert.equal(peak, 3);
});

Deno.test("mapBounded() throws the first failure in order and stops launching", async () => {
  const started: number[] = [];
  await assert.rejects(
    mapBounded([0, 1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, 1));
      if (i === 1 || i === 2) throw new Error(`boom ${i}`);
      return i;
    }, () => {}),
    /boom 1/,
  );
  assert.ok(!started.includes(5));
});
