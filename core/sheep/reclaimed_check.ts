/**
 * Whether an object recovery is about to bring back from an older copy is still referenced, or
 * was reclaimed while the copy's node was away.
 *
 * Recovery asks the holders of the newest epochs first; when they answer NO_OBJ it goes on to
 * older copies, because an interrupted recovery can leave an object only there. But NO_OBJ also
 * means "reclaimed": a data object whose last reference was released (VDI deleted, object
 * discarded, rollback) is removed from the replicas of that epoch only, and a node that was down
 * keeps its copy. Taken for the newest surviving copy, it would come back as an unreferenced
 * object no deletion will ever remove again, and, worse, sit under a later CREATE of the same oid.
 *
 * So before recovery takes an older copy of a data object (or of its ledger) of a deleted VDI
 * after a newer holder answered NO_OBJ, it asks the inodes: a data object `(V, idx)` is referenced
 * iff some VDI of V's family (snapshots, clones, rollbacks) has `data_vdi_id[idx] == V`. Inodes are never reclaimed
 * while a family member lives, and a write makes its object a reference only after every replica
 * has it, so "no inode names it" is final. A VM state object of a deleted VDI is reclaimed.
 *
 * The answer errs on the safe side: any doubt (an inode that cannot be read, a hyper volume whose
 * index lives in B-tree objects, a VDI this node does not know) counts as referenced. A wrong
 * "referenced" leaks an object; a wrong "reclaimed" would lose one.
 *
 * @module
 */

import {
  dataOidToIdx,
  isDataObj,
  isLedgerObj,
  isVmstateObj,
  oidToVid,
  vidToVdiOid,
} from "../hash/oid.ts";
import { dataObjectCount, decodeInodeHeader } from "../proto/inode.ts";
import { Res, SD_INODE_HEADER_SIZE } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { familyOf } from "../vdi/family.ts";
import type { Timers } from "../cluster/deadline.ts";
import type { Gateway } from "./gateway.ts";
import { ledgerToDataOid } from "./ledger.ts";
import type { VdiRegistry } from "./vdi_registry.ts";

/** Bound on the inode reads of one check; past it the object counts as referenced (ms). */
export const RECLAIMED_CHECK_DEADLINE_MS = 15_000;

/** Whether the check applies to `oid` at all (data, ledger and VM state objects). */
export function isReclaimable(oid: bigint): boolean {
  return isDataObj(oid) || isLedgerObj(oid) || isVmstateObj(oid);
}

/**
 * True unless `oid` is certainly unreferenced (see the module comment). `gw` reads inodes at the
 * current epoch; `vdis` is the node's VDI state.
 */
export async function isStillReferenced(
  oid: bigint,
  gw: Gateway,
  vdis: VdiRegistry,
  timers: Timers,
  deadlineMs = RECLAIMED_CHECK_DEADLINE_MS,
): Promise<boolean> {
  if (!isReclaimable(oid)) return true;
  const vid = oidToVid(oid);
  if (isVmstateObj(oid)) return vdis.get(vid)?.deleted !== true;
  const data = isLedgerObj(oid) ? ledgerToDataOid(oid) : oid;
  // Objects of a VDI that is not deleted count as referenced: a client may be between an
  // object's CREATE and the inode write that names it (the seeded simulation's seed 6031 lost an
  // acknowledged write that way), and a copy taken back of a discarded object only leaks (a later
  // CREATE replaces it; its stale ledger can only delay a release).
  if (vdis.get(vid)?.deleted !== true) return true;
  // A record learnt from a lock only has no parent link yet: the family walk could miss members.
  if (vdis.hasPartial()) return true;
  let timer: unknown;
  const timeout = new Promise<boolean>((resolve) => {
    timer = timers.setTimeout(() => resolve(true), deadlineMs);
  });
  try {
    return await Promise.race([namedByAnInode(data, gw, vdis), timeout]);
  } finally {
    timers.clearTimeout(timer);
  }
}

async function namedByAnInode(data: bigint, gw: Gateway, vdis: VdiRegistry): Promise<boolean> {
  const vid = oidToVid(data);
  const idx = dataOidToIdx(data);
  for (const w of familyOf(vid, vdis.all())) {
    const copies = vdis.get(w)?.nrCopies ?? 0;
    try {
      const header = decodeInodeHeader(
        await gw.read(vidToVdiOid(w), 0, SD_INODE_HEADER_SIZE, copies),
      );
      if (header.storePolicy !== 0) return true;
      if (idx >= dataObjectCount(header.vdiSize, header.blockSizeShift)) continue;
      const entry = await gw.read(vidToVdiOid(w), SD_INODE_HEADER_SIZE + idx * 4, 4, copies);
      if (new DataView(entry.buffer, entry.byteOffset, 4).getUint32(0, true) === vid) return true;
    } catch (e) {
      // An inode that is gone (a reclaimed family member) names nothing; anything else is doubt.
      if (e instanceof SdError && e.result === Res.NO_OBJ) continue;
      return true;
    }
  }
  return false;
}
