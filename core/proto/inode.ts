/**
 * The inode object `sd_inode` (12,587,576 bytes): a 4,664-byte header, `data_vdi_id[2^20]` (u32,
 * the vid owning each data object) at 4,664 and `gref[2^20]` ({generation i32, count i32}) at
 * 4,198,968. QEMU and tgt read and write the 0.7/0.8 prefix (header + data_vdi_id, 4,198,968 B),
 * so every codec here works on prefixes and ranges as well as on the whole object.
 *
 * Header layout (all LE): name[256] @0, tag[256] @256, create_time u64 @512, snap_ctime u64 @520,
 * vm_clock_nsec u64 @528, vdi_size u64 @536, vm_state_size u64 @544, copy_policy u8 @552,
 * store_policy u8 @553, nr_copies u8 @554, block_size_shift u8 @555, snap_id u32 @556,
 * vdi_id u32 @560, parent_vdi_id u32 @564, btree_counter u32 @568, unused until 4,664.
 *
 * Names and tags: v1.0 writes them with pstrcpy, so each 256-byte field holds at most 255 bytes
 * and a NUL. Encoding rejects longer text with SdError(INVALID_PARMS); decoding tolerates a field
 * without NUL and reads all 256 bytes (see strings.ts).
 *
 * The unused header bytes 572-4663 (child_vdi_id[] of ≤ 0.8) are not modelled: they decode as
 * nothing, encode as zeros, and writes to them are dropped.
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  MAX_DATA_OBJS,
  Res,
  SD_INODE_GREF_OFFSET,
  SD_INODE_HEADER_SIZE,
  SD_INODE_SIZE,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
} from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, encodeFixedString } from "./strings.ts";

/** The fields of the inode header. */
export interface InodeHeader {
  /** VDI name (at most 255 UTF-8 bytes). */
  name: string;
  /** Snapshot tag (at most 255 UTF-8 bytes). */
  tag: string;
  /** `(sec << 32) | nsec` of creation. */
  createTime: bigint;
  /** Non-zero: this VDI is a snapshot (read-only). */
  snapCtime: bigint;
  vmClockNsec: bigint;
  /** Bytes. */
  vdiSize: bigint;
  vmStateSize: bigint;
  /** 0 = replication, else the erasure-code byte. */
  copyPolicy: number;
  /** 0 = plain, 1 = hyper volume (B-tree in the data_vdi_id area). */
  storePolicy: number;
  nrCopies: number;
  blockSizeShift: number;
  snapId: number;
  vdiId: number;
  parentVdiId: number;
  btreeCounter: number;
}

/** Bytes of the header that hold fields (name … btree_counter). */
const HEADER_FIELDS_SIZE = 572;
/** Bytes of the header without btree_counter: what v1.0's VDI lookup reads. */
const HEADER_LOOKUP_SIZE = 568;

/** A header with every field zero or empty. */
export function emptyInodeHeader(): InodeHeader {
  return {
    name: "",
    tag: "",
    createTime: 0n,
    snapCtime: 0n,
    vmClockNsec: 0n,
    vdiSize: 0n,
    vmStateSize: 0n,
    copyPolicy: 0,
    storePolicy: 0,
    nrCopies: 0,
    blockSizeShift: 0,
    snapId: 0,
    vdiId: 0,
    parentVdiId: 0,
    btreeCounter: 0,
  };
}

/**
 * Reads the header fields from the start of `buf`. Needs at least 568 bytes (what v1.0's lookup
 * reads); btree_counter (568-571) is 0 when `buf` stops before it. SdError(INVALID_PARMS) when
 * shorter.
 */
export function decodeInodeHeader(buf: Uint8Array): InodeHeader {
  if (buf.length < HEADER_LOOKUP_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `inode header needs ${HEADER_LOOKUP_SIZE} bytes, got ${buf.length}`,
    );
  }
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  return {
    name: decodeFixedString(buf, 0, SD_MAX_VDI_LEN),
    tag: decodeFixedString(buf, 256, SD_MAX_VDI_TAG_LEN),
    createTime: v.getBigUint64(512, true),
    snapCtime: v.getBigUint64(520, true),
    vmClockNsec: v.getBigUint64(528, true),
    vdiSize: v.getBigUint64(536, true),
    vmStateSize: v.getBigUint64(544, true),
    copyPolicy: v.getUint8(552),
    storePolicy: v.getUint8(553),
    nrCopies: v.getUint8(554),
    blockSizeShift: v.getUint8(555),
    snapId: v.getUint32(556, true),
    vdiId: v.getUint32(560, true),
    parentVdiId: v.getUint32(564, true),
    btreeCounter: buf.length >= HEADER_FIELDS_SIZE ? v.getUint32(568, true) : 0,
  };
}

