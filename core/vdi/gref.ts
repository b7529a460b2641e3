/**
 * Generational reference counting (protocol sheet §8.3), as pure arithmetic on the byte ranges a
 * sheep reads and writes: the gref array of an inode and the ledger object of a data object.
 *
 * Every non-zero data_vdi_id[i] of an inode is one reference to the data object
 * `(data_vdi_id[i], i)`, described by gref[i] = {generation, count}:
 *
 * - the reference of the VDI that created the object is {0, 0} and the object's ledger starts as
 *   [1] (one reference of generation 0), materialized only when the first release arrives;
 * - copying a reference (snapshot, clone, rebase) increments the source's count and gives the
 *   copy {source.generation + 1, 0};
 * - releasing a reference {g, c} (its entry is replaced or zeroed) does ledger[g] -= 1 and
 *   ledger[g + 1] += c, in u32 arithmetic (an entry may go "negative", e.g. 0xFFFFFFFF, when a
 *   copy is released before its source);
 * - the object is unreferenced exactly when every ledger entry is zero.
 *
 * Releases commute, so the replicas of a ledger may apply them in any order.
 *
 * @module
 */

import {
  Res,
  SD_INODE_GREF_OFFSET,
  SD_INODE_HEADER_SIZE,
  SD_LEDGER_OBJ_SIZE,
} from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

/** Bytes of one gref entry: generation i32, count i32. */
export const GREF_SIZE = 8;
/** Generations a ledger holds (u32 each). */
export const LEDGER_WORDS = SD_LEDGER_OBJ_SIZE / 4;

/** One reference's generation and count (u32 as stored; v1.0 declares them i32). */
export interface GenRef {
  generation: number;
  count: number;
}

/** A reference released by an inode write: ledger(vid, idx) gets {generation, count}. */
export interface Release extends GenRef {
  vid: number;
  idx: number;
}

/** Byte offset of gref[idx] in an inode object. */
export function grefOffset(idx: number): number {
  return SD_INODE_GREF_OFFSET + GREF_SIZE * idx;
}

