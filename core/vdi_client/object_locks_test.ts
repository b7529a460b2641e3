import assert from "node:assert/strict";
import { AssertionError } from "../assert.ts";
import { ObjectLocks } from "./object_locks.ts";

/** Lets queued promise callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

function track(p: Promise<() => void>): { granted: () => boolean; release: () => void } {
  let release: (() => void) | null = null;
  p.then((r) => release = r);
  return {
    granted: () => release !== null,
    release: () => {
      assert.ok(release, "released before granted");
      release();
    },
  };
}

Deno.test("ObjectLocks lets reads of one object share it", async () => {
  const locks = new ObjectLocks();
  const a = track(locks.acquire(1, "read", 0, 100));
  const b = track(locks.acquire(1, "read", 50, 150));
  await settle();
  assert.ok(a.granted() && b.granted());
  a.release();
  b.release();
  assert.equal(locks.busyObjects, 0);
});

Deno.test("ObjectLocks runs disjoint writes side by side and orders overlapping ones", async () => {
  const locks = new ObjectLocks();
  const w1 = track(locks.acquire(7, "write", 0, 4096));
  const w2 = track(locks.acquire(7, "write", 4096, 8192));
  const w3 = track(locks.acquire(7, "write", 100, 200));
  const r = track(locks.acquire(7, "read", 5000, 5001));
  await settle();
  assert.ok(w1.granted() && w2.granted());
  assert.ok(!w3.granted(), "overlaps w1");
  assert.ok(!r.granted(), "overlaps w2");
  w1.release();
  await settle();
  assert.ok(w3.granted());
  assert.ok(!r.granted());
  w2.release();
  await settle();
  assert.ok(r.granted());
  w3.release();
  r.release();
  assert.equal(locks.busyObjects, 0);
});

Deno.test("ObjectLocks gives an exclusive holder the whole object, in arrival order", async () => {
  const locks = new ObjectLocks();
  const r1 = track(locks.acquire(3, "read", 0, 10));
  const x = track(locks.acquire(3, "exclusive"));
  const r2 = track(locks.acquire(3, "read", 1000, 1010));
  const other = track(locks.acquire(4, "exclusive"));
  await settle();
  assert.ok(r1.granted());
  assert.ok(!x.granted(), "waits for the read");
  assert.ok(!r2.granted(), "a later read does not overtake the exclusive waiter");
  assert.ok(other.granted(), "another object is independent");
  r1.release();
  await settle();
  assert.ok(x.granted());
  assert.ok(!r2.granted());
  x.release();
  await settle();
  assert.ok(r2.granted());
  r2.release();
  other.release();
  assert.equal(locks.busyObjects, 0);
});

Deno.test("ObjectLocks refuses a double release", async () => {
  const locks = new ObjectLocks();
  const release = await locks.acquire(0, "write", 0, 1);
  release();
  assert.throws(release, AssertionError);
});
