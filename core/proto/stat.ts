/**
 * The small status structs of dog's node commands:
 * - `sd_stat` (STAT, 120 bytes): 15 u64 request counters;
 * - `recovery_state` (STAT_RECOVERY, 24 bytes): in_recovery u8 @0, state u32 @4,
 *   nr_finished u64 @8, nr_total u64 @16;
 * - `recovery_throttling` (GET_RECOVERY / SET_RECOVERY, 24 bytes): max_exec_count u32 @0,
 *   pad @4, queue_work_interval u64 @8 (ms), throttling u8 @16, pad until 24.
 *
 * Decoders read at `off` of a buffer that must hold the whole struct, else SdError(INVALID_PARMS).
 *
 * @module
 */

import { Res, SD_STAT_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";

/** Size of `recovery_state`. */
export const RECOVERY_STATE_SIZE = 24;
/** Size of `recovery_throttling`. */
export const RECOVERY_THROTTLING_SIZE = 24;

/** `recovery_state.state` values. */
export const RecoveryPhase = {
  PREPARING_LIST: 0,
  RECOVERING_OBJECTS: 1,
  NOTIFYING_COMPLETION: 2,
} as const;

/** `sd_stat`: request counters of one sheep, in v1.0's field order. */
export interface SdStat {
  gwayActiveNr: bigint;
  peerActiveNr: bigint;
  gwayTotalNr: bigint;
  peerTotalNr: bigint;
  gwayTotalRx: bigint;
  gwayTotalTx: bigint;
  peerTotalRx: bigint;
  peerTotalTx: bigint;
  gwayTotalRemoveNr: bigint;
  gwayTotalReadNr: bigint;
  gwayTotalWriteNr: bigint;
  gwayTotalFlushNr: bigint;
  peerTotalRemoveNr: bigint;
  peerTotalReadNr: bigint;
  peerTotalWriteNr: bigint;
}

/** The fields of sd_stat in wire order; field i is the u64 at 8·i. */
const STAT_FIELDS: readonly (keyof SdStat)[] = [
  "gwayActiveNr",
  "peerActiveNr",
  "gwayTotalNr",
  "peerTotalNr",
  "gwayTotalRx",
  "gwayTotalTx",
  "peerTotalRx",
  "peerTotalTx",
  "gwayTotalRemoveNr",
  "gwayTotalReadNr",
  "gwayTotalWriteNr",
  "gwayTotalFlushNr",
  "peerTotalRemoveNr",
  "peerTotalReadNr",
  "peerTotalWriteNr",
];

/** `recovery_state`: progress of the node's recovery. */
export interface RecoveryState {
  inRecovery: boolean;
  /** RecoveryPhase value. */
  state: number;
  nrFinished: bigint;
  nrTotal: bigint;
}

/** `recovery_throttling`: the recovery rate limit. */
export interface RecoveryThrottling {
  maxExecCount: number;
  /** Milliseconds. */
  queueWorkInterval: bigint;
  throttling: boolean;
}

function viewAt(buf: Uint8Array, off: number, size: number, what: string): DataView {
  if (!(off >= 0 && off + size <= buf.length)) {
    throw new SdError(
      Res.INVALID_PARMS,
      `${what} needs ${size} bytes at ${off}, the buffer has ${buf.length}`,
    );
  }
  return new DataView(buf.buffer, buf.byteOffset + off, size);
}

/** A zeroed sd_stat. */
export function emptyStat(): SdStat {
  return Object.fromEntries(STAT_FIELDS.map((f) => [f, 0n])) as unknown as SdStat;
}

/** The 120 bytes of `s`. */
export function encodeStat(s: SdStat): Uint8Array {
  const out = new Uint8Array(SD_STAT_SIZE);
  const v = new DataView(out.buffer);
  STAT_FIELDS.forEach((f, i) => v.setBigUint64(8 * i, BigInt.asUintN(64, s[f]), true));
  return out;
}

/** Reads an sd_stat at `off`. */
export function decodeStat(buf: Uint8Array, off = 0): SdStat {
  const v = viewAt(buf, off, SD_STAT_SIZE, "sd_stat");
  return Object.fromEntries(
    STAT_FIELDS.map((f, i) => [f, v.getBigUint64(8 * i, true)]),
  ) as unknown as SdStat;
}

/** The 24 bytes of `s`. */
export function encodeRecoveryState(s: RecoveryState): Uint8Array {
  const out = new Uint8Array(RECOVERY_STATE_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(0, s.inRecovery ? 1 : 0);
  v.setUint32(4, s.state >>> 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, s.nrFinished), true);
  v.setBigUint64(16, BigInt.asUintN(64, s.nrTotal), true);
  return out;
}

/** Reads a recovery_state at `off`. */
export function decodeRecoveryState(buf: Uint8Array, off = 0): RecoveryState {
  const v = viewAt(buf, off, RECOVERY_STATE_SIZE, "recovery_state");
  return {
    inRecovery: v.getUint8(0) !== 0,
    state: v.getUint32(4, true),
    nrFinished: v.getBigUint64(8, true),
    nrTotal: v.getBigUint64(16, true),
  };
}

/** The 24 bytes of `t`. */
export function encodeRecoveryThrottling(t: RecoveryThrottling): Uint8Array {
  const out = new Uint8Array(RECOVERY_THROTTLING_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, t.maxExecCount >>> 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, t.queueWorkInterval), true);
  v.setUint8(16, t.throttling ? 1 : 0);
  return out;
}

/** Reads a recovery_throttling at `off`. */
export function decodeRecoveryThrottling(buf: Uint8Array, off = 0): RecoveryThrottling {
  const v = viewAt(buf, off, RECOVERY_THROTTLING_SIZE, "recovery_throttling");
  return {
    maxExecCount: v.getUint32(0, true),
    queueWorkInterval: v.getBigUint64(8, true),
    throttling: v.getUint8(16) !== 0,
  };
}
