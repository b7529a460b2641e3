/**
 * Finds the part of a buffer that must be written to a sparse file: leading and trailing blocks
 * that hold only zeros are left out, so they stay holes (v1.0 trims inode creates the same way).
 *
 * @module
 */

import { assert } from "../assert.ts";

/** Trimming granularity: the file system block size on every file system we care about. */
export const TRIM_BLOCK_SIZE = 4096;

/** Whether every byte of `bytes` is zero. */
export function isAllZero(bytes: Uint8Array): boolean {
  const n = bytes.length;
  let i = 0;
  const misalign = bytes.byteOffset % 4;
  const head = misalign === 0 ? 0 : Math.min(n, 4 - misalign);
  for (; i < head; i++) if (bytes[i] !== 0) return false;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let w = 0; w < words; w++) if (view[w] !== 0) return false;
    i += words * 4;
  }
  for (; i < n; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * The range `[start, end)` of `data` (to be written at file offset `offset`) left after dropping
 * the all-zero blocks at its head and tail, blocks being aligned to file offsets. `[0, 0]` when
 * `data` is all zeros.
 */
export function nonZeroSpan(
  data: Uint8Array,
  offset: number,
  block = TRIM_BLOCK_SIZE,
): [number, number] {
  assert(Number.isSafeInteger(offset) && offset >= 0, `bad offset ${offset}`);
  assert(Number.isInteger(block) && block > 0, `bad block size ${block}`);
  const end = data.length;
  let start = 0;
  while (start < end) {
    const next = Math.min(end, (Math.floor((offset + start) / block) + 1) * block - offset);
    if (!isAllZero(data.subarray(start, next))) break;
    start = next;
  }
  if (start === end) return [0, 0];
  let stop = end;
  while (stop > start) {
    const prev = Math.max(start, Math.floor((offset + stop - 1) / block) * block - offset);
    if (!isAllZero(data.subarray(prev, stop))) break;
    stop = prev;
  }
  return [start, stop];
}
