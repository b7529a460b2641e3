/**
 * Fixed-size, NUL-padded string fields (`char name[256]`, `char tag[256]`, `char store[16]`…) as
 * v1.0 lays them out in inodes, attributes, configs and request payloads.
 *
 * The rule we follow is the one v1.0 writes with `pstrcpy`: the text takes at most `size - 1`
 * bytes and is always followed by at least one NUL, so a 256-byte name field holds at most 255
 * bytes of name. Decoding is more tolerant than encoding: a field without any NUL (only a foreign
 * writer can produce one) decodes as all of its `size` bytes.
 *
 * Text is UTF-8. Bytes that are not valid UTF-8 decode as U+FFFD, so such a field does not round
 * trip byte for byte; v1.0 never produces one from a command line.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "./constants.ts";
import { SdError } from "./sd_error.ts";

/** The UTF-8 bytes of `s` after checking that they fit a field of `size` bytes. */
function fieldBytes(s: string, size: number): Uint8Array {
  assert(Number.isInteger(size) && size > 0, `bad fixed string size ${size}`);
  const bytes = new TextEncoder().encode(s);
  if (bytes.length > size - 1) {
    throw new SdError(
      Res.INVALID_PARMS,
      `'${s.length > 40 ? s.slice(0, 40) + "…" : s}' is ${bytes.length} bytes, ` +
        `longer than ${size - 1}`,
    );
  }
  if (bytes.includes(0)) throw new SdError(Res.INVALID_PARMS, "string contains a NUL byte");
  return bytes;
}

/**
 * `s` as a NUL-padded field of `size` bytes. SdError(INVALID_PARMS) when its UTF-8 form is longer
 * than `size - 1` bytes or contains a NUL.
 */
export function encodeFixedString(s: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(fieldBytes(s, size));
  return out;
}

/**
 * Writes `s` as a NUL-padded field of `size` bytes at `off` of `out` (the whole field is
 * overwritten). Same checks as {@link encodeFixedString}; `out` is untouched when they fail.
 */
export function writeFixedString(s: string, out: Uint8Array, off: number, size: number): void {
  const bytes = fieldBytes(s, size);
  assert(off >= 0 && off + size <= out.length, "fixed string field does not fit");
  out.fill(0, off + bytes.length, off + size);
  out.set(bytes, off);
}

/**
 * The text of the `size`-byte field at `off` of `buf`: the bytes up to the first NUL (or all
 * `size` bytes when there is none), decoded as UTF-8. SdError(INVALID_PARMS) when the field
 * runs past the end of `buf`.
 */
export function decodeFixedString(buf: Uint8Array, off: number, size: number): string {
  if (!(off >= 0 && size >= 0 && off + size <= buf.length)) {
    throw new SdError(
      Res.INVALID_PARMS,
      `string field [${off}, ${off + size}) is past the end of a ${buf.length}-byte buffer`,
    );
  }
  const field = buf.subarray(off, off + size);
  const nul = field.indexOf(0);
  // ignoreBOM keeps a leading U+FEFF as part of the name instead of silently dropping it.
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(
    nul < 0 ? field : field.subarray(0, nul),
  );
}
