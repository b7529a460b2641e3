import assert from "node:assert/strict";
import { Res, SD_NR_VDIS, SD_VDI_BITMAP_SIZE } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { VdiBitmap } from "./bitmap.ts";

const LAST = SD_NR_VDIS - 1;

/** Deterministic xorshift32 so failures replay. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

Deno.test("VdiBitmap stores vid i in byte i >> 3 at bit i & 7, like set_bit on LE longs", () => {
  const bm = new VdiBitmap();
  assert.equal(bm.bytes.length, SD_VDI_BITMAP_SIZE);
  assert.equal(SD_VDI_BITMAP_SIZE, 2 * 1024 * 1024);
  bm.set(0);
  bm.set(9);
  bm.set(0x7c2b25);
  bm.set(LAST);
  assert.equal(bm.bytes[0], 0x01);
  assert.equal(bm.bytes[1], 0x02);
  assert.equal(bm.bytes[0x7c2b25 >> 3], 1 << (0x7c2b25 & 7));
  assert.equal(bm.bytes[SD_VDI_BITMAP_SIZE - 1], 0x80);
  // The same bits seen as 64-bit little-endian words, as v1.0's unsigned long[] holds them.
  const longs = new DataView(bm.bytes.buffer);
  assert.equal(longs.getBigUint64(0, true), (1n << 0n) | (1n << 9n));
  assert.equal(longs.getBigUint64(SD_VDI_BITMAP_SIZE - 8, true), 1n << 63n);
});

Deno.test("VdiBitmap.test(), set() and clear() touch only their own bit", () => {
  const bm = new VdiBitmap();
  for (const v of [1, 31, 32, 33, 63, 64, 0x7c2b25, LAST]) {
    assert.equal(bm.test(v), false);
    bm.set(v);
    assert.equal(bm.test(v), true);
    assert.equal(bm.test(v - 1), false);
    if (v < LAST) assert.equal(bm.test(v + 1), false);
    bm.clear(v);
    assert.equal(bm.test(v), false);
  }
  assert.equal(bm.popcount, 0);
});

Deno.test("VdiBitmap asserts on a vid outside 0..2^24-1", () => {
  const bm = new VdiBitmap();
  for (const bad of [-1, SD_NR_VDIS, 1.5]) {
    assert.throws(() => bm.set(bad));
    assert.throws(() => bm.test(bad));
  }
});

Deno.test("VdiBitmap.from() copies exactly 2 MiB and rejects other sizes with INVALID_PARMS", () => {
  const raw = new Uint8Array(SD_VDI_BITMAP_SIZE);
  raw[0x7c2b25 >> 3] = 1 << (0x7c2b25 & 7);
  const bm = VdiBitmap.from(raw);
  assert.equal(bm.test(0x7c2b25), true);
  raw.fill(0);
  assert.equal(bm.test(0x7c2b25), true, "from() copies");
  for (const n of [0, SD_VDI_BITMAP_SIZE - 1, SD_VDI_BITMAP_SIZE + 1]) {
    assert.throws(
      () => VdiBitmap.from(new Uint8Array(n)),
      (e) => e instanceof SdError && e.result === Res.INVALID_PARMS,
    );
  }
  // An unaligned view works too.
  const big = new Uint8Array(SD_VDI_BITMAP_SIZE + 1);
  big[1] = 0x04;
  assert.equal(VdiBitmap.from(big.subarray(1)).findNextSet(0), 2);
});

Deno.test("VdiBitmap.findNextZero() and findNextSet() cross word boundaries and stop at 2^24", () => {
  const bm = new VdiBitmap();
  assert.equal(bm.findNextSet(0), -1);
  assert.equal(bm.findNextZero(0), 0);
  assert.equal(bm.findNextZero(LAST), LAST);
  assert.equal(bm.findNextZero(SD_NR_VDIS), -1);
  assert.equal(bm.findNextSet(SD_NR_VDIS), -1);
  for (let v = 30; v < 100; v++) bm.set(v);
  assert.equal(bm.findNextZero(30), 100);
  assert.equal(bm.findNextZero(31), 100);
  assert.equal(bm.findNextZero(29), 29);
  assert.equal(bm.findNextSet(0), 30);
  assert.equal(bm.findNextSet(64), 64);
  assert.equal(bm.findNextSet(100), -1);
  bm.set(LAST);
  assert.equal(bm.findNextSet(100), LAST);
  assert.equal(bm.findNextZero(LAST), -1);
  bm.bytes.fill(0xff);
  assert.equal(bm.findNextZero(0), -1);
  bm.clear(0);
  assert.equal(bm.findNextZero(1), -1);
  assert.equal(bm.findNextZero(0), 0);
});

Deno.test("VdiBitmap.findPrevSet() scans down across words and stops at 0", () => {
  const bm = new VdiBitmap();
  assert.equal(bm.findPrevSet(LAST), -1);
  assert.equal(bm.findPrevSet(-1), -1);
  bm.set(0);
  bm.set(31);
  bm.set(32);
  bm.set(LAST);
  assert.equal(bm.findPrevSet(LAST), LAST);
  assert.equal(bm.findPrevSet(LAST - 1), 32);
  assert.equal(bm.findPrevSet(32), 32);
  assert.equal(bm.findPrevSet(31), 31);
  assert.equal(bm.findPrevSet(30), 0);
  assert.equal(bm.findPrevSet(0), 0);
});

Deno.test("VdiBitmap scans agree with a bit-by-bit reference on random maps", () => {
  const next = rng(0xb17);
  const bm = new VdiBitmap();
  const lo = SD_NR_VDIS - 4096;
  for (let v = lo; v < SD_NR_VDIS; v++) if (next() % 3 !== 0) bm.set(v);
  for (let v = 0; v < 4096; v++) if (next() % 3 === 0) bm.set(v);
  const naive = (from: number, want: boolean, step: number) => {
    for (let v = from; v >= 0 && v < SD_NR_VDIS; v += step) if (bm.test(v) === want) return v;
    return -1;
  };
  for (let i = 0; i < 3000; i++) {
    const from = i % 2 ? lo + (next() % 4096) : next() % 4096;
    assert.equal(bm.findNextZero(from), naive(from, false, 1), `zero from ${from}`);
    assert.equal(bm.findNextSet(from), naive(from, true, 1), `set from ${from}`);
    if (from < 4096) assert.equal(bm.findPrevSet(from), naive(from, true, -1), `prev ${from}`);
  }
  let count = 0;
  for (let v = 0; v < 4096; v++) if (bm.test(v)) count++;
  for (let v = lo; v < SD_NR_VDIS; v++) if (bm.test(v)) count++;
  assert.equal(bm.popcount, count);
});

Deno.test("VdiBitmap scans the whole 2 MiB map quickly", () => {
  const bm = new VdiBitmap();
  bm.bytes.fill(0xff);
  bm.clear(LAST);
  bm.findNextZero(0); // warm up
  let t = performance.now();
  assert.equal(bm.findNextZero(1), LAST);
  const zero = performance.now() - t;
  t = performance.now();
  assert.equal(bm.popcount, SD_NR_VDIS - 1);
  const pop = performance.now() - t;
  bm.bytes.fill(0);
  bm.set(0);
  t = performance.now();
  assert.equal(bm.findPrevSet(LAST), 0);
  const prev = performance.now() - t;
  console.log(
    `full-map findNextZero ${zero.toFixed(2)} ms, popcount ${pop.toFixed(2)} ms, ` +
      `findPrevSet ${prev.toFixed(2)} ms`,
  );
});
