/**
 * The VDI state every node keeps in memory and identical to the others: the in-use and deleted
 * bitmaps, and per VDI its copies, block size, snapshot/deleted flags, parent and lock. Changed
 * only by cluster-op main steps (applied in total order), by startup scans and by the state pulled
 * from members at join.
 *
 * @module
 */

import { LockState, SD_VDI_STATE_SIZE } from "../proto/constants.ts";
import type { NodeId } from "../proto/node.ts";
import { VdiBitmap } from "../vdi/bitmap.ts";
import { decodeVdiState, encodeVdiState, type VdiStateRecord } from "../proto/vdi_state.ts";

/** What a node knows about one VDI. */
export interface VdiInfo {
  vid: number;
  nrCopies: number;
  copyPolicy: number;
  blockSizeShift: number;
  snapshot: boolean;
  deleted: boolean;
  parentVid: number;
  lockState: number;
  lockOwner: NodeId | null;
  /** Shared-lock holders (tgt multipath). */
  participants: { state: number; nid: NodeId }[];
  /**
   * Known only from a LOCK_VDI this node applied before it learnt the VDI (just after a
   * whole-cluster restart): copies and parent are guesses until a merge brings the record.
   */
  partial?: boolean;
}

/** The in-memory VDI state of a node. */
export class VdiRegistry {
  inUse = new VdiBitmap();
  deleted = new VdiBitmap();
  readonly #infos = new Map<number, VdiInfo>();

  /** Forgets everything (MAKE_FS). */
  reset(): void {
    this.inUse = new VdiBitmap();
    this.deleted = new VdiBitmap();
    this.#infos.clear();
  }

  /** Registers (or replaces) a VDI and marks it in use. */
  add(info: Omit<VdiInfo, "lockState" | "lockOwner" | "participants"> & Partial<VdiInfo>): void {
    const prev = this.#infos.get(info.vid);
    this.#infos.set(info.vid, {
      lockState: prev?.lockState ?? LockState.UNLOCKED,
      lockOwner: prev?.lockOwner ?? null,
      participants: prev?.participants ?? [],
      ...info,
    });
    this.inUse.set(info.vid);
    if (info.deleted) this.deleted.set(info.vid);
  }

  /** The VDI with `vid`, if known. */
  get(vid: number): VdiInfo | undefined {
    return this.#infos.get(vid);
  }

  /** All known VDIs. */
  all(): VdiInfo[] {
    return [...this.#infos.values()];
  }

  /** Whether some record is still partial (family walks cannot be trusted yet). */
  hasPartial(): boolean {
    for (const v of this.#infos.values()) if (v.partial) return true;
    return false;
  }

  /** Marks `vid` a snapshot: its data objects become read-only. */
  markSnapshot(vid: number): void {
    const v = this.#infos.get(vid);
    if (v) v.snapshot = true;
  }

  /** Marks `vid` deleted (its in-use bit stays, as in v1.0). */
  markDeleted(vid: number): void {
    const v = this.#infos.get(vid);
    if (v) {
      v.deleted = true;
      v.lockState = LockState.UNLOCKED;
      v.lockOwner = null;
      v.participants = [];
    }
    this.deleted.set(vid);
  }

  /** Forgets `vid` entirely (RECYCLE_VID reclaimed its family): both bits cleared, reusable. */
  forget(vid: number): void {
    this.#infos.delete(vid);
    this.inUse.clear(vid);
    this.deleted.clear(vid);
  }

  /** GET_VDI_COPIES payload: one 1428-byte vdi_state per VDI. */
  encode(): Uint8Array {
    const list = this.all();
    const out = new Uint8Array(list.length * SD_VDI_STATE_SIZE);
    list.forEach((v, i) => out.set(encodeVdiState(toRecord(v)), i * SD_VDI_STATE_SIZE));
    return out;
  }

  /**
   * Merges a GET_VDI_COPIES payload from a member (their word wins for VDIs we lack). With
   * `locks`, a VDI unlocked here takes their lock state: that is how a joiner learns the locks.
   * Members pulling from a joiner leave it out, as they applied every lock op in order and the
   * joiner's copy may be older (a lock released meanwhile must not come back).
   */
  merge(buf: Uint8Array, opts: { locks: boolean } = { locks: true }): number {
    let n = 0;
    for (let off = 0; off + SD_VDI_STATE_SIZE <= buf.length; off += SD_VDI_STATE_SIZE) {
      const r = decodeVdiState(buf.subarray(off, off + SD_VDI_STATE_SIZE));
      const mine = this.#infos.get(r.vid);
      if (mine?.partial) {
        // A record learnt from a lock only: take everything but the lock state from the peer's.
        Object.assign(mine, {
          nrCopies: r.nrCopies,
          copyPolicy: r.copyPolicy,
          blockSizeShift: r.blockSizeShift,
          parentVid: r.parentVid,
          partial: false,
        });
      }
      if (mine) {
        mine.snapshot ||= r.snapshot;
        if (r.deleted) this.markDeleted(r.vid);
        if (
          opts.locks && mine.lockState === LockState.UNLOCKED &&
          r.lockState !== LockState.UNLOCKED
        ) {
          mine.lockState = r.lockState;
          mine.lockOwner = r.lockOwner;
          mine.participants = r.participants;
        }
        continue;
      }
      this.add({
        vid: r.vid,
        nrCopies: r.nrCopies,
        copyPolicy: r.copyPolicy,
        blockSizeShift: r.blockSizeShift,
        snapshot: r.snapshot,
        deleted: r.deleted,
        parentVid: r.parentVid,
        lockState: opts.locks ? r.lockState : LockState.UNLOCKED,
        lockOwner: opts.locks ? r.lockOwner : null,
        participants: opts.locks ? r.participants : [],
      });
      n++;
    }
    return n;
  }
}

function toRecord(v: VdiInfo): VdiStateRecord {
  return {
    vid: v.vid,
    nrCopies: v.nrCopies,
    snapshot: v.snapshot,
    deleted: v.deleted,
    copyPolicy: v.copyPolicy,
    blockSizeShift: v.blockSizeShift,
    parentVid: v.parentVid,
    lockState: v.lockState,
    lockOwner: v.lockOwner,
    participants: v.participants,
  };
}
