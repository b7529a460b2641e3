import assert from "node:assert/strict";
import { CREATE_GATHER_IDLE_MS } from "../limits.ts";
import { CreateGather } from "./create_gather.ts";

const OBJ = 1024;

function bytes(len: number, fill: number): Uint8Array {
  return new Uint8Array(len).fill(fill);
}

/** A gather whose runs are recorded; each run's write resolves when `settle` says so. */
function recording(fail?: Error) {
  const runs: { idx: number; off: number; data: Uint8Array }[] = [];
  const g = new CreateGather((idx, off, data) => {
    runs.push({ idx, off, data: data.slice() });
    return fail ? Promise.reject(fail) : Promise.resolve();
  });
  return { g, runs };
}

Deno.test("CreateGather holds a piece only behind a stream with other writes in flight", () => {
  const { g } = recording();
  assert.equal(g.shouldHold(5, 3), false, "nothing written before object 5");
  g.noteWrite(4);
  assert.equal(g.shouldHold(5, 0), false, "queue depth one: never held");
  assert.equal(g.shouldHold(5, 2), true);
  assert.equal(g.shouldHold(4, 2), true, "pieces of an object being written");
  assert.equal(g.shouldHold(6, 2), false, "a write two objects back is no stream");
});

Deno.test("CreateGather sends the pieces of an object as one create once they cover it", async () => {
  const { g, runs } = recording();
  // Out of order, as a client with several threads sends them.
  const done = [
    g.hold(3, 256, bytes(256, 2), OBJ),
    g.hold(3, 0, bytes(256, 1), OBJ),
    g.hold(3, 768, bytes(256, 4), OBJ),
  ];
  assert.equal(runs.length, 0, "held until the object is covered");
  assert.equal(g.heldObjects, 1);
  done.push(g.hold(3, 512, bytes(256, 3), OBJ));
  await Promise.all(done);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].off, 0);
  assert.deepEqual([...runs[0].data].filter((_, i) => i % 256 === 0), [1, 2, 3, 4]);
  assert.equal(g.heldObjects, 0);
});

Deno.test("CreateGather sends what it has after a pause: the longest run first, later bytes win", async () => {
  const { g, runs } = recording();
  const t0 = performance.now();
  await Promise.all([
    g.hold(1, 0, bytes(100, 1), OBJ),
    g.hold(1, 600, bytes(300, 9), OBJ),
    g.hold(1, 50, bytes(100, 2), OBJ), // overlaps the first piece, arrived later
  ]);
  assert.ok(performance.now() - t0 >= CREATE_GATHER_IDLE_MS - 1);
  assert.deepEqual(runs.map((r) => [r.off, r.data.length]), [[600, 300], [0, 150]]);
  assert.deepEqual(runs[1].data.subarray(0, 50), bytes(50, 1));
  assert.deepEqual(runs[1].data.subarray(50), bytes(100, 2));
});

Deno.test("CreateGather fails every piece of a run whose write failed", async () => {
  const { g } = recording(new Error("replica gone"));
  const results = await Promise.allSettled([
    g.hold(0, 0, bytes(512, 1), OBJ),
    g.hold(0, 512, bytes(512, 2), OBJ),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
});
