import assert from "node:assert/strict";
import { Res, SD_STAT_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";
import {
  decodeRecoveryState,
  decodeRecoveryThrottling,
  decodeStat,
  emptyStat,
  encodeRecoveryState,
  encodeRecoveryThrottling,
  encodeStat,
  RECOVERY_STATE_SIZE,
  RECOVERY_THROTTLING_SIZE,
  RecoveryPhase,
  type SdStat,
} from "./stat.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

/** Field i holds 0x0100 + i so that each lands visibly at 8·i. */
const STAT: SdStat = {
  gwayActiveNr: 0x100n,
  peerActiveNr: 0x101n,
  gwayTotalNr: 0x102n,
  peerTotalNr: 0x103n,
  gwayTotalRx: 0x104n,
  gwayTotalTx: 0x105n,
  peerTotalRx: 0x106n,
  peerTotalTx: 0x107n,
  gwayTotalRemoveNr: 0x108n,
  gwayTotalReadNr: 0x109n,
  gwayTotalWriteNr: 0x10an,
  gwayTotalFlushNr: 0x10bn,
  peerTotalRemoveNr: 0x10cn,
  peerTotalReadNr: 0x10dn,
  peerTotalWriteNr: 0x10en,
};

Deno.test("encodeStat() writes the 15 u64 counters of sd_stat in v1.0 order", () => {
  const b = encodeStat(STAT);
  assert.equal(b.length, 120);
  assert.equal(SD_STAT_SIZE, 120);
  const exp = new Uint8Array(120);
  for (let i = 0; i < 15; i++) exp.set([i, 0x01], 8 * i);
  assert.deepEqual(b, exp);
});

Deno.test("decodeStat() reads sd_stat, with full 64-bit counters", () => {
  const b = encodeStat(STAT);
  assert.deepEqual(decodeStat(b), STAT);
  b.fill(0xff, 112, 120);
  assert.equal(decodeStat(b).peerTotalWriteNr, 0xffffffffffffffffn);
});

Deno.test("emptyStat() has every counter zero and encodes as 120 zero bytes", () => {
  assert.equal(Object.keys(emptyStat()).length, 15);
  assert.deepEqual(encodeStat(emptyStat()), new Uint8Array(120));
});

Deno.test("decodeStat() refuses fewer than 120 bytes", () => {
  assert.throws(() => decodeStat(new Uint8Array(119)), invalidParms);
  assert.throws(() => decodeStat(new Uint8Array(120), 1), invalidParms);
});

Deno.test("encodeRecoveryState() writes in_recovery @0, state @4, nr_finished @8, nr_total @16", () => {
  const b = encodeRecoveryState({
    inRecovery: true,
    state: RecoveryPhase.RECOVERING_OBJECTS,
    nrFinished: 0x1234n,
    nrTotal: 0x100000000n,
  });
  assert.equal(RECOVERY_STATE_SIZE, 24);
  // deno-fmt-ignore
  assert.deepEqual([...b], [
    1, 0, 0, 0, 1, 0, 0, 0,
    0x34, 0x12, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 1, 0, 0, 0,
  ]);
});

Deno.test("decodeRecoveryState() reads a hand-built recovery_state", () => {
  // deno-fmt-ignore
  const b = new Uint8Array([
    0, 0, 0, 0, 2, 0, 0, 0,
    5, 0, 0, 0, 0, 0, 0, 0,
    9, 0, 0, 0, 0, 0, 0, 0,
  ]);
  assert.deepEqual(decodeRecoveryState(b), {
    inRecovery: false,
    state: RecoveryPhase.NOTIFYING_COMPLETION,
    nrFinished: 5n,
    nrTotal: 9n,
  });
  assert.throws(() => decodeRecoveryState(b.subarray(0, 23)), invalidParms);
});

Deno.test("RecoveryPhase numbers the recovery_state states 0, 1, 2", () => {
  assert.deepEqual(RecoveryPhase, {
    PREPARING_LIST: 0,
    RECOVERING_OBJECTS: 1,
    NOTIFYING_COMPLETION: 2,
  });
});

Deno.test("encodeRecoveryThrottling() writes max_exec_count @0, interval @8, throttling @16", () => {
  const b = encodeRecoveryThrottling({
    maxExecCount: 10,
    queueWorkInterval: 500n,
    throttling: true,
  });
  assert.equal(RECOVERY_THROTTLING_SIZE, 24);
  // deno-fmt-ignore
  assert.deepEqual([...b], [
    10, 0, 0, 0, 0, 0, 0, 0,
    0xf4, 0x01, 0, 0, 0, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 0, 0,
  ]);
});

Deno.test("decodeRecoveryThrottling() reads a recovery_throttling at an offset", () => {
  const b = new Uint8Array(30);
  b.set(
    encodeRecoveryThrottling({
      maxExecCount: 0xffffffff,
      queueWorkInterval: 1n,
      throttling: false,
    }),
    3,
  );
  assert.deepEqual(decodeRecoveryThrottling(b, 3), {
    maxExecCount: 0xffffffff,
    queueWorkInterval: 1n,
    throttling: false,
  });
  assert.throws(() => decodeRecoveryThrottling(b, 7), invalidParms);
});
