import assert from "node:assert/strict";
import { invalidSizeLines, parseSize, sizeToStr } from "./size.ts";

const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;
const TiB = 1024n * GiB;
const PiB = 1024n * TiB;

Deno.test("parseSize() takes B/K/M/G/T/P in either case as powers of 1024", () => {
  const cases: [string, bigint][] = [
    ["1", 1n],
    ["1b", 1n],
    ["1B", 1n],
    ["1k", KiB],
    ["1K", KiB],
    ["100m", 100n * MiB],
    ["100M", 104857600n],
    ["8M", 8388608n],
    ["1g", GiB],
    ["1G", GiB],
    ["4t", 4n * TiB],
    ["4T", 4398046511104n],
    ["1p", PiB],
    ["16P", 16n * PiB],
  ];
  for (const [text, want] of cases) assert.equal(parseSize(text), want, text);
});

Deno.test("parseSize() parses the number as a double and truncates the product", () => {
  assert.equal(parseSize("1.5G"), 1610612736n);
  assert.equal(parseSize("0.5k"), 512n);
  assert.equal(parseSize("1.9"), 1n);
  assert.equal(parseSize("1e3"), 1000n);
  assert.equal(parseSize("1e3K"), 1024000n);
  assert.equal(parseSize("0x10"), 16n);
  assert.equal(parseSize("0x1p4K"), 16n * KiB);
  assert.equal(parseSize(".25M"), 262144n);
  assert.equal(parseSize("  10M"), 10n * MiB);
  assert.equal(parseSize("+1K"), KiB);
});

Deno.test("parseSize() accepts what v1.0 accepts even when odd", () => {
  assert.equal(parseSize(""), 0n);
  assert.equal(parseSize("M"), 0n);
  assert.equal(parseSize("-1"), (1n << 64n) - 1n);
  assert.equal(parseSize("-0.5"), 0n);
  assert.equal(parseSize("1e30"), 0n);
  assert.equal(parseSize("inf"), 0n);
  assert.equal(parseSize("nan"), 1n << 63n);
});

Deno.test("parseSize() refuses two suffix characters and unknown suffixes", () => {
  for (const text of ["100MB", "1X", "abc", "1 M", "16E", "1KB", "1.5.2G", "ten"]) {
    assert.equal(parseSize(text), undefined, text);
  }
});

Deno.test("invalidSizeLines() gives v1.0's two lines", () => {
  assert.deepEqual(invalidSizeLines("1X"), [
    "Invalid size '1X'",
    "You may use k, M, G, T or P suffixes for kilobytes, megabytes, gigabytes, terabytes and petabytes.",
  ]);
});

Deno.test("sizeToStr() prints the transcript's sizes", () => {
  assert.equal(sizeToStr(0n, false), "0.0 MB");
  assert.equal(sizeToStr(104857600n, false), "100 MB");
  assert.equal(sizeToStr(8388608n, false), "8.0 MB");
  assert.equal(sizeToStr(4194304n, false), "4.0 MB");
  assert.equal(sizeToStr(78640807936n, false), "73 GB");
  assert.equal(sizeToStr(235922423808n, false), "220 GB");
});

Deno.test("sizeToStr() switches units at 1024 and precision at 10", () => {
  assert.equal(sizeToStr(1n, false), "0.0 MB");
  assert.equal(sizeToStr(9n * MiB + 1000n * KiB, false), "10.0 MB"); // 9.98 MB, %.1f
  assert.equal(sizeToStr(10n * MiB, false), "10 MB");
  assert.equal(sizeToStr(1023n * MiB + 1000n * KiB, false), "1024 MB"); // below 1024: still MB
  assert.equal(sizeToStr(GiB, false), "1.0 GB");
  assert.equal(sizeToStr(4n * TiB, false), "4.0 TB");
  assert.equal(sizeToStr(16n * PiB, false), "16 PB");
  assert.equal(sizeToStr(1n << 60n, false), "1.0 EB");
  assert.equal(sizeToStr((1n << 64n) - 1n, false), "16 EB");
});

Deno.test("sizeToStr() rounds ties to even as glibc does", () => {
  assert.equal(sizeToStr(10n * MiB + 512n * KiB, false), "10 MB"); // 10.5
  assert.equal(sizeToStr(11n * MiB + 512n * KiB, false), "12 MB"); // 11.5
  assert.equal(sizeToStr(2n * MiB + 256n * KiB, false), "2.2 MB"); // 2.25
  assert.equal(sizeToStr(2n * MiB + 768n * KiB, false), "2.8 MB"); // 2.75
});

Deno.test("sizeToStr() prints plain bytes in raw mode", () => {
  assert.equal(sizeToStr(0n, true), "0");
  assert.equal(sizeToStr(78640807936n, true), "78640807936");
  assert.equal(sizeToStr((1n << 64n) - 1n, true), "18446744073709551615");
});
