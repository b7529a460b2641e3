/**
 * The data index of an inode: which vid owns each data object of a VDI. A plain inode keeps it in
 * `data_vdi_id[]` (u32 at 4664 + 4·idx); a hyper volume (store_policy 1) keeps a B-tree in the same
 * area, with leaf objects for big volumes. Reading goes through any object reader, so dog (which
 * prints v1.0's error lines) and the NBD export share it.
 *
 * @module
 */

import {
  MAX_DATA_OBJS,
  Res,
  SD_INODE_DATA_INDEX_SIZE,
  SD_INODE_HEADER_SIZE,
} from "../proto/constants.ts";
import { dataObjectCount, type InodeHeader } from "../proto/inode.ts";
import {
  decodeIndexNode,
  INDEX_HEADER_SIZE,
  INDEX_SIZE,
  INDIRECT_INDEX_SIZE,
} from "../proto/btree_index.ts";
import { SdError } from "../proto/sd_error.ts";
import { vidToVdiOid } from "../hash/oid.ts";

/** The owner vid of every data object of a VDI. */
export interface DataIndex {
  /** Number of data objects the VDI spans (ceil(size / object size), at most 2^20 if plain). */
  readonly count: number;
  /** The vid owning object `idx`, 0 when unallocated. */
  get(idx: number): number;
  /** Allocated objects as [idx, vid], by increasing idx. */
  allocated(): Iterable<[number, number]>;
}

/** A plain inode's data_vdi_id (or the prefix of it that the VDI spans). */
export class PlainDataIndex implements DataIndex {
  readonly count: number;
  /** Entries 0 … count-1 (mutable: writers update them as they allocate). */
  readonly entries: Uint32Array;

  constructor(entries: Uint32Array) {
    this.entries = entries;
    this.count = entries.length;
  }

  get(idx: number): number {
    return idx < this.entries.length ? this.entries[idx] : 0;
  }

  *allocated(): Iterable<[number, number]> {
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i] !== 0) yield [i, this.entries[i]];
    }
  }
}

/** A hyper volume's index, read from its B-tree (read-only). */
export class BtreeDataIndex implements DataIndex {
  readonly count: number;
  readonly #map: Map<number, number>;

  constructor(count: number, map: Map<number, number>) {
    this.count = count;
    this.#map = map;
  }

  get(idx: number): number {
    return this.#map.get(idx) ?? 0;
  }

  *allocated(): Iterable<[number, number]> {
    const keys = [...this.#map.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      const v = this.#map.get(k)!;
      if (v !== 0) yield [k, v];
    }
  }
}

/** Reads `length` bytes at `offset` of object `oid`; throws when it cannot. */
export type ObjectReader = (oid: bigint, offset: number, length: number) => Promise<Uint8Array>;

/** Bytes v1.0 reads first for every inode: the header and a B-tree index header. */
export const INODE_FIRST_READ = SD_INODE_HEADER_SIZE + INDEX_HEADER_SIZE;

/**
 * Number of data objects a VDI spans, as count_data_objs() computes it. A block_size_shift of 0
 * (an inode from before per-VDI object sizes) means the default 22.
 */
export function objectCount(h: InodeHeader): number {
  return dataObjectCount(h.vdiSize, h.blockSizeShift || 22);
}

/**
 * Reads the data index of an inode whose header is `h`; `head` holds the first
 * {@linkcode INODE_FIRST_READ} bytes of the inode (the B-tree root header of a hyper volume).
 * Errors of `read` propagate; a malformed B-tree leaf is SdError(EIO).
 */
export async function readDataIndex(
  h: InodeHeader,
  head: Uint8Array,
  read: ObjectReader,
): Promise<DataIndex> {
  const oid = vidToVdiOid(h.vdiId);
  const count = objectCount(h);
  if (h.storePolicy === 0) {
    const n = Math.min(count, MAX_DATA_OBJS);
    if (n === 0) return new PlainDataIndex(new Uint32Array(0));
    const data = await read(oid, SD_INODE_HEADER_SIZE, 4 * n);
    const entries = new Uint32Array(n);
    new Uint8Array(entries.buffer).set(data.subarray(0, 4 * n));
    return new PlainDataIndex(entries);
  }
  const map = new Map<number, number>();
  const rootHead = head.subarray(SD_INODE_HEADER_SIZE, INODE_FIRST_READ);
  const view = new DataView(rootHead.buffer, rootHead.byteOffset, INDEX_HEADER_SIZE);
  const depth = view.getUint16(2, true);
  const entries = view.getUint32(4, true);
  const entrySize = depth === 2 ? INDIRECT_INDEX_SIZE : INDEX_SIZE;
  const rootLen = Math.min(INDEX_HEADER_SIZE + entries * entrySize, SD_INODE_DATA_INDEX_SIZE);
  const root = await read(oid, SD_INODE_HEADER_SIZE, rootLen);
  const node = decodeIndexNode(root);
  for (const e of node.entries) {
    if ("vdiId" in e) {
      map.set(e.idx, e.vdiId);
      continue;
    }
    const leaf = await read(e.oid, 0, SD_INODE_DATA_INDEX_SIZE);
    for (const l of decodeIndexNode(leaf).entries) {
      if (!("vdiId" in l)) throw new SdError(Res.EIO, `Bad B-tree leaf ${e.oid.toString(16)}`);
      map.set(l.idx, l.vdiId);
    }
  }
  return new BtreeDataIndex(count, map);
}
