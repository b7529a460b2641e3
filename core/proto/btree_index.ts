/**
 * Nodes of a hyper volume's B-tree (store_policy 1). The root lives in the inode's data_vdi_id
 * area (offset 4,664), the other nodes in btree objects (oid bit 60, 4 MiB) at offset 0.
 *
 * A node is an 8-byte `sd_index_header` {magic u16 = 0x6274, depth u16, entries u32} followed by
 * `entries` records, sorted by idx:
 * - depth 1 (leaf): `sd_index` {idx u32, vdi_id u32}, 8 bytes each;
 * - depth 2 (the root of a two-level tree): `sd_indirect_idx` {idx u32, pad u32, oid u64},
 *   16 bytes each, each pointing at a leaf btree object.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_INODE_DATA_INDEX_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";

/** Magic of every B-tree node header ("bt"). */
export const BTREE_MAGIC = 0x6274;
/** Size of `sd_index_header`. */
export const INDEX_HEADER_SIZE = 8;
/** Size of `sd_index`. */
export const INDEX_SIZE = 8;
/** Size of `sd_indirect_idx`. */
export const INDIRECT_INDEX_SIZE = 16;
/** Entries that fit one 4 MiB leaf node: 524,287. */
export const MAX_LEAF_ENTRIES = Math.floor(
  (SD_INODE_DATA_INDEX_SIZE - INDEX_HEADER_SIZE) / INDEX_SIZE,
);
/** Entries that fit one 4 MiB indirect node: 262,143. */
export const MAX_INDIRECT_ENTRIES = Math.floor(
  (SD_INODE_DATA_INDEX_SIZE - INDEX_HEADER_SIZE) / INDIRECT_INDEX_SIZE,
);

/** `sd_index_header`. */
export interface IndexHeader {
  magic: number;
  /** 1 = the node holds leaf entries, 2 = it holds indirect entries. */
  depth: number;
  entries: number;
}

/** `sd_index`: data index → owning vid. */
export interface IndexEntry {
  idx: number;
  vdiId: number;
}

/** `sd_indirect_idx`: first data index of a leaf → its btree object. */
export interface IndirectIndexEntry {
  idx: number;
  oid: bigint;
}

/** A decoded node: its header and its entries (leaf or indirect, by depth). */
export type IndexNode =
  | { header: IndexHeader & { depth: 1 }; entries: IndexEntry[] }
  | { header: IndexHeader & { depth: 2 }; entries: IndirectIndexEntry[] };

function view(buf: Uint8Array, off: number, size: number, what: string): DataView {
  if (!(off >= 0 && off + size <= buf.length)) {
    throw new SdError(
      Res.INVALID_PARMS,
      `${what} at ${off} is past the end of ${buf.length} bytes`,
    );
  }
  return new DataView(buf.buffer, buf.byteOffset + off, size);
}

/** Reads an `sd_index_header` at `off`. SdError(INVALID_PARMS) when truncated. */
export function decodeIndexHeader(buf: Uint8Array, off = 0): IndexHeader {
  const v = view(buf, off, INDEX_HEADER_SIZE, "sd_index_header");
  return {
    magic: v.getUint16(0, true),
    depth: v.getUint16(2, true),
    entries: v.getUint32(4, true),
  };
}

/** Writes an `sd_index_header` at `off` of `out` and returns `out`. */
export function encodeIndexHeader(
  h: IndexHeader,
  out: Uint8Array = new Uint8Array(INDEX_HEADER_SIZE),
  off = 0,
): Uint8Array {
  assert(off >= 0 && off + INDEX_HEADER_SIZE <= out.length, "sd_index_header does not fit");
  const v = new DataView(out.buffer, out.byteOffset + off, INDEX_HEADER_SIZE);
  v.setUint16(0, h.magic, true);
  v.setUint16(2, h.depth, true);
  v.setUint32(4, h.entries >>> 0, true);
  return out;
}

/** Reads an `sd_index` at `off`. SdError(INVALID_PARMS) when truncated. */
export function decodeIndex(buf: Uint8Array, off = 0): IndexEntry {
  const v = view(buf, off, INDEX_SIZE, "sd_index");
  return { idx: v.getUint32(0, true), vdiId: v.getUint32(4, true) };
}

/** Writes an `sd_index` at `off` of `out` and returns `out`. */
export function encodeIndex(
  e: IndexEntry,
  out: Uint8Array = new Uint8Array(INDEX_SIZE),
  off = 0,
): Uint8Array {
  assert(off >= 0 && off + INDEX_SIZE <= out.length, "sd_index does not fit");
  const v = new DataView(out.buffer, out.byteOffset + off, INDEX_SIZE);
  v.setUint32(0, e.idx >>> 0, true);
  v.setUint32(4, e.vdiId >>> 0, true);
  return out;
}

