/**
 * Store operations of one replica (the PEER ops), with v1.0's rules: object sizes from the oid
 * and the VDI's block size, sparse inode and ledger objects, bounds checked before any I/O.
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { isLedgerObj, isVdiObj, objectSize, oidToString, oidToVid } from "../hash/oid.ts";
import type { SheepContext } from "./context.ts";

/** The block size shift that applies to `oid` (its VDI's, else the cluster default). */
export function blockShiftOf(ctx: SheepContext, oid: bigint): number {
  return ctx.vdis.get(oidToVid(oid))?.blockSizeShift || ctx.cinfo.blockSizeShift || 22;
}

/** Full size of the object `oid`. */
export function sizeOf(ctx: SheepContext, oid: bigint): number {
  return objectSize(oid, blockShiftOf(ctx, oid));
}

function checkRange(ctx: SheepContext, oid: bigint, offset: number, length: number): number {
  const size = sizeOf(ctx, oid);
  if (offset < 0 || length < 0 || offset + length > size) {
    throw new SdError(
      Res.INVALID_PARMS,
      `range ${offset}+${length} is outside object ${oidToString(oid)} of ${size} bytes`,
    );
  }
  return size;
}

/**
 * CREATE_AND_WRITE_PEER: creates the object, zeros except `data` at `offset`, replacing any
 * object of that oid (as v1.0's rename over it): a CREATE's content is newer than whatever copy
 * this node holds, for instance one recovery brought back just before, and every replica must
 * end up with the same bytes. A retried create writes the same object again.
 */
export async function peerCreate(
  ctx: SheepContext,
  oid: bigint,
  offset: number,
  data: Uint8Array,
  writeback = false,
): Promise<void> {
  const size = checkRange(ctx, oid, offset, data.length);
  await ctx.store.create(oid, offset, data, size, {
    sparse: isVdiObj(oid) || isLedgerObj(oid),
    replace: true,
    writeback,
  });
}

/** READ_PEER: `length` bytes at `offset`; a short object file reads as zeros up to its size. */
export async function peerRead(
  ctx: SheepContext,
  oid: bigint,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  checkRange(ctx, oid, offset, length);
  return await ctx.store.read(oid, offset, length);
}

/** WRITE_PEER: overwrites part of an existing object (`writeback`: see Flag.CMD_WRITEBACK). */
export async function peerWrite(
  ctx: SheepContext,
  oid: bigint,
  offset: number,
  data: Uint8Array,
  writeback = false,
): Promise<void> {
  checkRange(ctx, oid, offset, data.length);
  await ctx.store.write(oid, offset, data, writeback);
}

/** REMOVE_PEER: removes the object (NO_OBJ when absent). */
export async function peerRemove(ctx: SheepContext, oid: bigint): Promise<void> {
  await ctx.store.remove(oid);
}
