/**
 * Request counters of one sheep (the STAT op, `dog node stat`), in v1.0's sd_stat order.
 *
 * @module
 */

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

  /** The counters in sd_stat order. */
  values(): bigint[] {
    return [
      this.gwayActive,
      this.peerActive,
      this.gwayTotal,
      this.peerTotal,
      this.gwayRx,
      this.gwayTx,
      this.peerRx,
      this.peerTx,
      this.gwayRemove,
      this.gwayRead,
      this.gwayWrite,
      this.gwayFlush,
      this.peerRemove,
      this.peerRead,
      this.peerWrite,
    ].map((n) => BigInt(n));
  }
}
