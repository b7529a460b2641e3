import assert from "node:assert/strict";
import { Res } from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, encodeFixedString, writeFixedString } from "./strings.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

Deno.test("encodeFixedString() NUL-pads a name to the field size", () => {
  assert.deepEqual(
    encodeFixedString("plain", 16),
    new Uint8Array([0x70, 0x6c, 0x61, 0x69, 0x6e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  );
  assert.deepEqual(encodeFixedString("", 4), new Uint8Array(4));
});

Deno.test("encodeFixedString() writes UTF-8 bytes", () => {
  assert.deepEqual([...encodeFixedString("é€", 8)], [0xc3, 0xa9, 0xe2, 0x82, 0xac, 0, 0, 0]);
});

Deno.test("encodeFixedString() takes at most size - 1 bytes, keeping a NUL as v1.0's pstrcpy", () => {
  const ok = encodeFixedString("x".repeat(255), 256);
  assert.equal(ok[254], 0x78);
  assert.equal(ok[255], 0);
  assert.throws(() => encodeFixedString("x".repeat(256), 256), invalidParms);
  assert.throws(() => encodeFixedString("abcdefghijklmnop", 16), invalidParms);
  // 128 two-byte characters are 256 bytes: too long although only 128 characters.
  assert.throws(() => encodeFixedString("é".repeat(128), 256), invalidParms);
  assert.equal(encodeFixedString("é".repeat(127) + "a", 256)[254], 0x61);
});

Deno.test("encodeFixedString() refuses a string with a NUL inside", () => {
  assert.throws(() => encodeFixedString("a\0b", 16), invalidParms);
});

Deno.test("writeFixedString() overwrites the whole field at an offset and nothing else", () => {
  const out = new Uint8Array(12).fill(0xff);
  writeFixedString("ab", out, 3, 6);
  assert.deepEqual([...out], [0xff, 0xff, 0xff, 0x61, 0x62, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
});

Deno.test("writeFixedString() leaves the buffer untouched when the string is too long", () => {
  const out = new Uint8Array(8).fill(7);
  assert.throws(() => writeFixedString("abcd", out, 2, 4), invalidParms);
  assert.deepEqual(out, new Uint8Array(8).fill(7));
});

Deno.test("decodeFixedString() stops at the first NUL", () => {
  const buf = new Uint8Array([0x61, 0x62, 0x63, 0, 0x64, 0x65, 0, 0]);
  assert.equal(decodeFixedString(buf, 0, 8), "abc");
  assert.equal(decodeFixedString(buf, 4, 4), "de");
  assert.equal(decodeFixedString(buf, 3, 5), "");
});

Deno.test("decodeFixedString() reads all size bytes of a field without NUL", () => {
  const buf = new Uint8Array(258).fill(0x7a);
  buf[0] = 0;
  buf[257] = 0;
  assert.equal(decodeFixedString(buf, 1, 256), "z".repeat(256));
});

Deno.test("decodeFixedString() decodes UTF-8, keeps a leading BOM and replaces bad bytes", () => {
  assert.equal(decodeFixedString(new Uint8Array([0xc3, 0xa9, 0]), 0, 3), "é");
  assert.equal(decodeFixedString(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), 0, 4), "\ufeffa");
  assert.equal(decodeFixedString(new Uint8Array([0x61, 0xff, 0]), 0, 3), "a\ufffd");
});

Deno.test("decodeFixedString() refuses a field past the end with SdError(INVALID_PARMS)", () => {
  assert.throws(() => decodeFixedString(new Uint8Array(10), 5, 6), invalidParms);
  assert.throws(() => decodeFixedString(new Uint8Array(10), -1, 2), invalidParms);
});

Deno.test("encodeFixedString() and decodeFixedString() round trip names up to size - 1 bytes", () => {
  for (const s of ["", "a", "test", "vm-disk-1", "日本語の名前", "x".repeat(255)]) {
    assert.equal(decodeFixedString(encodeFixedString(s, 256), 0, 256), s);
  }
});
