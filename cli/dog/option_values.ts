/**
 * Parsers for option values with v1.0's rules and messages: -c copies (N or D:P), -z
 * block_size_shift, -s snapshot id or tag, -i index, -a address, -p port, log level names.
 *
 * @module
 */

import { SD_MAX_COPIES } from "../../core/proto/constants.ts";
import { DogError, Exit } from "./dog_error.ts";
import type { SnapshotRef } from "./vdi_access.ts";

/** Largest parity strip count + 1 (SD_EC_MAX_STRIP). */
const SD_EC_MAX_STRIP = 16;

/** v1.0's is_numeric(): non-empty and decimal digits only. */
export function isNumeric(s: string): boolean {
  return /^[0-9]+$/.test(s);
}

/**
 * v1.0's parse_copy(): "N" (1 … 31 copies, policy 0) or "D:P" (D ∈ {2,4,8,16}, 1 ≤ P ≤ 15,
 * policy ((D/2) << 4) | P, copies D+P). Tokens are split like strtok(":"), so empty tokens are
 * skipped. Undefined when invalid.
 */
export function parseCopy(text: string): { copies: number; copyPolicy: number } | undefined {
  const tokens = text.split(":").filter((t) => t.length > 0);
  const [n1, n2] = tokens;
  if (n1 === undefined) return undefined;
  if (!isNumeric(n1) || (n2 !== undefined && !isNumeric(n2))) return undefined;
  const copies = Number(n1);
  if (copies > SD_MAX_COPIES || copies < 1) return undefined;
  if (n2 === undefined) return { copies, copyPolicy: 0 };
  if (![2, 4, 8, 16].includes(copies)) return undefined;
  const parity = Number(n2);
  if (parity >= SD_EC_MAX_STRIP || parity === 0) return undefined;
  return { copies: copies + parity, copyPolicy: ((copies / 2) << 4) + parity };
}

/** The lines v1.0 prints for a bad -c value. */
export function invalidCopyLines(text: string): string[] {
  return [
    `Invalid parameter ${text}`,
    "To create replicated vdi, set -c x",
    `  x(1 to ${SD_MAX_COPIES})   - number of replicated copies`,
    "To create erasure coded vdi, set -c x:y",
    "  x(2,4,8,16)  - number of data strips",
    "  y(1 to 15)   - number of parity strips",
  ];
}

/** -c as a DogError-throwing parser (exit 1, as v1.0's option parsers exit). */
export function copiesOption(text: string): { copies: number; copyPolicy: number } {
  const parsed = parseCopy(text);
  if (parsed === undefined) throw new DogError(Exit.FAILURE, invalidCopyLines(text));
  return parsed;
}

/** C's atoi(): optional white space and sign, then digits; 0 when none. Clamped like strtol. */
export function atoi(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(text)!;
  if (m[2] === "") return 0;
  const LONG_MAX = (1n << 63n) - 1n;
  let v = BigInt(m[2]);
  if (v > LONG_MAX) v = m[1] === "-" ? LONG_MAX + 1n : LONG_MAX;
  const signed = m[1] === "-" ? -v : v;
  return Number(BigInt.asIntN(32, signed));
}

/**
 * -z: v1.0 stores atoi(value) in a uint8_t and accepts 20 … 31. DogError (exit 1) otherwise.
 */
export function blockSizeShiftOption(text: string): number {
  const shift = atoi(text) & 0xff;
  if (shift < 20 || shift > 31) {
    throw new DogError(Exit.FAILURE, [
      "Object Size is limited to 2^20 - 2^31.",
      "Please set shift bit value in this range",
    ]);
  }
  return shift;
}

/**
 * -s: a snapshot id when the whole value is a decimal number (which must then be above 0), else
 * a tag.
 */
export function snapshotOption(text: string): SnapshotRef {
  const m = /^[ \t\n\v\f\r]*[+-]?\d+$/.exec(text);
  if (m === null) return { id: 0, tag: text };
  const id = Number(BigInt.asUintN(32, BigInt(text.trim())));
  if (id === 0) throw new DogError(Exit.FAILURE, ["The snapshot id must be larger than zero"]);
  return { id, tag: "" };
}

/** -i: a data object index (0 … 2^32-1). DogError (exit 1) otherwise. */
export function indexOption(text: string): number {
  if (!/^\d+$/.test(text) || BigInt(text) > 0xffffffffn) {
    throw new DogError(Exit.FAILURE, [`Invalid index '${text}'`]);
  }
  return Number(text);
}

/** A positive decimal integer option (-B batch size, -I interval). */
export function positiveIntOption(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 0xffffffff) {
    throw new DogError(Exit.FAILURE, [`Invalid ${what} '${text}'`]);
  }
  return Number(text);
}

/**
 * -a / SHEEPDOG_DOG_ADDR: an IPv4 or IPv6 address as v1.0 takes it (printed back normalized, so
 * "localhost" shows as 127.0.0.1), or a host name (an extension: v1.0 takes addresses only).
 * DogError "Invalid ip address" (exit 1) otherwise.
 */
export function addressOption(text: string): string {
  if (text === "localhost") return "127.0.0.1";
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4 !== null) {
    const parts = v4.slice(1).map(Number);
    if (parts.every((p) => p <= 255)) return parts.join(".");
    throw new DogError(Exit.FAILURE, [`Invalid ip address ${text}`]);
  }
  if (text.includes(":")) {
    try {
      const host = new URL(`http://[${text}]/`).hostname;
      return host.slice(1, -1);
    } catch (e) {
      throw new DogError(Exit.FAILURE, [`Invalid ip address ${text}`], { cause: e });
    }
  }
  if (
    /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(text)
  ) {
    if (!/^[\d.]+$/.test(text)) return text;
  }
  throw new DogError(Exit.FAILURE, [`Invalid ip address ${text}`]);
}

/** -p / SHEEPDOG_DOG_PORT: strtol rules, 1 … 65535. DogError "Invalid port number" (exit 64). */
export function portOption(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(text);
  const port = m === null ? NaN : Number(m[1]);
  if (!(port >= 1 && port <= 65535)) {
    throw new DogError(Exit.USAGE, [`Invalid port number '${text}'`]);
  }
  return port;
}

/** Log level names, index = level (sheep's loglevel_table). */
export const LOG_LEVELS = [
  "emerg",
  "alert",
  "crit",
  "err",
  "warning",
  "notice",
  "info",
  "debug",
] as const;
