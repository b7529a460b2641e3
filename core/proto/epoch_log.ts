/**
 * The epoch log in its two forms:
 * - the store file `epoch/%08u`: sd_node[n] (80 B each, rb zeroed) then an 8-byte time_t, so
 *   80·n + 8 bytes (also the GET_EPOCH reply);
 * - the STAT_CLUSTER record `epoch_log`: ctime u64 @0, time u64 @8, epoch u32 @16,
 *   nr_nodes u32 @20, disable_recovery u8 @24, nr_copies u8 @25, copy_policy u8 @26, pad @27,
 *   flags u16 @30, drv_name[16] @32, then `nodeSlots` sd_node slots @48 (nodeSlots is the
 *   request's cluster.nodes_nr).
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_MAX_NODES, SD_NODE_SIZE, STORE_LEN } from "./constants.ts";
import { decodeNodes, encodeNode, type SdNode } from "./node.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, encodeFixedString } from "./strings.ts";

/** Size of the time_t that ends an epoch file. */
const TIME_SIZE = 8;
/** Size of an epoch_log record before its node slots. */
export const EPOCH_LOG_HEADER_SIZE = 48;

/** The content of an epoch file `epoch/%08u` (80·n + 8 bytes). */
export function encodeEpochFile(nodes: readonly SdNode[], time: bigint): Uint8Array {
  assert(nodes.length <= SD_MAX_NODES, `${nodes.length} nodes exceed SD_MAX_NODES`);
  const out = new Uint8Array(nodes.length * SD_NODE_SIZE + TIME_SIZE);
  nodes.forEach((n, i) => encodeNode(n, out, i * SD_NODE_SIZE));
  new DataView(out.buffer, out.byteOffset, out.length).setBigUint64(
    nodes.length * SD_NODE_SIZE,
    BigInt.asUintN(64, time),
    true,
  );
  return out;
}

/**
 * Reads an epoch file (or GET_EPOCH reply). SdError(INVALID_PARMS) unless its size is 80·n + 8
 * with n ≤ 6144.
 */
export function decodeEpochFile(buf: Uint8Array): { nodes: SdNode[]; time: bigint } {
  const n = (buf.length - TIME_SIZE) / SD_NODE_SIZE;
  if (buf.length < TIME_SIZE || !Number.isInteger(n) || n > SD_MAX_NODES) {
    throw new SdError(
      Res.INVALID_PARMS,
      `an epoch log of ${buf.length} bytes is not 80·n + 8 bytes`,
    );
  }
  const time = new DataView(buf.buffer, buf.byteOffset, buf.length).getBigUint64(
    n * SD_NODE_SIZE,
    true,
  );
  return { nodes: decodeNodes(buf, n), time };
}

/** One STAT_CLUSTER record. */
export interface EpochLogRecord {
  /** Cluster creation time (v1.0 fills it in the newest record only). */
  ctime: bigint;
  /** time_t of the epoch. */
  time: bigint;
  epoch: number;
  /** nr_nodes as sent: normally `nodes.length`, but kept apart because it is a raw u32. */
  nrNodes: number;
  disableRecovery: boolean;
  nrCopies: number;
  copyPolicy: number;
  flags: number;
  /** Store driver name, at most 15 bytes. */
  drvName: string;
  nodes: SdNode[];
}

/** Size of one record with `nodeSlots` node slots: 48 + 80·nodeSlots. */
export function epochLogRecordSize(nodeSlots: number): number {
  assert(Number.isInteger(nodeSlots) && nodeSlots >= 0, `bad node slot count ${nodeSlots}`);
  return EPOCH_LOG_HEADER_SIZE + nodeSlots * SD_NODE_SIZE;
}

/**
 * One record of `epochLogRecordSize(nodeSlots)` bytes. nr_nodes is written from `rec.nrNodes`;
 * `rec.nodes` fill the first slots (at most `nodeSlots`), the other slots are zero.
 * SdError(INVALID_PARMS) when drvName is longer than 15 bytes.
 */
export function encodeEpochLogRecord(rec: EpochLogRecord, nodeSlots: number): Uint8Array {
  const drv = encodeFixedString(rec.drvName, STORE_LEN);
  assert(rec.nodes.length <= nodeSlots, `${rec.nodes.length} nodes exceed ${nodeSlots} slots`);
  const out = new Uint8Array(epochLogRecordSize(nodeSlots));
  const v = new DataView(out.buffer, out.byteOffset, EPOCH_LOG_HEADER_SIZE);
  v.setBigUint64(0, BigInt.asUintN(64, rec.ctime), true);
  v.setBigUint64(8, BigInt.asUintN(64, rec.time), true);
  v.setUint32(16, rec.epoch >>> 0, true);
  v.setUint32(20, rec.nrNodes >>> 0, true);
  v.setUint8(24, rec.disableRecovery ? 1 : 0);
  v.setUint8(25, rec.nrCopies);
  v.setUint8(26, rec.copyPolicy);
  v.setUint16(30, rec.flags, true);
  out.set(drv, 32);
  rec.nodes.forEach((n, i) => encodeNode(n, out, EPOCH_LOG_HEADER_SIZE + i * SD_NODE_SIZE));
  return out;
}

/**
 * Reads the record at `off` of a STAT_CLUSTER reply whose records have `nodeSlots` slots.
 * `nodes` are the first min(nr_nodes, nodeSlots) slots (nr_nodes itself is kept as sent).
 * SdError(INVALID_PARMS) when the record runs past the end of `buf`.
 */
export function decodeEpochLogRecord(
  buf: Uint8Array,
  off: number,
  nodeSlots: number,
): EpochLogRecord {
  const size = epochLogRecordSize(nodeSlots);
  if (!(off >= 0 && off + size <= buf.length)) {
    throw new SdError(
      Res.INVALID_PARMS,
      `epoch_log record [${off}, ${off + size}) is past the end of ${buf.length} bytes`,
    );
  }
  const v = new DataView(buf.buffer, buf.byteOffset + off, EPOCH_LOG_HEADER_SIZE);
  const nrNodes = v.getUint32(20, true);
  return {
    ctime: v.getBigUint64(0, true),
    time: v.getBigUint64(8, true),
    epoch: v.getUint32(16, true),
    nrNodes,
    disableRecovery: v.getUint8(24) !== 0,
    nrCopies: v.getUint8(25),
    copyPolicy: v.getUint8(26),
    flags: v.getUint16(30, true),
    drvName: decodeFixedString(buf, off + 32, STORE_LEN),
    nodes: decodeNodes(buf, Math.min(nrNodes, nodeSlots), off + EPOCH_LOG_HEADER_SIZE),
  };
}