function checkUint(field: string, v: number, bits: 8 | 32): void {
  assert(
    Number.isInteger(v) && v >= 0 && v < 2 ** bits,
    `inode ${field} ${v} is not a u${bits}`,
  );
}

function checkU64(field: string, v: bigint): void {
  assert(v >= 0n && v < 1n << 64n, `inode ${field} ${v} is not a u64`);
}

/**
 * The 4,664 header bytes of `h` (unused bytes zero). With `out` (at least 4,664 bytes) they are
 * written at its offset 0 and a view of them is returned. SdError(INVALID_PARMS) when the name or
 * tag is longer than 255 UTF-8 bytes (then `out` is untouched); out-of-range numbers are
 * programmer errors (assertion).
 */
export function encodeInodeHeader(h: InodeHeader, out?: Uint8Array): Uint8Array {
  const name = encodeFixedString(h.name, SD_MAX_VDI_LEN);
  const tag = encodeFixedString(h.tag, SD_MAX_VDI_TAG_LEN);
  for (const f of ["createTime", "snapCtime", "vmClockNsec", "vdiSize", "vmStateSize"] as const) {
    checkU64(f, h[f]);
  }
  for (const f of ["copyPolicy", "storePolicy", "nrCopies", "blockSizeShift"] as const) {
    checkUint(f, h[f], 8);
  }
  for (const f of ["snapId", "vdiId", "parentVdiId", "btreeCounter"] as const) {
    checkUint(f, h[f], 32);
  }
  const buf = out ?? new Uint8Array(SD_INODE_HEADER_SIZE);
  assert(buf.length >= SD_INODE_HEADER_SIZE, "inode header output needs 4664 bytes");
  buf.fill(0, 0, SD_INODE_HEADER_SIZE);
  buf.set(name, 0);
  buf.set(tag, 256);
  const v = new DataView(buf.buffer, buf.byteOffset, SD_INODE_HEADER_SIZE);
  v.setBigUint64(512, h.createTime, true);
  v.setBigUint64(520, h.snapCtime, true);
  v.setBigUint64(528, h.vmClockNsec, true);
  v.setBigUint64(536, h.vdiSize, true);
  v.setBigUint64(544, h.vmStateSize, true);
  v.setUint8(552, h.copyPolicy);
  v.setUint8(553, h.storePolicy);
  v.setUint8(554, h.nrCopies);
  v.setUint8(555, h.blockSizeShift);
  v.setUint32(556, h.snapId, true);
  v.setUint32(560, h.vdiId, true);
  v.setUint32(564, h.parentVdiId, true);
  v.setUint32(568, h.btreeCounter, true);
  return buf.subarray(0, SD_INODE_HEADER_SIZE);
}

/** True on little-endian hosts, where a typed array's bytes are already the wire bytes. */
function hostIsLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** The bytes of a typed array, which on an LE host are its LE encoding. */
function bytesOf(a: Uint32Array | Int32Array): Uint8Array {
  assert(hostIsLittleEndian(), "the inode codec needs a little-endian host");
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A part of the encoded inode: [start, end) and the bytes behind it. */
interface Part {
  start: number;
  end: number;
  bytes: () => Uint8Array;
}

function checkRange(offset: number, length: number): void {
  assert(
    Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0,
    `bad inode range ${offset}+${length}`,
  );
  if (offset + length > SD_INODE_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `inode range [${offset}, ${offset + length}) is past its end ${SD_INODE_SIZE}`,
    );
  }
}

/** An inode object: the header fields, data_vdi_id[2^20] and gref[2^20]. */
export class Inode {
  /** The header fields. */
  header: InodeHeader;
  /** data_vdi_id[2^20]: the vid owning each data object, 0 = unallocated. */
  dataVdiId: Uint32Array;
  /** gref[2^20] flattened: [generation, count] of index i at 2i and 2i+1. */
  gref: Int32Array;

  /** An inode over the given parts (fresh zeroed arrays when omitted). */
  constructor(
    header: InodeHeader = emptyInodeHeader(),
    dataVdiId: Uint32Array = new Uint32Array(MAX_DATA_OBJS),
    gref: Int32Array = new Int32Array(2 * MAX_DATA_OBJS),
  ) {
    assert(dataVdiId.length === MAX_DATA_OBJS, "data_vdi_id has 2^20 entries");
    assert(gref.length === 2 * MAX_DATA_OBJS, "gref has 2^20 pairs");
    this.header = header;
    this.dataVdiId = dataVdiId;
    this.gref = gref;
  }

