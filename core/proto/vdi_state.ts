/**
 * `vdi_state` (1,428 bytes), one per VDI in the GET_VDI_COPIES reply.
 *
 * Layout (LE): vid u32 @0, nr_copies u8 @4, snapshot u8 @5, deleted u8 @6, copy_policy u8 @7,
 * block_size_shift u8 @8, pad @9, parent_vid u32 @12, lock_state u32 @16,
 * lock_owner node_id @20, nr_participants u32 @60, participants_state u32[31] @64,
 * participants node_id[31] @188.
 *
 * An all-zero lock_owner decodes as `null` and `null` encodes as zeros.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_MAX_COPIES, SD_VDI_STATE_SIZE } from "./constants.ts";
import type { NodeId } from "./node.ts";
import { decodeNodeId, encodeNodeId, NODE_ID_SIZE } from "./node_id.ts";
import { SdError } from "./sd_error.ts";

/** Participant slots in a vdi_state (SD_MAX_COPIES). */
export const MAX_VDI_STATE_PARTICIPANTS = SD_MAX_COPIES;

/** One tgt multipath participant of a shared lock. */
export interface VdiStateParticipant {
  /** The participant's shared-lock state, as v1.0 stores it (not interpreted here). */
  state: number;
  nid: NodeId;
}

/** A decoded vdi_state. */
export interface VdiStateRecord {
  vid: number;
  nrCopies: number;
  snapshot: boolean;
  deleted: boolean;
  copyPolicy: number;
  blockSizeShift: number;
  parentVid: number;
  /** LockState value (1 unlocked, 2 locked, 3 shared). */
  lockState: number;
  /** The owner of a normal lock; null when the field is all zero. */
  lockOwner: NodeId | null;
  /** At most 31 participants of a shared lock. */
  participants: VdiStateParticipant[];
}

/**
 * Writes `s` as 1,428 bytes at `off` of `out` and returns `out`. SdError(INVALID_PARMS) with more
 * than 31 participants.
 */
export function encodeVdiState(
  s: VdiStateRecord,
  out: Uint8Array = new Uint8Array(SD_VDI_STATE_SIZE),
  off = 0,
): Uint8Array {
  if (s.participants.length > MAX_VDI_STATE_PARTICIPANTS) {
    throw new SdError(Res.INVALID_PARMS, `${s.participants.length} participants exceed 31`);
  }
  assert(off >= 0 && off + SD_VDI_STATE_SIZE <= out.length, "vdi_state does not fit");
  out.fill(0, off, off + SD_VDI_STATE_SIZE);
  const v = new DataView(out.buffer, out.byteOffset + off, SD_VDI_STATE_SIZE);
  v.setUint32(0, s.vid >>> 0, true);
  v.setUint8(4, s.nrCopies);
  v.setUint8(5, s.snapshot ? 1 : 0);
  v.setUint8(6, s.deleted ? 1 : 0);
  v.setUint8(7, s.copyPolicy);
  v.setUint8(8, s.blockSizeShift);
  v.setUint32(12, s.parentVid >>> 0, true);
  v.setUint32(16, s.lockState >>> 0, true);
  if (s.lockOwner) encodeNodeId(s.lockOwner, out, off + 20);
  v.setUint32(60, s.participants.length, true);
  s.participants.forEach((p, i) => {
    v.setUint32(64 + 4 * i, p.state >>> 0, true);
    encodeNodeId(p.nid, out, off + 188 + NODE_ID_SIZE * i);
  });
  return out;
}

/**
 * Reads the vdi_state at `off` of `buf`. SdError(INVALID_PARMS) when it runs past the end or
 * nr_participants is above 31.
 */
export function decodeVdiState(buf: Uint8Array, off = 0): VdiStateRecord {
  if (!(off >= 0 && off + SD_VDI_STATE_SIZE <= buf.length)) {
    throw new SdError(
      Res.INVALID_PARMS,
      `vdi_state [${off}, ${off + SD_VDI_STATE_SIZE}) is past the end of ${buf.length} bytes`,
    );
  }
  const v = new DataView(buf.buffer, buf.byteOffset + off, SD_VDI_STATE_SIZE);
  const nr = v.getUint32(60, true);
  if (nr > MAX_VDI_STATE_PARTICIPANTS) {
    throw new SdError(Res.INVALID_PARMS, `vdi_state has ${nr} participants`);
  }
  const ownerBytes = buf.subarray(off + 20, off + 20 + NODE_ID_SIZE);
  const participants: VdiStateParticipant[] = [];
  for (let i = 0; i < nr; i++) {
    participants.push({
      state: v.getUint32(64 + 4 * i, true),
      nid: decodeNodeId(buf, off + 188 + NODE_ID_SIZE * i),
    });
  }
  return {
    vid: v.getUint32(0, true),
    nrCopies: v.getUint8(4),
    snapshot: v.getUint8(5) !== 0,
    deleted: v.getUint8(6) !== 0,
    copyPolicy: v.getUint8(7),
    blockSizeShift: v.getUint8(8),
    parentVid: v.getUint32(12, true),
    lockState: v.getUint32(16, true),
    lockOwner: ownerBytes.some((b) => b !== 0) ? decodeNodeId(buf, off + 20) : null,
    participants,
  };
}

/** A GET_VDI_COPIES reply: the states back to back. */
export function encodeVdiStates(states: readonly VdiStateRecord[]): Uint8Array {
  const out = new Uint8Array(states.length * SD_VDI_STATE_SIZE);
  states.forEach((s, i) => encodeVdiState(s, out, i * SD_VDI_STATE_SIZE));
  return out;
}

/**
 * Reads a GET_VDI_COPIES reply. SdError(INVALID_PARMS) unless its length is a multiple of 1,428
 * or when a record is invalid.
 */
export function decodeVdiStates(buf: Uint8Array): VdiStateRecord[] {
  if (buf.length % SD_VDI_STATE_SIZE !== 0) {
    throw new SdError(
      Res.INVALID_PARMS,
      `${buf.length} bytes are not a whole number of vdi_state records`,
    );
  }
  const out: VdiStateRecord[] = [];
  for (let off = 0; off < buf.length; off += SD_VDI_STATE_SIZE) out.push(decodeVdiState(buf, off));
  return out;
}
