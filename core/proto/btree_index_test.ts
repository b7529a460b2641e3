import assert from "node:assert/strict";
import {
  BTREE_MAGIC,
  decodeIndex,
  decodeIndexHeader,
  decodeIndexNode,
  decodeIndirectIndex,
  encodeIndex,
  encodeIndexHeader,
  encodeIndexNode,
  encodeIndirectIndex,
  INDEX_HEADER_SIZE,
  INDEX_SIZE,
  INDIRECT_INDEX_SIZE,
  MAX_INDIRECT_ENTRIES,
  MAX_LEAF_ENTRIES,
} from "./btree_index.ts";
import { Res, SD_INODE_HEADER_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

Deno.test("btree_index sizes and capacities match v1.0 (524,287 leaf, 262,143 indirect)", () => {
  assert.equal(BTREE_MAGIC, 0x6274);
  assert.equal(INDEX_HEADER_SIZE, 8);
  assert.equal(INDEX_SIZE, 8);
  assert.equal(INDIRECT_INDEX_SIZE, 16);
  assert.equal(MAX_LEAF_ENTRIES, 524_287);
  assert.equal(MAX_INDIRECT_ENTRIES, 262_143);
});

Deno.test("encodeIndexHeader() writes magic u16 @0, depth u16 @2, entries u32 @4", () => {
  const b = encodeIndexHeader({ magic: BTREE_MAGIC, depth: 2, entries: 0x01020304 });
  assert.deepEqual([...b], [0x74, 0x62, 2, 0, 4, 3, 2, 1]);
  assert.deepEqual(decodeIndexHeader(b), { magic: 0x6274, depth: 2, entries: 0x01020304 });
});

Deno.test("encodeIndex() writes idx u32 @0 and vdi_id u32 @4", () => {
  const b = encodeIndex({ idx: 0x12345, vdiId: 0x7c2b25 });
  assert.deepEqual([...b], [0x45, 0x23, 0x01, 0, 0x25, 0x2b, 0x7c, 0]);
  assert.deepEqual(decodeIndex(b), { idx: 0x12345, vdiId: 0x7c2b25 });
});

Deno.test("encodeIndirectIndex() writes idx u32 @0, a zero pad and oid u64 @8", () => {
  const out = new Uint8Array(16).fill(0xff);
  encodeIndirectIndex({ idx: 7, oid: 0x107c2b2500000003n }, out);
  assert.deepEqual([...out], [7, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x10]);
  assert.deepEqual(decodeIndirectIndex(out), { idx: 7, oid: 0x107c2b2500000003n });
});

Deno.test("decodeIndexNode() reads a depth-1 root from an inode's data_vdi_id area at 4664", () => {
  const inode = new Uint8Array(SD_INODE_HEADER_SIZE + 64);
  // deno-fmt-ignore
  inode.set([
    0x74, 0x62, 1, 0, 2, 0, 0, 0, // header: magic, depth 1, 2 entries
    0, 0, 0, 0, 0x25, 0x2b, 0x7c, 0, // {idx 0, vdi 7c2b25}
    9, 0, 0, 0, 0x26, 0x2b, 0x7c, 0, // {idx 9, vdi 7c2b26}
  ], SD_INODE_HEADER_SIZE);
  const node = decodeIndexNode(inode, SD_INODE_HEADER_SIZE);
  assert.deepEqual(node, {
    header: { magic: BTREE_MAGIC, depth: 1, entries: 2 },
    entries: [{ idx: 0, vdiId: 0x7c2b25 }, { idx: 9, vdiId: 0x7c2b26 }],
  });
});

Deno.test("decodeIndexNode() reads a depth-2 root of indirect entries", () => {
  // deno-fmt-ignore
  const b = new Uint8Array([
    0x74, 0x62, 2, 0, 1, 0, 0, 0,
    0x00, 0x00, 0x08, 0x00, 0, 0, 0, 0, 1, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x10,
  ]);
  assert.deepEqual(decodeIndexNode(b), {
    header: { magic: BTREE_MAGIC, depth: 2, entries: 1 },
    entries: [{ idx: 0x80000, oid: 0x107c2b2500000001n }],
  });
});

Deno.test("encodeIndexNode() and decodeIndexNode() round trip leaf and indirect nodes", () => {
  const leaf = [{ idx: 1, vdiId: 2 }, { idx: 3, vdiId: 4 }, { idx: 0xffffffff, vdiId: 0xffffff }];
  const lb = encodeIndexNode({ depth: 1, entries: leaf });
  assert.equal(lb.length, 8 + 3 * 8);
  assert.deepEqual(decodeIndexNode(lb).entries, leaf);
  const ind = [{ idx: 0, oid: 0x1000000100000001n }, { idx: 524_287, oid: 0x1000000100000002n }];
  const ib = encodeIndexNode({ depth: 2, entries: ind });
  assert.equal(ib.length, 8 + 2 * 16);
  assert.deepEqual(decodeIndexNode(ib).entries, ind);
  assert.deepEqual(decodeIndexNode(ib).header, { magic: BTREE_MAGIC, depth: 2, entries: 2 });
});

Deno.test("encodeIndexNode() writes into a given buffer at an offset", () => {
  const out = new Uint8Array(40).fill(0xee);
  encodeIndexNode({ depth: 1, entries: [{ idx: 5, vdiId: 6 }] }, out, 4);
  assert.deepEqual([...out.subarray(0, 24)], [
    0xee,
    0xee,
    0xee,
    0xee,
    0x74,
    0x62,
    1,
    0,
    1,
    0,
    0,
    0,
    5,
    0,
    0,
    0,
    6,
    0,
    0,
    0,
    0xee,
    0xee,
    0xee,
    0xee,
  ]);
});

Deno.test("decodeIndexNode() refuses a bad magic, a bad depth, too many or truncated entries", () => {
  const good = encodeIndexNode({ depth: 1, entries: [{ idx: 1, vdiId: 1 }] });
  const badMagic = good.slice();
  badMagic[0] = 0;
  assert.throws(() => decodeIndexNode(badMagic), invalidParms);
  const badDepth = good.slice();
  badDepth[2] = 3;
  assert.throws(() => decodeIndexNode(badDepth), invalidParms);
  assert.throws(() => decodeIndexNode(good.subarray(0, 12)), invalidParms);
  const tooMany = encodeIndexHeader({ magic: BTREE_MAGIC, depth: 2, entries: 262_144 });
  assert.throws(() => decodeIndexNode(tooMany), invalidParms);
  assert.throws(() => decodeIndexHeader(new Uint8Array(7)), invalidParms);
  assert.throws(() => decodeIndex(new Uint8Array(8), 1), invalidParms);
  assert.throws(() => decodeIndirectIndex(new Uint8Array(15)), invalidParms);
});

Deno.test("decodeIndexNode() reads an empty node", () => {
  const b = encodeIndexNode({ depth: 1, entries: [] });
  assert.deepEqual([...b], [0x74, 0x62, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeIndexNode(b).entries, []);
});
