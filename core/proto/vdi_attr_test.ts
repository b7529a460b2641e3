import assert from "node:assert/strict";
import { Res, SD_ATTR_OBJ_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { decodeVdiAttr, encodeVdiAttr, VDI_ATTR_HEADER_SIZE, type VdiAttr } from "./vdi_attr.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

const ATTR: VdiAttr = {
  name: "test",
  tag: "snap1",
  ctime: 0x655f1a2b1dcd6500n,
  snapId: 2,
  valueLen: 3,
  key: "owner",
  value: new Uint8Array([0x62, 0x6f, 0x62]),
};

/** ATTR's header bytes, one spec offset at a time. */
function headerBytes(): Uint8Array {
  const b = new Uint8Array(784);
  b.set([0x74, 0x65, 0x73, 0x74], 0); // name
  b.set([0x73, 0x6e, 0x61, 0x70, 0x31], 256); // tag
  b.set([0x00, 0x65, 0xcd, 0x1d, 0x2b, 0x1a, 0x5f, 0x65], 512); // ctime
  b.set([2, 0, 0, 0], 520); // snap_id
  b.set([3, 0, 0, 0], 524); // value_len
  b.set([0x6f, 0x77, 0x6e, 0x65, 0x72], 528); // key "owner"
  return b;
}

Deno.test("encodeVdiAttr() writes the 66,320-byte attribute with every field at its offset", () => {
  const b = encodeVdiAttr(ATTR);
  assert.equal(b.length, 66_320);
  assert.equal(SD_ATTR_OBJ_SIZE, 66_320);
  assert.equal(VDI_ATTR_HEADER_SIZE, 784);
  assert.deepEqual(b.subarray(0, 784), headerBytes());
  assert.deepEqual([...b.subarray(784, 788)], [0x62, 0x6f, 0x62, 0]);
  assert.ok(b.subarray(787).every((x) => x === 0));
});

Deno.test("encodeVdiAttr(a, true) writes only the 784-byte header", () => {
  assert.deepEqual(encodeVdiAttr(ATTR, true), headerBytes());
});

Deno.test("decodeVdiAttr() reads a hand-built full attribute", () => {
  const b = new Uint8Array(66_320);
  b.set(headerBytes());
  b.set([0x62, 0x6f, 0x62], 784);
  assert.deepEqual(decodeVdiAttr(b), ATTR);
});

Deno.test("decodeVdiAttr() reads a header-only payload with an empty value, keeping value_len", () => {
  assert.deepEqual(decodeVdiAttr(headerBytes()), { ...ATTR, value: new Uint8Array(0) });
});

Deno.test("decodeVdiAttr() reads a payload of header + exactly value_len bytes", () => {
  const b = new Uint8Array(787);
  b.set(headerBytes());
  b.set([0x62, 0x6f, 0x62], 784);
  assert.deepEqual(decodeVdiAttr(b), ATTR);
});

Deno.test("decodeVdiAttr() round trips a 65,536-byte value", () => {
  const value = Uint8Array.from({ length: 65_536 }, (_, i) => i & 0xff);
  const a = { ...ATTR, valueLen: 65_536, value };
  assert.deepEqual(decodeVdiAttr(encodeVdiAttr(a)), a);
});

Deno.test("decodeVdiAttr() refuses short, oversized and inconsistent payloads", () => {
  assert.throws(() => decodeVdiAttr(new Uint8Array(783)), invalidParms);
  assert.throws(() => decodeVdiAttr(new Uint8Array(66_321)), invalidParms);
  const short = new Uint8Array(786); // value_len 3 but 2 value bytes
  short.set(headerBytes());
  assert.throws(() => decodeVdiAttr(short), invalidParms);
  const huge = encodeVdiAttr(ATTR);
  huge.set([0x01, 0x00, 0x01, 0x00], 524); // value_len 65,537
  assert.throws(() => decodeVdiAttr(huge), invalidParms);
});

Deno.test("encodeVdiAttr() refuses long names, tags, keys and values", () => {
  assert.throws(() => encodeVdiAttr({ ...ATTR, name: "n".repeat(256) }), invalidParms);
  assert.throws(() => encodeVdiAttr({ ...ATTR, tag: "t".repeat(256) }), invalidParms);
  assert.throws(() => encodeVdiAttr({ ...ATTR, key: "k".repeat(256) }), invalidParms);
  assert.throws(() => encodeVdiAttr({ ...ATTR, value: new Uint8Array(65_537) }), invalidParms);
  assert.throws(() => encodeVdiAttr({ ...ATTR, valueLen: 65_537 }), invalidParms);
});

Deno.test("decodeVdiAttr() returns a value that does not alias the input", () => {
  const b = encodeVdiAttr(ATTR);
  const a = decodeVdiAttr(b);
  b[784] = 0;
  assert.equal(a.value[0], 0x62);
});
