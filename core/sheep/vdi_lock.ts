/**
 * VDI locking (clusters formatted with `dog cluster format -l`): the pure state changes that the
 * main steps of LOCK_VDI and RELEASE_VDI, and the departure of a node, apply to the VDI registry.
 * Every node applies them in the cluster's total order, so every node holds the same locks.
 *
 * The owner of a lock is the node (sheep) the client sent LOCK_VDI to, as in v1.0: QEMU, tgt and
 * the NBD export of a sheep all lock through their gateway sheep.
 *
 * - A normal lock is exclusive: it is refused (VDI_LOCKED) while the VDI holds any lock, also
 *   when the same node asks again, so two writers behind one gateway are told apart too.
 * - A shared lock (tgt multipath) adds the node to the participants; refused while the VDI holds a
 *   normal lock, or when the 31 participant slots of vdi_state are full.
 * - A release frees what the requesting node holds (its normal lock, or its participation in a
 *   shared one); VDI_NOT_LOCKED when it holds nothing there (QEMU's close tolerates that code).
 * - A forced release frees the VDI whoever holds it (`dog vdi lock unlock`).
 * - A node that leaves the cluster (left or crashed) loses every lock it held.
 * - A snapshot of a locked working VDI moves the lock to the new working VDI: the writer goes on
 *   there (it reloads the inode after READONLY), and a second writer must still be refused.
 *
 * @module
 */

import { LockState, LockType, Res } from "../proto/constants.ts";
import { compareNodeId, type NodeId } from "../proto/node.ts";
import { MAX_VDI_STATE_PARTICIPANTS } from "../proto/vdi_state.ts";
import type { VdiInfo, VdiRegistry } from "./vdi_registry.ts";

/** True when two node ids name the same node (address and port; the I/O address is not part). */
export function sameNid(a: NodeId, b: NodeId): boolean {
  return compareNodeId(a, b) === 0;
}

/** Takes a lock of `type` (LockType) on `vid` for `owner`; returns the result code. */
export function lockVdi(vdis: VdiRegistry, vid: number, type: number, owner: NodeId): number {
  const v = vdis.get(vid);
  if (!v || v.deleted) return Res.NO_VDI;
  switch (type) {
    case LockType.NORMAL:
      if (v.lockState !== LockState.UNLOCKED) return Res.VDI_LOCKED;
      v.lockState = LockState.LOCKED;
      v.lockOwner = owner;
      v.participants = [];
      return Res.SUCCESS;
    case LockType.SHARED:
      if (v.lockState === LockState.LOCKED) return Res.VDI_LOCKED;
      if (!v.participants.some((p) => sameNid(p.nid, owner))) {
        if (v.participants.length >= MAX_VDI_STATE_PARTICIPANTS) return Res.VDI_LOCKED;
        v.participants.push({ state: 0, nid: owner });
      }
      v.lockState = LockState.SHARED;
      return Res.SUCCESS;
    default:
      return Res.INVALID_PARMS;
  }
}

/**
 * Releases what `requester` holds on `vid`, or (when `force`) every lock of `vid`; returns the
 * result code.
 */
export function releaseVdi(
  vdis: VdiRegistry,
  vid: number,
  requester: NodeId,
  force: boolean,
): number {
  const v = vdis.get(vid);
  if (!v) return Res.NO_VDI;
  if (v.lockState === LockState.UNLOCKED) return Res.VDI_NOT_LOCKED;
  if (force) {
    unlock(v);
    return Res.SUCCESS;
  }
  if (v.lockState === LockState.LOCKED) {
    if (!v.lockOwner || !sameNid(v.lockOwner, requester)) return Res.VDI_NOT_LOCKED;
    unlock(v);
    return Res.SUCCESS;
  }
  const before = v.participants.length;
  v.participants = v.participants.filter((p) => !sameNid(p.nid, requester));
  if (v.participants.length === before) return Res.VDI_NOT_LOCKED;
  if (v.participants.length === 0) unlock(v);
  return Res.SUCCESS;
}

/** Frees every lock `node` holds (it left the cluster); returns the vids that changed. */
export function releaseLocksOf(vdis: VdiRegistry, node: NodeId): number[] {
  const changed: number[] = [];
  for (const v of vdis.all()) {
    if (v.lockState === LockState.LOCKED && v.lockOwner && sameNid(v.lockOwner, node)) {
      unlock(v);
      changed.push(v.vid);
    } else if (v.lockState === LockState.SHARED) {
      const before = v.participants.length;
      v.participants = v.participants.filter((p) => !sameNid(p.nid, node));
      if (v.participants.length === before) continue;
      if (v.participants.length === 0) unlock(v);
      changed.push(v.vid);
    }
  }
  return changed;
}

/**
 * Moves the lock of `from` (the working VDI just snapshotted) to `to` (its new working VDI);
 * false when `from` holds no lock or `to` is unknown.
 */
export function moveLock(vdis: VdiRegistry, from: number, to: number): boolean {
  const a = vdis.get(from);
  const b = vdis.get(to);
  if (!a || !b || a.lockState === LockState.UNLOCKED) return false;
  b.lockState = a.lockState;
  b.lockOwner = a.lockOwner;
  b.participants = a.participants;
  unlock(a);
  return true;
}

function unlock(v: VdiInfo): void {
  v.lockState = LockState.UNLOCKED;
  v.lockOwner = null;
  v.participants = [];
}
