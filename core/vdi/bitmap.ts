/**
 * The VDI bitmaps (in-use and deleted): one bit per vid over SD_NR_VDIS = 2^24 vids, 2 MiB.
 *
 * Layout: v1.0 keeps these as `unsigned long[]` and uses set_bit(nr) = word[nr / 64] |=
 * 1 << (nr % 64). On a little-endian machine (every v1.0 platform) that puts vid i in byte i >> 3
 * at bit i & 7, which is the layout of READ_VDIS / READ_DEL_VDIS replies. We store exactly that
 * byte layout, and scan it through a Uint32Array view of the same memory: on a little-endian host
 * vid i is then bit i & 31 of word i >> 5. The constructor asserts the host is little-endian.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_NR_VDIS, SD_VDI_BITMAP_SIZE } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

const NR_WORDS = SD_NR_VDIS / 32;

function checkVid(vid: number): void {
  assert(Number.isInteger(vid) && vid >= 0 && vid < SD_NR_VDIS, `vid ${vid} out of range`);
}

function checkFrom(from: number): void {
  assert(Number.isInteger(from) && from >= 0 && from <= SD_NR_VDIS, `start ${from} out of range`);
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function lowestBit(w: number): number {
  return 31 - Math.clz32(w & -w);
}

/** Bits set in a 32-bit word. */
function popcount32(w: number): number {
  w = w - ((w >>> 1) & 0x55555555);
  w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
  return (Math.imul((w + (w >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** A 2^24-bit map of vids in v1.0's byte layout. */
export class VdiBitmap {
  readonly #bytes: Uint8Array;
  readonly #words: Uint32Array;

  /** An all-clear bitmap. */
  constructor() {
    assert(new Uint8Array(Uint16Array.of(1).buffer)[0] === 1, "host must be little-endian");
    this.#bytes = new Uint8Array(SD_VDI_BITMAP_SIZE);
    this.#words = new Uint32Array(this.#bytes.buffer, 0, NR_WORDS);
  }

  /**
   * A bitmap holding a copy of `bytes` (a READ_VDIS reply, say), which must be exactly
   * SD_VDI_BITMAP_SIZE (2 MiB) long; else SdError(INVALID_PARMS).
   */
  static from(bytes: Uint8Array): VdiBitmap {
    if (bytes.length !== SD_VDI_BITMAP_SIZE) {
      throw new SdError(
        Res.INVALID_PARMS,
        `VDI bitmap must be ${SD_VDI_BITMAP_SIZE} bytes, got ${bytes.length}`,
      );
    }
    const bm = new VdiBitmap();
    bm.#bytes.set(bytes);
    return bm;
  }

  /** The live 2 MiB backing bytes, in wire/v1.0 layout. Writing to them changes the bitmap. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** True when `vid`'s bit is set. */
  test(vid: number): boolean {
    checkVid(vid);
    return (this.#bytes[vid >>> 3] & (1 << (vid & 7))) !== 0;
  }

  /** Sets `vid`'s bit. */
  set(vid: number): void {
    checkVid(vid);
    this.#bytes[vid >>> 3] |= 1 << (vid & 7);
  }

  /** Clears `vid`'s bit. */
  clear(vid: number): void {
    checkVid(vid);
    this.#bytes[vid >>> 3] &= ~(1 << (vid & 7));
  }

  /** The first vid ≥ `from` whose bit is clear, or -1 when there is none (from ≤ 2^24). */
  findNextZero(from: number): number {
    checkFrom(from);
    return this.#scanUp(from, 0xffffffff);
  }

  /** The first vid ≥ `from` whose bit is set, or -1 when there is none (from ≤ 2^24). */
  findNextSet(from: number): number {
    checkFrom(from);
    return this.#scanUp(from, 0);
  }

  /** The last vid ≤ `from` whose bit is set, or -1 when there is none (-1 ≤ from < 2^24). */
  findPrevSet(from: number): number {
    assert(Number.isInteger(from) && from >= -1 && from < SD_NR_VDIS, `start ${from} out of range`);
    if (from < 0) return -1;
    const words = this.#words;
    let i = from >>> 5;
    // Keep bits 0..(from & 31) of the first word.
    let w = words[i] & (0xffffffff >>> (31 - (from & 31)));
    for (;;) {
      if (w !== 0) return i * 32 + 31 - Math.clz32(w);
      if (i === 0) return -1;
      w = words[--i];
    }
  }

  /** Number of set bits. */
  get popcount(): number {
    const words = this.#words;
    let n = 0;
    for (let i = 0; i < NR_WORDS; i++) {
      const w = words[i];
      if (w !== 0) n += popcount32(w);
    }
    return n;
  }

  /** First vid ≥ from whose bit, XORed with `flip` (all ones to look for zeros), is set. */
  #scanUp(from: number, flip: number): number {
    if (from === SD_NR_VDIS) return -1;
    const words = this.#words;
    let i = from >>> 5;
    let w = ((words[i] ^ flip) & (0xffffffff << (from & 31))) >>> 0;
    for (;;) {
      if (w !== 0) return i * 32 + lowestBit(w);
      if (++i === NR_WORDS) return -1;
      w = (words[i] ^ flip) >>> 0;
    }
  }
}
