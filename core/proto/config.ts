/**
 * `sheepdog_config`, the 40-byte `DIR/config` file of a sheep.
 *
 * Layout (LE): ctime u64 @0, flags u16 @8, copies u8 @10, default_store[16] @11, shutdown u8 @27,
 * copy_policy u8 @28, block_size_shift u8 @29, version u16 @30 (SD_FORMAT_VERSION = 6),
 * space u64 @32.
 *
 * @module
 */

import { Res, SD_CONFIG_SIZE, STORE_LEN } from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, encodeFixedString } from "./strings.ts";

/** The decoded config file. */
export interface SheepConfig {
  /** Cluster creation time (0 = not formatted). */
  ctime: bigint;
  /** ClusterFlag bits. */
  flags: number;
  copies: number;
  /** Store driver name, at most 15 bytes. */
  defaultStore: string;
  /** True after `dog cluster shutdown`. */
  shutdown: boolean;
  copyPolicy: number;
  blockSizeShift: number;
  /** On-disk format version (SD_FORMAT_VERSION). */
  version: number;
  /** Node capacity in bytes. */
  space: bigint;
}

/** The 40 bytes of `c`. SdError(INVALID_PARMS) when defaultStore is longer than 15 bytes. */
export function encodeConfig(c: SheepConfig): Uint8Array {
  const store = encodeFixedString(c.defaultStore, STORE_LEN);
  const out = new Uint8Array(SD_CONFIG_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt.asUintN(64, c.ctime), true);
  v.setUint16(8, c.flags, true);
  v.setUint8(10, c.copies);
  out.set(store, 11);
  v.setUint8(27, c.shutdown ? 1 : 0);
  v.setUint8(28, c.copyPolicy);
  v.setUint8(29, c.blockSizeShift);
  v.setUint16(30, c.version, true);
  v.setBigUint64(32, BigInt.asUintN(64, c.space), true);
  return out;
}

/** Reads a config file. SdError(INVALID_PARMS) unless it is exactly 40 bytes. */
export function decodeConfig(buf: Uint8Array): SheepConfig {
  if (buf.length !== SD_CONFIG_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `a config file has ${SD_CONFIG_SIZE} bytes, got ${buf.length}`,
    );
  }
  const v = new DataView(buf.buffer, buf.byteOffset, SD_CONFIG_SIZE);
  return {
    ctime: v.getBigUint64(0, true),
    flags: v.getUint16(8, true),
    copies: v.getUint8(10),
    defaultStore: decodeFixedString(buf, 11, STORE_LEN),
    shutdown: v.getUint8(27) !== 0,
    copyPolicy: v.getUint8(28),
    blockSizeShift: v.getUint8(29),
    version: v.getUint16(30, true),
    space: v.getBigUint64(32, true),
  };
}
