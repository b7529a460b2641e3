/**
 * The sweep every node runs over its own store when a VDI is deleted: data, ledger and VM state
 * objects of that vid that no inode names any more are removed.
 *
 * Normally there is nothing to sweep: the releases before DEL_VDI reclaimed every object on the
 * replicas of their epoch. But a node that was away during those releases and came back before
 * DEL_VDI took its older copies back as current (the VDI was not deleted yet, so recovery could
 * not tell a released object from one whose inode write is still on its way; see
 * reclaimed_check.ts), and the other owners copied them from it. Once the VDI is deleted nothing
 * can name its objects again (no clone of a deleted snapshot, no writes to a deleted VDI), so the
 * inode check is final here, and a copy nobody names is garbage on every node alike.
 *
 * Each node sweeps only its own store, after applying DEL_VDI: all of them do, in the cluster's
 * order. Any doubt (an inode that cannot be read in time) keeps the object: a leak, never a loss.
 *
 * @module
 */

import { isDataObj, isLedgerObj, isVmstateObj, oidToString, oidToVid } from "../hash/oid.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { isStillReferenced } from "./reclaimed_check.ts";
import type { Sheep } from "./sheep.ts";

/** Removes the local objects of deleted `vid` that no inode names; returns how many went. */
export async function sweepDeletedVdi(s: Sheep, vid: number): Promise<number> {
  const mine = (await s.store.list()).filter((oid) =>
    (isDataObj(oid) || isLedgerObj(oid) || isVmstateObj(oid)) && oidToVid(oid) === vid
  );
  let removed = 0;
  for (const oid of mine) {
    if (await isStillReferenced(oid, s.gateway, s.vdis, s.deps.timers)) continue;
    try {
      await s.store.remove(oid);
    } catch (e) {
      // Gone meanwhile (a reclaim or a move to stale): nothing left to sweep.
      if (e instanceof SdError && e.result === Res.NO_OBJ) continue;
      throw e;
    }
    removed++;
    s.log.info("removed an object of a deleted VDI that no inode names", {
      oid: oidToString(oid),
    });
  }
  return removed;
}
