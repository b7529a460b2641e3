/**
 * The messages sheep exchange through the cluster driver (ours to design; v1.0 interop inside one
 * cluster is not promised). A cluster-op message carries the request header, the response header
 * filled by the work step, and the request payload the main step needs.
 *
 * @module
 */

import { SD_REQ_SIZE, SD_RSP_SIZE } from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { Res } from "../proto/constants.ts";

const MAGIC = 0x53444d31; // "SDM1"
const HEADER = 16;

/** Kinds of cluster messages. */
export const MsgKind = {
  /** A cluster op's main step. */
  OP: 1,
  /** The creation time of an epoch, announced by the master after a leave. */
  EPOCH_TIME: 2,
  /**
   * The sender's recovery of an epoch did not start or is stuck for lack of space
   * (core/recovery/degraded.ts); every member adds it to its view of the cluster's state.
   */
  RECOVERY_DEGRADED: 3,
} as const;

/** A decoded RECOVERY_DEGRADED message (the node is the message's sender). */
export interface DegradedMessage {
  epoch: number;
  reason: number;
  needed: number;
  free: number;
}

/** A decoded cluster-op message. */
export interface OpMessage {
  seq: number;
  req: SdReq;
  rsp: SdRsp;
  data: Uint8Array;
}

/** Encodes a cluster-op message. */
export function encodeOpMessage(
  seq: number,
  req: SdReq,
  rsp: SdRsp,
  data?: Uint8Array,
): Uint8Array {
  const len = data?.length ?? 0;
  const out = new Uint8Array(HEADER + SD_REQ_SIZE + SD_RSP_SIZE + len);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, MsgKind.OP, true);
  v.setUint32(8, seq >>> 0, true);
  v.setUint32(12, len, true);
  out.set(req.bytes, HEADER);
  out.set(rsp.bytes, HEADER + SD_REQ_SIZE);
  if (data) out.set(data, HEADER + SD_REQ_SIZE + SD_RSP_SIZE);
  return out;
}

/** Encodes an EPOCH_TIME message. */
export function encodeEpochTime(epoch: number, time: bigint): Uint8Array {
  const out = new Uint8Array(HEADER + 8);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, MsgKind.EPOCH_TIME, true);
  v.setUint32(8, epoch >>> 0, true);
  v.setBigUint64(HEADER, time, true);
  return out;
}

/** Encodes a RECOVERY_DEGRADED message. */
export function encodeDegradedMessage(m: DegradedMessage): Uint8Array {
  const out = new Uint8Array(HEADER + 24);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, MsgKind.RECOVERY_DEGRADED, true);
  v.setUint32(8, m.epoch >>> 0, true);
  v.setUint32(HEADER, m.reason >>> 0, true);
  v.setBigUint64(HEADER + 8, BigInt(m.needed), true);
  v.setBigUint64(HEADER + 16, BigInt(m.free), true);
  return out;
}

/** Decodes a RECOVERY_DEGRADED message (INVALID_PARMS when short). */
export function decodeDegradedMessage(msg: Uint8Array): DegradedMessage {
  if (msg.length < HEADER + 24) throw new SdError(Res.INVALID_PARMS, "short degraded message");
  const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
  const big = (n: bigint) =>
    n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
  return {
    epoch: v.getUint32(8, true),
    reason: v.getUint32(HEADER, true),
    needed: big(v.getBigUint64(HEADER + 8, true)),
    free: big(v.getBigUint64(HEADER + 16, true)),
  };
}

/** The kind of a message (throws on a foreign message). */
export function messageKind(msg: Uint8Array): number {
  if (msg.length < HEADER) throw new SdError(Res.INVALID_PARMS, "short cluster message");
  const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
  if (v.getUint32(0, true) !== MAGIC) throw new SdError(Res.INVALID_PARMS, "bad message magic");
  return v.getUint32(4, true);
}

/** Decodes a cluster-op message. */
export function decodeOpMessage(msg: Uint8Array): OpMessage {
  const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
  const len = v.getUint32(12, true);
  if (msg.length !== HEADER + SD_REQ_SIZE + SD_RSP_SIZE + len) {
    throw new SdError(Res.INVALID_PARMS, "cluster message length mismatch");
  }
  return {
    seq: v.getUint32(8, true),
    req: new SdReq(msg.slice(HEADER, HEADER + SD_REQ_SIZE)),
    rsp: new SdRsp(msg.slice(HEADER + SD_REQ_SIZE, HEADER + SD_REQ_SIZE + SD_RSP_SIZE)),
    data: msg.slice(HEADER + SD_REQ_SIZE + SD_RSP_SIZE),
  };
}

/** Decodes an EPOCH_TIME message. */
export function decodeEpochTime(msg: Uint8Array): { epoch: number; time: bigint } {
  const v = new DataView(msg.buffer, msg.byteOffset, msg.length);
  return { epoch: v.getUint32(8, true), time: v.getBigUint64(HEADER, true) };
}
