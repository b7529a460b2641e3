/**
 * The reply of STAT_DEGRADED (a sheepdog-ts extension): one `degraded_node` record per member
 * whose recovery of the current epoch did not start (avoid-diskfull) or is stuck on a full disk:
 * sd_node @0 (80 B), reason u32 @80 (1 not started, 2 out of space), pad u32 @84, needed u64 @88
 * (bytes the recovery brings in, 0 unknown), free u64 @96 (bytes the node had free). 104 bytes.
 *
 * @module
 */

import { Res, SD_NODE_SIZE } from "./constants.ts";
import { decodeNode, encodeNode, type SdNode } from "./node.ts";
import { SdError } from "./sd_error.ts";

/** Why a node's recovery does not go on. */
export const DegradedReason = {
  /** Avoid-diskfull: the recovery would fill the node's disk, so it was not started. */
  NOT_STARTED: 1,
  /** The recovery started but the disk is full: objects fail with NO_SPACE and are retried. */
  OUT_OF_SPACE: 2,
} as const;

/** A DegradedReason value. */
export type DegradedReasonCode = (typeof DegradedReason)[keyof typeof DegradedReason];

/** One node's report. */
export interface DegradedNode {
  readonly node: SdNode;
  readonly reason: DegradedReasonCode;
  /** Bytes the recovery needs to bring in (0 when unknown). */
  readonly needed: number;
  /** Free bytes the node had. */
  readonly free: number;
}

/** Size of one `degraded_node` record. */
export const DEGRADED_NODE_SIZE = SD_NODE_SIZE + 24;

/** Encodes the records (as many as `maxBytes` holds; BUFFER_SMALL if not all fit). */
export function encodeDegradedNodes(nodes: readonly DegradedNode[], maxBytes: number): Uint8Array {
  if (nodes.length * DEGRADED_NODE_SIZE > maxBytes) throw new SdError(Res.BUFFER_SMALL);
  const out = new Uint8Array(nodes.length * DEGRADED_NODE_SIZE);
  const v = new DataView(out.buffer);
  nodes.forEach((n, i) => {
    const off = i * DEGRADED_NODE_SIZE;
    encodeNode(n.node, out, off);
    v.setUint32(off + SD_NODE_SIZE, n.reason, true);
    v.setBigUint64(off + SD_NODE_SIZE + 8, BigInt(n.needed), true);
    v.setBigUint64(off + SD_NODE_SIZE + 16, BigInt(n.free), true);
  });
  return out;
}

/** Decodes a STAT_DEGRADED reply; INVALID_PARMS for a partial record or an unknown reason. */
export function decodeDegradedNodes(data: Uint8Array): DegradedNode[] {
  if (data.length % DEGRADED_NODE_SIZE !== 0) {
    throw new SdError(Res.INVALID_PARMS, `a degraded_node list of ${data.length} bytes`);
  }
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  const out: DegradedNode[] = [];
  for (let off = 0; off < data.length; off += DEGRADED_NODE_SIZE) {
    const reason = v.getUint32(off + SD_NODE_SIZE, true);
    if (reason !== DegradedReason.NOT_STARTED && reason !== DegradedReason.OUT_OF_SPACE) {
      throw new SdError(Res.INVALID_PARMS, `unknown degraded reason ${reason}`);
    }
    out.push({
      node: decodeNode(data, off),
      reason: reason as DegradedReasonCode,
      needed: safe(v.getBigUint64(off + SD_NODE_SIZE + 8, true)),
      free: safe(v.getBigUint64(off + SD_NODE_SIZE + 16, true)),
    });
  }
  return out;
}

function safe(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}
