/**
 * Sizes as v1.0 dog reads and prints them: option_parse_size() (a strtod(3) double, one optional
 * B/K/M/G/T/P suffix in either case, powers of 1024) and size_to_str() ("100 MB", "8.0 MB",
 * "220 GB", or plain bytes in raw mode).
 *
 * @module
 */

import { doubleToU64, formatFixed, strtod } from "./c_numbers.ts";

/** The two lines v1.0 prints for a size it cannot parse. */
export function invalidSizeLines(text: string): string[] {
  return [
    `Invalid size '${text}'`,
    "You may use k, M, G, T or P suffixes for kilobytes, megabytes, gigabytes, terabytes and petabytes.",
  ];
}

const MULTIPLIER: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/**
 * Parses a size like v1.0's option_parse_size(): the number is a double (so "1.5G", "1e3K" and
 * even "" — which is 0 — are accepted), at most one suffix character may follow, and the product
 * is converted to uint64 the way C does. Returns undefined when the text is not a size.
 */
export function parseSize(text: string): bigint | undefined {
  const { value, rest } = strtod(text);
  if (rest.length > 1) return undefined;
  const mult = MULTIPLIER[rest.toLowerCase()];
  if (mult === undefined) return undefined;
  // v1.0 multiplies by 1024 once per step of its switch fall-through; powers of two are exact,
  // so one multiplication gives the same double.
  return doubleToU64(value * mult);
}

const UNITS = ["MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/**
 * v1.0's size_to_str(): bytes in raw mode, else MB and up, "%.1f" below 10 and "%.0f" from 10,
 * with glibc's rounding.
 */
export function sizeToStr(bytes: bigint, raw: boolean): string {
  if (raw) return BigInt.asUintN(64, bytes).toString();
  let size = Number(BigInt.asUintN(64, bytes));
  size /= 1024 * 1024;
  let i = 0;
  while (i < UNITS.length - 1 && size >= 1024) {
    i++;
    size /= 1024;
  }
  return `${formatFixed(size, size >= 10 ? 0 : 1)} ${UNITS[i]}`;
}
