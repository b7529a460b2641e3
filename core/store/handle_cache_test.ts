import assert from "node:assert/strict";
import { HandleCache } from "./handle_cache.ts";

interface Fake {
  readonly oid: bigint;
  readonly size: number;
}

/** A fake opener that counts opens and closes; `fail` oids reject. */
function fakeCache(capacity: number, fail: Set<bigint> = new Set()) {
  const log = { opened: [] as bigint[], closed: [] as bigint[] };
  const open = (oid: bigint): Promise<Fake> => {
    log.opened.push(oid);
    if (fail.has(oid)) return Promise.reject(new Error(`no ${oid}`));
    return Promise.resolve({ oid, size: Number(oid) * 10 });
  };
  const close = (fake: Fake): Promise<void> => {
    log.closed.push(fake.oid);
    return Promise.resolve();
  };
  return { log, cache: new HandleCache(capacity, open, close) };
}

Deno.test("HandleCache opens a file once and serves later acquires from the cache", async () => {
  const { log, cache } = fakeCache(4);
  const [a, b] = await Promise.all([cache.acquire(1n), cache.acquire(1n)]);
  assert.equal(a.value, b.value);
  assert.equal(a.value.size, 10);
  a.release();
  b.release();
  (await cache.acquire(1n)).release();
  assert.deepEqual(log.opened, [1n]);
  await cache.close();
  assert.deepEqual(log.closed, [1n]);
});

Deno.test("HandleCache evicts the least recently used idle handle beyond its capacity", async () => {
  const { log, cache } = fakeCache(2);
  for (const oid of [1n, 2n, 1n, 3n]) (await cache.acquire(oid)).release();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(log.closed, [2n]);
  assert.equal(cache.size, 2);
  await cache.close();
});

Deno.test("HandleCache never closes a handle in use, and closes it on its last release", async () => {
  const { log, cache } = fakeCache(1);
  const held = await cache.acquire(1n);
  (await cache.acquire(2n)).release();
  (await cache.acquire(3n)).release();
  assert.ok(!log.closed.includes(1n));
  cache.invalidate(1n);
  assert.ok(!log.closed.includes(1n));
  held.release();
  await cache.close();
  assert.ok(log.closed.includes(1n));
  assert.throws(() => held.release(), /twice/);
});

Deno.test("HandleCache reopens after invalidate()", async () => {
  const { log, cache } = fakeCache(4);
  (await cache.acquire(5n)).release();
  cache.invalidate(5n);
  (await cache.acquire(5n)).release();
  assert.deepEqual(log.opened, [5n, 5n]);
  await cache.close();
  assert.deepEqual(log.closed, [5n, 5n]);
});

Deno.test("HandleCache forgets a failed open so the next acquire tries again", async () => {
  const fail = new Set([7n]);
  const { log, cache } = fakeCache(4, fail);
  await assert.rejects(cache.acquire(7n), /no 7/);
  assert.equal(cache.size, 0);
  fail.delete(7n);
  (await cache.acquire(7n)).release();
  assert.deepEqual(log.opened, [7n, 7n]);
  await cache.close();
});

Deno.test("HandleCache.close() reports a failed close", async () => {
  const cache = new HandleCache(
    4,
    () => Promise.resolve(1),
    () => Promise.reject(new Error("EIO on close")),
  );
  (await cache.acquire(1n)).release();
  await assert.rejects(cache.close(), /EIO on close/);
});