/** Byte offset of data_vdi_id[idx] in an inode object. */
export function indexOffset(idx: number): number {
  return SD_INODE_HEADER_SIZE + 4 * idx;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The u32 entries of a data_vdi_id byte range. */
export function decodeIndex(bytes: Uint8Array): Uint32Array {
  const n = Math.floor(bytes.length / 4);
  const out = new Uint32Array(n);
  const v = view(bytes);
  for (let i = 0; i < n; i++) out[i] = v.getUint32(4 * i, true);
  return out;
}

/** gref entry `i` of a gref byte range. */
export function getGref(grefs: Uint8Array, i: number): GenRef {
  const v = view(grefs);
  return {
    generation: v.getUint32(GREF_SIZE * i, true),
    count: v.getUint32(GREF_SIZE * i + 4, true),
  };
}

/** Sets gref entry `i` of a gref byte range. */
export function setGref(grefs: Uint8Array, i: number, g: GenRef): void {
  const v = view(grefs);
  v.setUint32(GREF_SIZE * i, g.generation >>> 0, true);
  v.setUint32(GREF_SIZE * i + 4, g.count >>> 0, true);
}

/**
 * A snapshot, clone or rebase copies the references of `index` (the source's data_vdi_id, from
 * index 0) whose grefs are `sourceGrefs`. Returns the source's new grefs (count + 1 for every
 * allocated entry) and the copy's grefs ({generation + 1, 0} for every allocated entry, zeros
 * elsewhere). The inputs are not modified.
 */
export function copyReferences(
  index: Uint32Array,
  sourceGrefs: Uint8Array,
): { source: Uint8Array; copy: Uint8Array } {
  if (sourceGrefs.length < index.length * GREF_SIZE) {
    throw new SdError(Res.INVALID_PARMS, "gref range shorter than the index");
  }
  const source = sourceGrefs.slice(0, index.length * GREF_SIZE);
  const copy = new Uint8Array(index.length * GREF_SIZE);
  for (let i = 0; i < index.length; i++) {
    if (index[i] === 0) continue;
    const g = getGref(source, i);
    if (g.generation + 1 >= LEDGER_WORDS) {
      throw new SdError(Res.INVALID_PARMS, `reference generation ${g.generation} is too deep`);
    }
    setGref(source, i, { generation: g.generation, count: (g.count + 1) >>> 0 });
    setGref(copy, i, { generation: g.generation + 1, count: 0 });
  }
  return { source, copy };
}

/**
 * The references an inode write releases: entry `firstIdx + i` changes from `before[i]` to
 * `after[i]`; a non-zero old entry that changes is released with its gref. Unchanged entries and
 * newly allocated ones (old 0) release nothing. `changed` lists every position (relative to
 * firstIdx) whose gref must be reset to {0, 0}: the released ones.
 */
export function releasedReferences(
  firstIdx: number,
  before: Uint32Array,
  after: Uint32Array,
  grefs: Uint8Array,
): { releases: Release[]; changed: number[] } {
  const releases: Release[] = [];
  const changed: number[] = [];
  const n = Math.min(before.length, after.length);
  for (let i = 0; i < n; i++) {
    if (before[i] === 0 || before[i] === after[i]) continue;
    const g = getGref(grefs, i);
    releases.push({ vid: before[i], idx: firstIdx + i, ...g });
    changed.push(i);
  }
  return { releases, changed };
}

// ---------------------------------------------------------------------------------------------
// Ledger

/** Bytes of a ledger prefix that holds words [0, gen + 2), rounded up to 4 KiB. */
export function ledgerPrefixBytes(generation: number): number {
  checkGeneration(generation);
  const need = (generation + 2) * 4;
  return Math.min(SD_LEDGER_OBJ_SIZE, Math.ceil(need / 4096) * 4096);
}

function checkGeneration(generation: number): void {
  if (!Number.isInteger(generation) || generation < 0 || generation + 1 >= LEDGER_WORDS) {
    throw new SdError(Res.INVALID_PARMS, `ledger generation ${generation} out of range`);
  }
}

/** A ledger that does not exist yet: [1, 0, 0, …] (the creator's reference), `bytes` long. */
export function freshLedger(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  view(out).setUint32(0, 1, true);
  return out;
}

/**
 * Applies one release {generation, count} to a ledger prefix in place: ledger[g] -= 1,
 * ledger[g + 1] += count (u32 wrap-around). The prefix must hold word g + 1. Returns the byte
 * range that changed.
 */
export function applyRelease(
  ledger: Uint8Array,
  generation: number,
  count: number,
): { offset: number; length: number } {
  checkGeneration(generation);
  if (ledger.length < (generation + 2) * 4) {
    throw new SdError(Res.INVALID_PARMS, "ledger prefix too short for the generation");
  }
  const v = view(ledger);
  const at = generation * 4;
  v.setUint32(at, (v.getUint32(at, true) - 1) >>> 0, true);
  v.setUint32(at + 4, (v.getUint32(at + 4, true) + (count >>> 0)) >>> 0, true);
  return { offset: at, length: 8 };
}

/** True when every byte is zero. */
export function isAllZero(bytes: Uint8Array): boolean {
  // Word-wise where aligned: ledgers are mostly zero, this runs on every release.
  const aligned = bytes.byteOffset % 4 === 0 ? Math.floor(bytes.length / 4) : 0;
  if (aligned > 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, aligned);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  }
  for (let i = aligned * 4; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The ledger words of a prefix, for messages and tests (trailing zeros dropped). */
export function ledgerWords(ledger: Uint8Array): number[] {
  const v = view(ledger);
  const out: number[] = [];
  for (let i = 0; i + 4 <= ledger.length; i += 4) out.push(v.getUint32(i, true));
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out;
}
