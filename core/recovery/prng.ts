/**
 * A small seeded pseudo-random generator (mulberry32) for simulations and property tests: the
 * same seed gives the same sequence on every platform, so a failing seed replays exactly.
 * Not for anything that needs unpredictability.
 *
 * @module
 */

import { assert } from "../assert.ts";

/** mulberry32: 32 bits of state, period 2^32, good enough to drive schedules. */
export class Prng {
  /** The seed this generator started from (print it on failure). */
  readonly seed: number;
  #state: number;

  constructor(seed: number) {
    assert(Number.isInteger(seed), "the seed must be an integer");
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A uniform unsigned 32-bit integer. */
  u32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    assert(Number.isInteger(n) && n > 0 && n <= 4294967296, `bad range ${n}`);
    return Math.floor(this.float() * n);
  }

  /** A uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    assert(hi >= lo, "empty range");
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, "pick from an empty array");
    return items[this.int(items.length)];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** A uniform unsigned 64-bit bigint. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
}
