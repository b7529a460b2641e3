import assert from "node:assert/strict";
import { BufferPool, POOLED_MIN_LENGTH } from "./buffer_pool.ts";

const SIZE = 1 << 20;

Deno.test("BufferPool hands out views of pooled buffers and reuses given-back ones", () => {
  const pool = new BufferPool(SIZE, 2);
  const a = pool.take(SIZE);
  assert.equal(a.length, SIZE);
  assert.ok(pool.owns(a));
  const b = pool.take(POOLED_MIN_LENGTH);
  assert.equal(b.length, POOLED_MIN_LENGTH);
  assert.ok(b.buffer.byteLength >= SIZE, "a view of a pooled buffer");
  pool.give(a);
  assert.equal(pool.free, 1);
  const c = pool.take(SIZE - 1);
  assert.equal(c.buffer, a.buffer, "the given-back buffer is reused");
  assert.equal(pool.free, 0);
});

Deno.test("BufferPool leaves small, large and foreign buffers alone", () => {
  const pool = new BufferPool(SIZE, 2);
  const small = pool.take(POOLED_MIN_LENGTH - 1);
  const large = pool.take(SIZE + 1);
  assert.ok(!pool.owns(small));
  assert.ok(!pool.owns(large));
  pool.give(small);
  pool.give(large);
  pool.give(new Uint8Array(SIZE));
  assert.equal(pool.free, 0);
});

Deno.test("BufferPool keeps a buffer given back twice only once, and at most maxFree", () => {
  const pool = new BufferPool(SIZE, 2);
  const [a, b, c] = [pool.take(SIZE), pool.take(SIZE), pool.take(SIZE)];
  pool.give(a);
  pool.give(a.subarray(10));
  assert.equal(pool.free, 1);
  pool.give(b);
  pool.give(c);
  assert.equal(pool.free, 2);
  const x = pool.take(SIZE);
  const y = pool.take(SIZE);
  assert.notEqual(x.buffer, y.buffer);
});
