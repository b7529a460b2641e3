/**
 * Where a VDI is allocated, as NBD "base:allocation" extents: a data object the inode names
 * (its `data_vdi_id` entry is not 0, whichever VDI of the family owns it) is data; an object it
 * does not name is a hole that reads as zeros. Pure: the caller gives the inode's lookup.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { AllocationState, type BlockExtent } from "./protocol.ts";

/** Flags of an object the inode does not name. */
const HOLE_FLAGS = AllocationState.HOLE | AllocationState.ZERO;

/**
 * The extents of `length` bytes at `offset` (object granularity, neighbours of the same kind
 * merged), stopping after `max` extents. `owner(idx)` is the inode's entry for data object `idx`
 * (0: none).
 */
export function vdiAllocation(
  offset: number,
  length: number,
  objectSize: number,
  owner: (idx: number) => number,
  max: number,
): BlockExtent[] {
  assert(Number.isSafeInteger(offset) && offset >= 0, `bad offset ${offset}`);
  assert(Number.isSafeInteger(length) && length >= 0, `bad length ${length}`);
  assert(objectSize > 0 && max > 0, "bad object size or extent limit");
  const out: BlockExtent[] = [];
  const end = offset + length;
  let at = offset;
  while (at < end) {
    const idx = Math.floor(at / objectSize);
    const next = Math.min((idx + 1) * objectSize, end);
    const flags = owner(idx) === 0 ? HOLE_FLAGS : 0;
    const last = out.at(-1);
    if (last !== undefined && last.flags === flags) {
      last.length += next - at;
    } else {
      if (out.length === max) break;
      out.push({ length: next - at, flags });
    }
    at = next;
  }
  return out;
}
