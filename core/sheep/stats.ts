/**
 * Request counters of one sheep (the STAT op, `dog node stat`), in v1.0's sd_stat order.
 *
 * @module
 */

import type { SdStat } from "../proto/stat.ts";

/** Mutable counters; the STAT op encodes them as 15 u64. */
export class SheepStats {
  gwayActive = 0;
  peerActive = 0;
  gwayTotal = 0;
  peerTotal = 0;
  gwayRx = 0;
  gwayTx = 0;
  peerRx = 0;
  peerTx = 0;
  gwayRemove = 0;
  gwayRead = 0;
  gwayWrite = 0;
  gwayFlush = 0;
  peerRemove = 0;
  peerRead = 0;
  peerWrite = 0;

  /** The counters as the STAT op's sd_stat. */
  toSdStat(): SdStat {
    return {
      gwayActiveNr: BigInt(this.gwayActive),
      peerActiveNr: BigInt(this.peerActive),
      gwayTotalNr: BigInt(this.gwayTotal),
      peerTotalNr: BigInt(this.peerTotal),
      gwayTotalRx: BigInt(this.gwayRx),
      gwayTotalTx: BigInt(this.gwayTx),
      peerTotalRx: BigInt(this.peerRx),
      peerTotalTx: BigInt(this.peerTx),
      gwayTotalRemoveNr: BigInt(this.gwayRemove),
      gwayTotalReadNr: BigInt(this.gwayRead),
      gwayTotalWriteNr: BigInt(this.gwayWrite),
      gwayTotalFlushNr: BigInt(this.gwayFlush),
      peerTotalRemoveNr: BigInt(this.peerRemove),
      peerTotalReadNr: BigInt(this.peerRead),
      peerTotalWriteNr: BigInt(this.peerWrite),
    };
  }
}
