/**
 * Object ids (protocol sheet §7): composing and taking apart the 64-bit oid, object kinds and
 * sizes, the VDI id of a name and the attribute id (§8.2). Oids are bigint, vids and indexes
 * are numbers.
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  LEDGER_BIT,
  Res,
  SD_ATTR_OBJ_SIZE,
  SD_DEFAULT_BLOCK_SIZE_SHIFT,
  SD_INODE_DATA_INDEX_SIZE,
  SD_INODE_SIZE,
  SD_LEDGER_OBJ_SIZE,
  SD_MAX_VDI_ATTR_KEY_LEN,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
  SD_NR_VDIS,
  SD_VDI_MASK,
  VDI_ATTR_BIT,
  VDI_BIT,
  VDI_BTREE_BIT,
  VDI_SPACE_SHIFT,
  VMSTATE_BIT,
} from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { fnv1a64, FNV1A_64_INIT } from "./fnv.ts";

const U64_MAX = (1n << 64n) - 1n;
const KIND_BITS = VDI_BIT | VMSTATE_BIT | VDI_ATTR_BIT | VDI_BTREE_BIT | LEDGER_BIT;
const U32 = 0xffffffff;

function checkVid(vid: number): void {
  assert(Number.isInteger(vid) && vid >= 0 && vid < SD_NR_VDIS, `vid ${vid} out of range`);
}

function checkU32(v: number, what: string): void {
  assert(Number.isInteger(v) && v >= 0 && v <= U32, `${what} ${v} is not an unsigned 32-bit value`);
}

function checkOid(oid: bigint): void {
  assert(oid >= 0n && oid <= U64_MAX, "oid must be an unsigned 64-bit value");
}

/** The bytes v1.0 hashes for a name: UTF-8 of a string, or a wire buffer up to its first NUL. */
function nameBytes(name: string | Uint8Array): Uint8Array {
  if (typeof name === "string") return new TextEncoder().encode(name);
  const nul = name.indexOf(0);
  return nul < 0 ? name : name.subarray(0, nul);
}

/**
 * sd_hash_vdi: `fnv1a64(name bytes without NUL) & 0xFFFFFF`, the start of a name's slot run in
 * the VID bitmap ("test" → 0x7c2b25). This is the raw masked hash: it can be 0. VID allocation
 * and lookup replace 0 by 1 (vid 0 is never used, see vdi/vid_alloc.ts); the attribute oid uses
 * the raw value (§8.2 "vid = hash(name)"). A `Uint8Array` is a wire name field: hashed up to its
 * first NUL, byte for byte (names need not be valid UTF-8).
 */
export function vidOfName(name: string | Uint8Array): number {
  return Number(fnv1a64(nameBytes(name)) & BigInt(SD_NR_VDIS - 1));
}

/** Oid of a VDI's inode object: `1<<63 | vid<<32`. */
export function vidToVdiOid(vid: number): bigint {
  checkVid(vid);
  return VDI_BIT | (BigInt(vid) << VDI_SPACE_SHIFT);
}

/** Oid of data object `idx` of a VDI: `vid<<32 | idx`. */
export function vidToDataOid(vid: number, idx: number): bigint {
  checkVid(vid);
  checkU32(idx, "data index");
  return (BigInt(vid) << VDI_SPACE_SHIFT) | BigInt(idx);
}

/** Oid of VM state object `idx` of a VDI: `1<<62 | vid<<32 | idx`. */
export function vidToVmstateOid(vid: number, idx: number): bigint {
  checkVid(vid);
  checkU32(idx, "vmstate index");
  return VMSTATE_BIT | (BigInt(vid) << VDI_SPACE_SHIFT) | BigInt(idx);
}

/**
 * Oid of an attribute object: `vid<<32 | 1<<61 | attrId`. `nameHashVid` is `vidOfName(name)`,
 * not the VDI's real vid, because the real vid changes with every snapshot.
 */
export function vidToAttrOid(nameHashVid: number, attrId: number): bigint {
  checkVid(nameHashVid);
  checkU32(attrId, "attr id");
  return (BigInt(nameHashVid) << VDI_SPACE_SHIFT) | VDI_ATTR_BIT | BigInt(attrId);
}

/** Oid of B-tree index object `id` of a hyper volume: `vid<<32 | 1<<60 | id`. */
export function vidToBtreeOid(vid: number, id: number): bigint {
  checkVid(vid);
  checkU32(id, "btree id");
  return (BigInt(vid) << VDI_SPACE_SHIFT) | VDI_BTREE_BIT | BigInt(id);
}

/** Oid of the reference-count ledger of a data object: `oid | 1<<59`. */
export function dataOidToLedgerOid(oid: bigint): bigint {
  checkOid(oid);
  assert(isDataObj(oid), `oid ${oidToString(oid)} is not a data object`);
  return oid | LEDGER_BIT;
}

/** The vid in bits 32-55 of an oid. */
export function oidToVid(oid: bigint): number {
  checkOid(oid);
  return Number((oid & SD_VDI_MASK) >> VDI_SPACE_SHIFT);
}