/** Reads an `sd_indirect_idx` at `off`. SdError(INVALID_PARMS) when truncated. */
export function decodeIndirectIndex(buf: Uint8Array, off = 0): IndirectIndexEntry {
  const v = view(buf, off, INDIRECT_INDEX_SIZE, "sd_indirect_idx");
  return { idx: v.getUint32(0, true), oid: v.getBigUint64(8, true) };
}

/** Writes an `sd_indirect_idx` at `off` of `out` (pad zeroed) and returns `out`. */
export function encodeIndirectIndex(
  e: IndirectIndexEntry,
  out: Uint8Array = new Uint8Array(INDIRECT_INDEX_SIZE),
  off = 0,
): Uint8Array {
  assert(off >= 0 && off + INDIRECT_INDEX_SIZE <= out.length, "sd_indirect_idx does not fit");
  const v = new DataView(out.buffer, out.byteOffset + off, INDIRECT_INDEX_SIZE);
  v.setUint32(0, e.idx >>> 0, true);
  v.setUint32(4, 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, e.oid), true);
  return out;
}

/**
 * Reads a whole node at `off` (0 for a btree object, 4,664 for an inode's root).
 * SdError(INVALID_PARMS) on a bad magic, a depth other than 1 or 2, more entries than a node
 * holds, or entries past the end of `buf`.
 */
export function decodeIndexNode(buf: Uint8Array, off = 0): IndexNode {
  const header = decodeIndexHeader(buf, off);
  if (header.magic !== BTREE_MAGIC) {
    throw new SdError(Res.INVALID_PARMS, `bad B-tree magic 0x${header.magic.toString(16)}`);
  }
  const first = off + INDEX_HEADER_SIZE;
  if (header.depth === 1) {
    if (header.entries > MAX_LEAF_ENTRIES) {
      throw new SdError(Res.INVALID_PARMS, `B-tree leaf with ${header.entries} entries`);
    }
    const entries: IndexEntry[] = [];
    for (let i = 0; i < header.entries; i++) entries.push(decodeIndex(buf, first + i * INDEX_SIZE));
    return { header: { ...header, depth: 1 }, entries };
  }
  if (header.depth === 2) {
    if (header.entries > MAX_INDIRECT_ENTRIES) {
      throw new SdError(Res.INVALID_PARMS, `B-tree indirect node with ${header.entries} entries`);
    }
    const entries: IndirectIndexEntry[] = [];
    for (let i = 0; i < header.entries; i++) {
      entries.push(decodeIndirectIndex(buf, first + i * INDIRECT_INDEX_SIZE));
    }
    return { header: { ...header, depth: 2 }, entries };
  }
  throw new SdError(Res.INVALID_PARMS, `bad B-tree depth ${header.depth}`);
}

/**
 * Writes a node (header with magic, depth and entry count, then the entries) at `off` of `out`
 * and returns `out`; without `out`, returns just the node's bytes. Leaf entries give depth 1,
 * indirect entries depth 2.
 */
export function encodeIndexNode(
  node: { depth: 1; entries: readonly IndexEntry[] } | {
    depth: 2;
    entries: readonly IndirectIndexEntry[];
  },
  out?: Uint8Array,
  off = 0,
): Uint8Array {
  const size = node.depth === 1 ? INDEX_SIZE : INDIRECT_INDEX_SIZE;
  const max = node.depth === 1 ? MAX_LEAF_ENTRIES : MAX_INDIRECT_ENTRIES;
  assert(node.entries.length <= max, `${node.entries.length} entries do not fit a B-tree node`);
  const buf = out ?? new Uint8Array(INDEX_HEADER_SIZE + node.entries.length * size);
  assert(off >= 0 && off + INDEX_HEADER_SIZE + node.entries.length * size <= buf.length);
  encodeIndexHeader(
    { magic: BTREE_MAGIC, depth: node.depth, entries: node.entries.length },
    buf,
    off,
  );
  const first = off + INDEX_HEADER_SIZE;
  if (node.depth === 1) {
    node.entries.forEach((e, i) => encodeIndex(e, buf, first + i * INDEX_SIZE));
  } else {
    node.entries.forEach((e, i) => encodeIndirectIndex(e, buf, first + i * INDIRECT_INDEX_SIZE));
  }
  return buf;
}
