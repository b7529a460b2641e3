import assert from "node:assert/strict";
import { LockState, Res, SD_VDI_STATE_SIZE } from "./constants.ts";
import { ipv4ToAddr, type NodeId } from "./node.ts";
import { encodeNodeId } from "./node_id.ts";
import { SdError } from "./sd_error.ts";
import {
  decodeVdiState,
  decodeVdiStates,
  encodeVdiState,
  encodeVdiStates,
  type VdiStateRecord,
} from "./vdi_state.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

function nid(ip: string, port: number): NodeId {
  return { addr: ipv4ToAddr(ip), port, ioAddr: new Uint8Array(16), ioPort: 0 };
}

const STATE: VdiStateRecord = {
  vid: 0x7c2b26,
  nrCopies: 3,
  snapshot: true,
  deleted: true,
  copyPolicy: 0x21,
  blockSizeShift: 22,
  parentVid: 0x7c2b25,
  lockState: LockState.SHARED,
  lockOwner: nid("10.0.0.1", 7000),
  participants: [
    { state: 1, nid: nid("10.0.0.2", 7000) },
    { state: 3, nid: nid("10.0.0.3", 7001) },
  ],
};

/** STATE's 1,428 bytes, one spec offset at a time. */
function stateBytes(): Uint8Array {
  const b = new Uint8Array(1428);
  b.set([0x26, 0x2b, 0x7c, 0], 0); // vid
  b[4] = 3; // nr_copies
  b[5] = 1; // snapshot
  b[6] = 1; // deleted
  b[7] = 0x21; // copy_policy
  b[8] = 22; // block_size_shift
  b.set([0x25, 0x2b, 0x7c, 0], 12); // parent_vid
  b.set([3, 0, 0, 0], 16); // lock_state
  b.set([10, 0, 0, 1, 0x58, 0x1b], 32); // lock_owner addr[12..16] @20+12, port @20+16
  b.set([2, 0, 0, 0], 60); // nr_participants
  b.set([1, 0, 0, 0, 3, 0, 0, 0], 64); // participants_state[0..1]
  b.set([10, 0, 0, 2, 0x58, 0x1b], 188 + 12); // participants[0]
  b.set([10, 0, 0, 3, 0x59, 0x1b], 228 + 12); // participants[1]
  return b;
}

Deno.test("encodeVdiState() writes the 1,428-byte vdi_state at spec offsets", () => {
  assert.equal(SD_VDI_STATE_SIZE, 1428);
  assert.deepEqual(encodeVdiState(STATE), stateBytes());
});

Deno.test("decodeVdiState() reads a hand-built vdi_state", () => {
  assert.deepEqual(decodeVdiState(stateBytes()), STATE);
});

Deno.test("vdi_state's node_ids carry io_addr and io_port at 18 and 34 of each 40 bytes", () => {
  const owner: NodeId = { ...nid("10.0.0.1", 7000), ioAddr: ipv4ToAddr("10.1.0.1"), ioPort: 7100 };
  const b = encodeVdiState({ ...STATE, lockOwner: owner, participants: [] });
  assert.deepEqual(b.subarray(20, 60), encodeNodeId(owner));
  assert.deepEqual([...b.subarray(50, 56)], [10, 1, 0, 1, 0xbc, 0x1b]);
  assert.deepEqual(decodeVdiState(b).lockOwner, owner);
});

Deno.test("decodeVdiState() maps an all-zero lock owner to null and back", () => {
  const unlocked = {
    ...STATE,
    lockState: LockState.UNLOCKED,
    lockOwner: null,
    participants: [],
    snapshot: false,
    deleted: false,
  };
  const b = encodeVdiState(unlocked);
  assert.ok(b.subarray(20, 60).every((x) => x === 0));
  assert.deepEqual(decodeVdiState(b), unlocked);
});

Deno.test("encodeVdiState() and decodeVdiState() handle 31 participants and refuse 32", () => {
  const many = Array.from({ length: 31 }, (_, i) => ({ state: i, nid: nid("10.0.1.1", 7000 + i) }));
  const b = encodeVdiState({ ...STATE, participants: many });
  assert.deepEqual([...b.subarray(1388, 1394)], [0, 0, 0, 0, 0, 0]); // [30].addr[0..6] @188+1200
  assert.deepEqual([...b.subarray(1400, 1406)], [10, 0, 1, 1, 0x76, 0x1b]); // port 7030
  assert.deepEqual(decodeVdiState(b).participants, many);
  const extra = [...many, { state: 0, nid: nid("10.0.1.1", 1) }];
  assert.throws(() => encodeVdiState({ ...STATE, participants: extra }), invalidParms);
  b.set([32, 0, 0, 0], 60);
  assert.throws(() => decodeVdiState(b), invalidParms);
});

Deno.test("encodeVdiStates() and decodeVdiStates() handle a GET_VDI_COPIES reply", () => {
  const second = { ...STATE, vid: 1, lockOwner: null, participants: [] };
  const b = encodeVdiStates([STATE, second]);
  assert.equal(b.length, 2856);
  assert.deepEqual(b.subarray(0, 1428), stateBytes());
  assert.deepEqual(decodeVdiStates(b), [STATE, second]);
  assert.deepEqual(decodeVdiStates(new Uint8Array(0)), []);
  assert.throws(() => decodeVdiStates(new Uint8Array(1429)), invalidParms);
});

Deno.test("decodeVdiState() refuses a record past the end", () => {
  assert.throws(() => decodeVdiState(new Uint8Array(1427)), invalidParms);
  assert.throws(() => decodeVdiState(new Uint8Array(1428), 1), invalidParms);
});

Deno.test("encodeVdiState() overwrites stale bytes when writing at an offset", () => {
  const out = new Uint8Array(1430).fill(0xab);
  encodeVdiState(STATE, out, 1);
  assert.deepEqual(out.subarray(1, 1429), stateBytes());
  assert.equal(out[0], 0xab);
  assert.equal(out[1429], 0xab);
});
