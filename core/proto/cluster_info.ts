/**
 * `cluster_info`: the join payload and the CLUSTER_INFO reply (491,568 bytes in full, of which
 * only the first 48 + 80·nr_nodes are meaningful).
 *
 * Layout (LE): proto_ver u8 @0, disable_recovery u8 @1, nr_nodes i16 @2, epoch u32 @4,
 * ctime u64 @8, flags u16 @16, nr_copies u8 @18, copy_policy u8 @19, status u8 @20,
 * block_size_shift u8 @21, pad @22, default_store[16] @25, pad until 48, nodes[6144] @48.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_CLUSTER_INFO_SIZE, SD_MAX_NODES, SD_NODE_SIZE, STORE_LEN } from "./constants.ts";
import { decodeNodes, encodeNode, type SdNode } from "./node.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, encodeFixedString } from "./strings.ts";

/** Size of the fixed part before nodes[]. */
export const CLUSTER_INFO_HEADER_SIZE = 48;

/** The decoded cluster_info; nr_nodes is `nodes.length`. */
export interface ClusterInfo {
  /** SD_SHEEP_PROTO_VER (0x0a) from a compatible sheep. */
  protoVer: number;
  disableRecovery: boolean;
  epoch: number;
  ctime: bigint;
  /** ClusterFlag bits. */
  flags: number;
  nrCopies: number;
  copyPolicy: number;
  /** ClusterStatus value. */
  status: number;
  blockSizeShift: number;
  /** Store driver name ("plain", "tree"), at most 15 bytes. */
  defaultStore: string;
  /** The nodes of the latest epoch. */
  nodes: SdNode[];
}

/**
 * Encodes `ci`: 48 + 80·n bytes, or the whole 491,568-byte struct when `full` (what v1.0 sends as
 * the CLUSTER_INFO reply). SdError(INVALID_PARMS) when default_store is longer than 15 bytes.
 */
export function encodeClusterInfo(ci: ClusterInfo, full = false): Uint8Array {
  assert(ci.nodes.length <= SD_MAX_NODES, `${ci.nodes.length} nodes exceed SD_MAX_NODES`);
  const store = encodeFixedString(ci.defaultStore, STORE_LEN);
  const used = CLUSTER_INFO_HEADER_SIZE + ci.nodes.length * SD_NODE_SIZE;
  const out = new Uint8Array(full ? SD_CLUSTER_INFO_SIZE : used);
  const v = new DataView(out.buffer, out.byteOffset, CLUSTER_INFO_HEADER_SIZE);
  v.setUint8(0, ci.protoVer);
  v.setUint8(1, ci.disableRecovery ? 1 : 0);
  v.setInt16(2, ci.nodes.length, true);
  v.setUint32(4, ci.epoch >>> 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, ci.ctime), true);
  v.setUint16(16, ci.flags, true);
  v.setUint8(18, ci.nrCopies);
  v.setUint8(19, ci.copyPolicy);
  v.setUint8(20, ci.status);
  v.setUint8(21, ci.blockSizeShift);
  out.set(store, 25);
  ci.nodes.forEach((n, i) => encodeNode(n, out, CLUSTER_INFO_HEADER_SIZE + i * SD_NODE_SIZE));
  return out;
}

/**
 * Decodes a cluster_info of at least 48 + 80·nr_nodes bytes (the full struct or just its used
 * part). SdError(INVALID_PARMS) when truncated or when nr_nodes is negative or above 6144.
 */
export function decodeClusterInfo(buf: Uint8Array): ClusterInfo {
  if (buf.length < CLUSTER_INFO_HEADER_SIZE) {
    throw new SdError(Res.INVALID_PARMS, `cluster_info of ${buf.length} bytes is truncated`);
  }
  const v = new DataView(buf.buffer, buf.byteOffset, CLUSTER_INFO_HEADER_SIZE);
  const nrNodes = v.getInt16(2, true);
  if (nrNodes < 0 || nrNodes > SD_MAX_NODES) {
    throw new SdError(Res.INVALID_PARMS, `cluster_info has nr_nodes ${nrNodes}`);
  }
  if (buf.length < CLUSTER_INFO_HEADER_SIZE + nrNodes * SD_NODE_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `cluster_info of ${buf.length} bytes cannot hold ${nrNodes} nodes`,
    );
  }
  return {
    protoVer: v.getUint8(0),
    disableRecovery: v.getUint8(1) !== 0,
    epoch: v.getUint32(4, true),
    ctime: v.getBigUint64(8, true),
    flags: v.getUint16(16, true),
    nrCopies: v.getUint8(18),
    copyPolicy: v.getUint8(19),
    status: v.getUint8(20),
    blockSizeShift: v.getUint8(21),
    defaultStore: decodeFixedString(buf, 25, STORE_LEN),
    nodes: decodeNodes(buf, nrNodes, CLUSTER_INFO_HEADER_SIZE),
  };
}
