import assert from "node:assert/strict";
import { isAllZero, nonZeroSpan } from "./zero_span.ts";

Deno.test("isAllZero() finds a non-zero byte at any alignment", () => {
  const backing = new Uint8Array(64);
  for (let start = 0; start < 8; start++) {
    for (let len = 0; len < 40; len++) {
      const view = backing.subarray(start, start + len);
      assert.equal(isAllZero(view), true);
      for (let i = 0; i < len; i++) {
        view[i] = 1;
        assert.equal(isAllZero(view), false, `start ${start} len ${len} at ${i}`);
        view[i] = 0;
      }
    }
  }
});

Deno.test("nonZeroSpan() drops zero blocks at both ends, aligned to file offsets", () => {
  const data = new Uint8Array(5 * 4096);
  assert.deepEqual(nonZeroSpan(data, 0), [0, 0]);
  data[4096 + 5] = 1;
  data[3 * 4096] = 1;
  assert.deepEqual(nonZeroSpan(data, 0), [4096, 4 * 4096]);
  // At file offset 100 the blocks start at data index 3996, 8092, …
  assert.deepEqual(nonZeroSpan(data, 100), [3996, 16284]);
});

Deno.test("nonZeroSpan() keeps a buffer whose ends are non-zero", () => {
  const data = new Uint8Array(10000);
  data[0] = 1;
  data[9999] = 2;
  assert.deepEqual(nonZeroSpan(data, 7), [0, 10000]);
});