  /** An inode with every byte zero. */
  static empty(): Inode {
    return new Inode();
  }

  /**
   * Reads an inode from any prefix of its encoding of at least 4,664 bytes: the header alone,
   * the 0.7/0.8 layout (4,198,968), 4,198,976, the full 12,587,576 bytes, or anything between
   * (a partial entry keeps the bytes present). What is missing is zero. SdError(INVALID_PARMS)
   * when shorter than the header or longer than the object.
   */
  static decode(buf: Uint8Array): Inode {
    if (buf.length < SD_INODE_HEADER_SIZE || buf.length > SD_INODE_SIZE) {
      throw new SdError(
        Res.INVALID_PARMS,
        `an inode has ${SD_INODE_HEADER_SIZE} to ${SD_INODE_SIZE} bytes, got ${buf.length}`,
      );
    }
    const inode = new Inode(decodeInodeHeader(buf));
    const dataEnd = Math.min(buf.length, SD_INODE_GREF_OFFSET);
    bytesOf(inode.dataVdiId).set(buf.subarray(SD_INODE_HEADER_SIZE, dataEnd));
    if (buf.length > SD_INODE_GREF_OFFSET) {
      bytesOf(inode.gref).set(buf.subarray(SD_INODE_GREF_OFFSET));
    }
    return inode;
  }

  /** The full 12,587,576-byte object. SdError(INVALID_PARMS) on a name or tag too long. */
  encode(): Uint8Array {
    return this.readRange(0, SD_INODE_SIZE);
  }

  private parts(): Part[] {
    return [
      { start: 0, end: SD_INODE_HEADER_SIZE, bytes: () => encodeInodeHeader(this.header) },
      {
        start: SD_INODE_HEADER_SIZE,
        end: SD_INODE_GREF_OFFSET,
        bytes: () => bytesOf(this.dataVdiId),
      },
      { start: SD_INODE_GREF_OFFSET, end: SD_INODE_SIZE, bytes: () => bytesOf(this.gref) },
    ];
  }

  /**
   * Bytes [offset, offset + length) of the encoded object, built from only the parts the range
   * touches. SdError(INVALID_PARMS) when the range goes past 12,587,576.
   */
  readRange(offset: number, length: number): Uint8Array {
    checkRange(offset, length);
    const out = new Uint8Array(length);
    const end = offset + length;
    for (const p of this.parts()) {
      const a = Math.max(offset, p.start);
      const b = Math.min(end, p.end);
      if (a < b) out.set(p.bytes().subarray(a - p.start, b - p.start), a - offset);
    }
    return out;
  }

  /**
   * Applies `data` at `offset` of the encoded object, as a WRITE_OBJ to the inode does. Header
   * bytes are re-read into `header` (updated in place); bytes 572-4663 are dropped.
   * SdError(INVALID_PARMS), with nothing changed, when the range goes past the end or when the
   * write leaves a name or tag field without a NUL terminator.
   */
  writeRange(offset: number, data: Uint8Array): void {
    checkRange(offset, data.length);
    const end = offset + data.length;
    let header: InodeHeader | undefined;
    if (offset < SD_INODE_HEADER_SIZE) {
      const bytes = encodeInodeHeader(this.header);
      bytes.set(data.subarray(0, Math.min(end, SD_INODE_HEADER_SIZE) - offset), offset);
      header = decodeInodeHeader(bytes);
      encodeInodeHeader(header); // refuses 256-byte names before anything changes
    }
    for (const p of this.parts().slice(1)) {
      const a = Math.max(offset, p.start);
      const b = Math.min(end, p.end);
      if (a < b) p.bytes().set(data.subarray(a - offset, b - offset), a - p.start);
    }
    if (header) Object.assign(this.header, header);
  }
}

/** Number of data objects of a VDI: ceil(vdiSize / 2^blockSizeShift). */
export function dataObjectCount(vdiSize: bigint, blockSizeShift: number): number {
  assert(vdiSize >= 0n, `negative VDI size ${vdiSize}`);
  assert(
    Number.isInteger(blockSizeShift) && blockSizeShift >= 0 && blockSizeShift < 64,
    `bad block_size_shift ${blockSizeShift}`,
  );
  const block = 1n << BigInt(blockSizeShift);
  const count = (vdiSize + block - 1n) / block;
  assert(count <= BigInt(Number.MAX_SAFE_INTEGER), `${count} data objects overflow a number`);
  return Number(count);
}

/** True when the inode is a snapshot (snap_ctime is set). */
export function isSnapshot(h: InodeHeader): boolean {
  return h.snapCtime !== 0n;
}
