/**
 * File names of objects in an object directory, exactly as Sheepdog v1.0 writes them, so that a
 * store written by v1.0 lists as is: `%016lx` for an object, `%016lx.tmp` for one being created,
 * and `.stale/%016lx.%u` for an object moved away at an epoch change.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { oidToString } from "../hash/oid.ts";

/** Name of the object directory inside a store directory (DIR/obj). */
export const OBJ_DIR_NAME = "obj";
/** Name of the stale sub-directory inside an object directory. */
export const STALE_DIR_NAME = ".stale";
/** Suffix of an object file that is being created (renamed away when complete). */
export const TMP_SUFFIX = ".tmp";

const OBJECT_NAME = /^[0-9a-f]{16}$/;
const STALE_NAME = /^([0-9a-f]{16})\.(\d{1,10})$/;
const MAX_EPOCH = 0xffff_ffff;

/** `%016lx` of an oid: 16 lowercase hex digits. */
export function objectFileName(oid: bigint): string {
  return oidToString(oid);
}

/** The oid of an object file name, or null when `name` is not one (tmp files, dot dirs…). */
export function parseObjectFileName(name: string): bigint | null {
  return OBJECT_NAME.test(name) ? BigInt("0x" + name) : null;
}

/** Name of the temporary file an object is created in. */
export function tmpFileName(oid: bigint): string {
  return objectFileName(oid) + TMP_SUFFIX;
}

/** `<oid>.<epoch>`: name of a stale object inside the stale directory. */
export function staleFileName(oid: bigint, epoch: number): string {
  assertEpoch(epoch);
  return `${objectFileName(oid)}.${epoch}`;
}

/** The oid and epoch of a stale file name, or null when `name` is not one. */
export function parseStaleFileName(name: string): { oid: bigint; epoch: number } | null {
  const m = STALE_NAME.exec(name);
  if (m === null) return null;
  const epoch = Number(m[2]);
  if (epoch > MAX_EPOCH) return null;
  return { oid: BigInt("0x" + m[1]), epoch };
}

/** Asserts that `epoch` is a u32. */
export function assertEpoch(epoch: number): void {
  assert(Number.isInteger(epoch) && epoch >= 0 && epoch <= MAX_EPOCH, `bad epoch: ${epoch}`);
}
