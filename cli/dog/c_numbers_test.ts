import assert from "node:assert/strict";
import { doubleToInt32, doubleToU64, formatFixed, strtod } from "./c_numbers.ts";

Deno.test("strtod() parses the longest decimal prefix and returns the rest", () => {
  assert.deepEqual(strtod("12abc"), { value: 12, rest: "abc" });
  assert.deepEqual(strtod("  +1.5e3K"), { value: 1500, rest: "K" });
  assert.deepEqual(strtod(".5"), { value: 0.5, rest: "" });
  assert.deepEqual(strtod("5."), { value: 5, rest: "" });
  assert.deepEqual(strtod("-2.25M"), { value: -2.25, rest: "M" });
});

Deno.test("strtod() leaves an exponent without digits unparsed", () => {
  assert.deepEqual(strtod("1e"), { value: 1, rest: "e" });
  assert.deepEqual(strtod("1e+"), { value: 1, rest: "e+" });
  assert.deepEqual(strtod("16E"), { value: 16, rest: "E" });
});

Deno.test("strtod() returns the whole input when nothing converts", () => {
  assert.deepEqual(strtod(""), { value: 0, rest: "" });
  assert.deepEqual(strtod("abc"), { value: 0, rest: "abc" });
  assert.deepEqual(strtod("   x"), { value: 0, rest: "   x" });
  assert.deepEqual(strtod("+-1"), { value: 0, rest: "+-1" });
  assert.deepEqual(strtod("M"), { value: 0, rest: "M" });
});

Deno.test("strtod() reads hexadecimal floats, inf and nan", () => {
  assert.deepEqual(strtod("0x10"), { value: 16, rest: "" });
  assert.deepEqual(strtod("-0x1p-2"), { value: -0.25, rest: "" });
  assert.deepEqual(strtod("0x1.8p1k"), { value: 3, rest: "k" });
  assert.deepEqual(strtod("0x"), { value: 0, rest: "x" });
  assert.deepEqual(strtod("infinity1"), { value: Infinity, rest: "1" });
  assert.deepEqual(strtod("-INF"), { value: -Infinity, rest: "" });
  const nan = strtod("nan(123)x");
  assert.ok(Number.isNaN(nan.value));
  assert.equal(nan.rest, "x");
});

Deno.test("doubleToU64() truncates like gcc's x86-64 conversion", () => {
  assert.equal(doubleToU64(0), 0n);
  assert.equal(doubleToU64(1.9), 1n);
  assert.equal(doubleToU64(-0.5), 0n);
  assert.equal(doubleToU64(2 ** 63), 1n << 63n);
  assert.equal(doubleToU64(18446744073709549568), 18446744073709549568n);
});

Deno.test("doubleToU64() wraps negatives and maps out-of-range values as x86 does", () => {
  assert.equal(doubleToU64(-1), (1n << 64n) - 1n);
  assert.equal(doubleToU64(-1024.7), (1n << 64n) - 1024n);
  assert.equal(doubleToU64(2 ** 64), 0n);
  assert.equal(doubleToU64(Infinity), 0n);
  assert.equal(doubleToU64(-Infinity), 1n << 63n);
  assert.equal(doubleToU64(NaN), 1n << 63n);
  assert.equal(doubleToU64(-(2 ** 64)), 1n << 63n);
});

Deno.test("doubleToInt32() truncates and gives INT_MIN for NaN and overflow", () => {
  assert.equal(doubleToInt32(99.9), 99);
  assert.equal(doubleToInt32(-0.5), 0);
  assert.equal(doubleToInt32(-7.9), -7);
  assert.equal(doubleToInt32(NaN), -2147483648);
  assert.equal(doubleToInt32(3e9), -2147483648);
  assert.equal(doubleToInt32(-3e9), -2147483648);
});

Deno.test("formatFixed() rounds exact ties to even like glibc's printf", () => {
  assert.equal(formatFixed(0.5, 0), "0");
  assert.equal(formatFixed(1.5, 0), "2");
  assert.equal(formatFixed(2.5, 0), "2");
  assert.equal(formatFixed(10.5, 0), "10");
  assert.equal(formatFixed(2.25, 1), "2.2");
  assert.equal(formatFixed(2.75, 1), "2.8");
  assert.equal(formatFixed(0.125, 2), "0.12");
  assert.equal(formatFixed(0.375, 2), "0.38");
});

Deno.test("formatFixed() rounds non-ties by their exact binary value", () => {
  assert.equal(formatFixed(0.1, 1), "0.1");
  assert.equal(formatFixed(0.15, 1), "0.1"); // 0.1499999999999999944…
  assert.equal(formatFixed(0.35, 1), "0.3"); // 0.34999999999999997779…
  assert.equal(formatFixed(9.96, 1), "10.0");
  assert.equal(formatFixed(1023.6, 0), "1024");
});

Deno.test("formatFixed() handles signs, zero, huge, tiny and special values", () => {
  assert.equal(formatFixed(0, 1), "0.0");
  assert.equal(formatFixed(-0, 1), "-0.0");
  assert.equal(formatFixed(-1.25, 1), "-1.2");
  assert.equal(formatFixed(1e21, 0), "1000000000000000000000");
  assert.equal(formatFixed(5e-324, 3), "0.000");
  assert.equal(formatFixed(1.0005, 3), "1.000"); // 1.000499999999999989…
  assert.equal(formatFixed(NaN, 1), "nan");
  assert.equal(formatFixed(Infinity, 1), "inf");
  assert.equal(formatFixed(-Infinity, 0), "-inf");
});
