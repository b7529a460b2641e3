/**
 * Timing figures of integration tests: printed only when SD_TIMING is set (the tests assert
 * behaviour, the benchmarks measure speed; these lines help compare the two by hand).
 *
 * @module
 */

/** Prints `what: value` when SD_TIMING is set. */
export function reportTiming(what: string, value: unknown): void {
  if (Deno.env.get("SD_TIMING")) console.log(`${what}:`, value);
}

/** The middle element of `xs` after sorting (the upper one of the two for an even count). */
export function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