/** The index in bits 0-31 of an oid (data index, vmstate index, attr id or btree id). */
export function dataOidToIdx(oid: bigint): number {
  checkOid(oid);
  return Number(oid & 0xffffffffn);
}

/** True for a data object: none of bits 63, 62, 61, 60, 59 set. */
export function isDataObj(oid: bigint): boolean {
  return (oid & KIND_BITS) === 0n;
}

/** True for an inode object (bit 63). */
export function isVdiObj(oid: bigint): boolean {
  return (oid & VDI_BIT) !== 0n;
}

/** True for a VM state object (bit 62). */
export function isVmstateObj(oid: bigint): boolean {
  return (oid & VMSTATE_BIT) !== 0n;
}

/** True for an attribute object (bit 61). */
export function isAttrObj(oid: bigint): boolean {
  return (oid & VDI_ATTR_BIT) !== 0n;
}

/** True for a hyper-volume B-tree index object (bit 60). */
export function isBtreeObj(oid: bigint): boolean {
  return (oid & VDI_BTREE_BIT) !== 0n;
}

/** True for a reference-count ledger object (bit 59). */
export function isLedgerObj(oid: bigint): boolean {
  return (oid & LEDGER_BIT) !== 0n;
}

/** The oid as v1.0 names object files and prints it: `%016lx`. */
export function oidToString(oid: bigint): string {
  checkOid(oid);
  return oid.toString(16).padStart(16, "0");
}

/**
 * Parses an oid written in hex: 1 to 16 hex digits, optionally prefixed by `0x`. Object file
 * names are exactly 16 digits; a store scanning its directory should check the length itself.
 * Throws SdError(INVALID_PARMS) on anything else.
 */
export function parseOid(hex: string): bigint {
  if (!/^(0[xX])?[0-9a-fA-F]{1,16}$/.test(hex)) {
    throw new SdError(Res.INVALID_PARMS, `invalid object id '${hex}'`);
  }
  return BigInt(hex.startsWith("0x") || hex.startsWith("0X") ? hex : "0x" + hex);
}

/**
 * Size in bytes of an object (v1.0's get_objsize): inode → SD_INODE_SIZE, attr →
 * SD_ATTR_OBJ_SIZE, B-tree → 4 MiB, ledger → 4 MiB, data and vmstate → `1 << blockSizeShift`.
 * The kind bits are tested in v1.0's order (inode, attr, btree, ledger). A block_size_shift of 0
 * is an inode written before per-VDI object sizes existed and means the default 22.
 * Throws SdError(INVALID_PARMS) for a shift above 31.
 */
export function objectSize(oid: bigint, blockSizeShift: number): number {
  if (isVdiObj(oid)) return SD_INODE_SIZE;
  if (isAttrObj(oid)) return SD_ATTR_OBJ_SIZE;
  if (isBtreeObj(oid)) return SD_INODE_DATA_INDEX_SIZE;
  if (isLedgerObj(oid)) return SD_LEDGER_OBJ_SIZE;
  if (!Number.isInteger(blockSizeShift) || blockSizeShift < 0 || blockSizeShift > 31) {
    throw new SdError(Res.INVALID_PARMS, `invalid block_size_shift ${blockSizeShift}`);
  }
  return 2 ** (blockSizeShift === 0 ? SD_DEFAULT_BLOCK_SIZE_SHIFT : blockSizeShift);
}

/** A fixed-length, NUL-padded field as v1.0 copies it with strncpy (no NUL when full). */
function fixedField(value: string | Uint8Array, len: number, what: string): Uint8Array {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  if (bytes.length > len) {
    throw new SdError(Res.INVALID_PARMS, `${what} is longer than ${len} bytes`);
  }
  const out = new Uint8Array(len);
  out.set(bytes);
  return out;
}

/**
 * The attribute id of (name, tag, snapId, key), §8.2: FNV-1a 64 over name[256] ‖ tag[256] ‖
 * snap_id (u32 LE) ‖ key[256], each field at its full NUL-padded length, masked to 32 bits. This
 * is the first probe; on collision v1.0 probes attrId + 1, … (the caller's loop). `Uint8Array`
 * arguments are wire fields, hashed as given and zero-padded. Throws SdError(INVALID_PARMS) for a
 * field longer than 256 bytes.
 */
export function attrId(
  name: string | Uint8Array,
  tag: string | Uint8Array,
  snapId: number,
  key: string | Uint8Array,
): number {
  checkU32(snapId, "snap id");
  const snap = new Uint8Array(4);
  new DataView(snap.buffer).setUint32(0, snapId, true);
  let h = fnv1a64(fixedField(name, SD_MAX_VDI_LEN, "name"), FNV1A_64_INIT);
  h = fnv1a64(fixedField(tag, SD_MAX_VDI_TAG_LEN, "tag"), h);
  h = fnv1a64(snap, h);
  h = fnv1a64(fixedField(key, SD_MAX_VDI_ATTR_KEY_LEN, "attribute key"), h);
  return Number(h & 0xffffffffn);
}
