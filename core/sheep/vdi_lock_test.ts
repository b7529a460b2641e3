import assert from "node:assert/strict";
import { LockState, LockType, Res } from "../proto/constants.ts";
import { makeNode, type NodeId } from "../proto/node.ts";
import { lockVdi, moveLock, releaseLocksOf, releaseVdi, sameNid } from "./vdi_lock.ts";
import { VdiRegistry } from "./vdi_registry.ts";

const A: NodeId = makeNode("127.0.0.1", 7000).nid;
const B: NodeId = makeNode("127.0.0.1", 7001).nid;
const C: NodeId = makeNode("10.0.0.1", 7000).nid;

function registry(...vids: number[]): VdiRegistry {
  const r = new VdiRegistry();
  for (const vid of vids) {
    r.add({
      vid,
      nrCopies: 2,
      copyPolicy: 0,
      blockSizeShift: 22,
      snapshot: false,
      deleted: false,
      parentVid: 0,
    });
  }
  return r;
}

Deno.test("sameNid() compares address and port only", () => {
  assert.ok(sameNid(A, { ...A, ioPort: 9 }));
  assert.ok(!sameNid(A, B));
  assert.ok(!sameNid(A, C));
});

Deno.test("lockVdi() normal lock is exclusive, also against the same node", () => {
  const r = registry(10);
  assert.equal(lockVdi(r, 10, LockType.NORMAL, A), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.LOCKED);
  assert.ok(sameNid(r.get(10)!.lockOwner!, A));
  assert.equal(lockVdi(r, 10, LockType.NORMAL, B), Res.VDI_LOCKED);
  assert.equal(lockVdi(r, 10, LockType.NORMAL, A), Res.VDI_LOCKED);
  assert.equal(lockVdi(r, 10, LockType.SHARED, B), Res.VDI_LOCKED);
  assert.ok(sameNid(r.get(10)!.lockOwner!, A));
});

Deno.test("lockVdi() refuses a missing or deleted VDI and an unknown lock type", () => {
  const r = registry(10, 11);
  r.markDeleted(11);
  assert.equal(lockVdi(r, 12, LockType.NORMAL, A), Res.NO_VDI);
  assert.equal(lockVdi(r, 11, LockType.NORMAL, A), Res.NO_VDI);
  assert.equal(lockVdi(r, 10, 7, A), Res.INVALID_PARMS);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
});

Deno.test("lockVdi() shared locks collect participants once each, and block normal locks", () => {
  const r = registry(10);
  assert.equal(lockVdi(r, 10, LockType.SHARED, A), Res.SUCCESS);
  assert.equal(lockVdi(r, 10, LockType.SHARED, B), Res.SUCCESS);
  assert.equal(lockVdi(r, 10, LockType.SHARED, A), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.SHARED);
  assert.equal(r.get(10)!.participants.length, 2);
  assert.equal(lockVdi(r, 10, LockType.NORMAL, C), Res.VDI_LOCKED);
});

Deno.test("lockVdi() refuses a 32nd shared participant (vdi_state has 31 slots)", () => {
  const r = registry(10);
  for (let i = 0; i < 31; i++) {
    assert.equal(lockVdi(r, 10, LockType.SHARED, makeNode("127.0.0.1", 8000 + i).nid), 0);
  }
  assert.equal(lockVdi(r, 10, LockType.SHARED, A), Res.VDI_LOCKED);
});

Deno.test("releaseVdi() frees only the requester's lock unless forced", () => {
  const r = registry(10);
  assert.equal(releaseVdi(r, 10, A, false), Res.VDI_NOT_LOCKED);
  assert.equal(releaseVdi(r, 10, A, true), Res.VDI_NOT_LOCKED);
  lockVdi(r, 10, LockType.NORMAL, A);
  assert.equal(releaseVdi(r, 10, B, false), Res.VDI_NOT_LOCKED);
  assert.equal(r.get(10)!.lockState, LockState.LOCKED);
  assert.equal(releaseVdi(r, 10, A, false), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  assert.equal(r.get(10)!.lockOwner, null);
  lockVdi(r, 10, LockType.NORMAL, A);
  assert.equal(releaseVdi(r, 10, B, true), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  assert.equal(lockVdi(r, 10, LockType.NORMAL, B), Res.SUCCESS);
  assert.equal(releaseVdi(r, 99, A, true), Res.NO_VDI);
});

Deno.test("releaseVdi() of a shared lock drops the participant; forced, it drops them all", () => {
  const r = registry(10);
  lockVdi(r, 10, LockType.SHARED, A);
  lockVdi(r, 10, LockType.SHARED, B);
  assert.equal(releaseVdi(r, 10, C, false), Res.VDI_NOT_LOCKED);
  assert.equal(releaseVdi(r, 10, A, false), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.SHARED);
  assert.equal(releaseVdi(r, 10, B, false), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  lockVdi(r, 10, LockType.SHARED, A);
  lockVdi(r, 10, LockType.SHARED, B);
  assert.equal(releaseVdi(r, 10, C, true), Res.SUCCESS);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  assert.deepEqual(r.get(10)!.participants, []);
});

Deno.test("releaseLocksOf() frees the normal locks and shared participations of a node", () => {
  const r = registry(10, 11, 12, 13);
  lockVdi(r, 10, LockType.NORMAL, A);
  lockVdi(r, 11, LockType.NORMAL, B);
  lockVdi(r, 12, LockType.SHARED, A);
  lockVdi(r, 13, LockType.SHARED, A);
  lockVdi(r, 13, LockType.SHARED, B);
  assert.deepEqual(releaseLocksOf(r, A).sort(), [10, 12, 13]);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  assert.equal(r.get(11)!.lockState, LockState.LOCKED);
  assert.equal(r.get(12)!.lockState, LockState.UNLOCKED);
  assert.equal(r.get(13)!.lockState, LockState.SHARED);
  assert.equal(r.get(13)!.participants.length, 1);
  assert.deepEqual(releaseLocksOf(r, A), []);
});

Deno.test("VdiRegistry.merge() carries lock state to a joiner, and not back from one", () => {
  const member = registry(10, 11);
  lockVdi(member, 10, LockType.NORMAL, A);
  lockVdi(member, 11, LockType.SHARED, B);
  const joiner = registry(10);
  joiner.merge(member.encode());
  assert.equal(joiner.get(10)!.lockState, LockState.LOCKED);
  assert.ok(sameNid(joiner.get(10)!.lockOwner!, A));
  assert.equal(joiner.get(11)!.lockState, LockState.SHARED);
  assert.ok(sameNid(joiner.get(11)!.participants[0].nid, B));
  const other = registry(10);
  other.merge(member.encode(), { locks: false });
  assert.equal(other.get(10)!.lockState, LockState.UNLOCKED);
  assert.equal(other.get(11)!.lockState, LockState.UNLOCKED);
  assert.deepEqual(other.get(11)!.participants, []);
});

Deno.test("moveLock() hands a snapshotted VDI's lock to its new working VDI", () => {
  const r = registry(10, 11, 12);
  assert.equal(moveLock(r, 10, 11), false, "nothing to move");
  assert.equal(lockVdi(r, 10, LockType.NORMAL, A), Res.SUCCESS);
  assert.equal(moveLock(r, 10, 11), true);
  assert.equal(r.get(10)!.lockState, LockState.UNLOCKED);
  assert.equal(r.get(11)!.lockState, LockState.LOCKED);
  assert.equal(lockVdi(r, 11, LockType.NORMAL, B), Res.VDI_LOCKED, "a second writer is refused");
  assert.equal(releaseVdi(r, 11, A, false), Res.SUCCESS, "the owner releases the new vid");
  assert.equal(moveLock(r, 10, 99), false, "unknown target");
  assert.equal(lockVdi(r, 12, LockType.SHARED, A), Res.SUCCESS);
  assert.equal(lockVdi(r, 12, LockType.SHARED, B), Res.SUCCESS);
  assert.equal(moveLock(r, 12, 10), true);
  assert.equal(r.get(10)!.participants.length, 2);
  assert.equal(r.get(12)!.participants.length, 0);
});

Deno.test("VdiRegistry.merge() completes a record learnt from a lock, keeping the lock", () => {
  const r = new VdiRegistry();
  r.add({
    vid: 7,
    nrCopies: 3,
    copyPolicy: 0,
    blockSizeShift: 22,
    snapshot: false,
    deleted: false,
    parentVid: 0,
    partial: true,
  });
  assert.ok(r.hasPartial());
  assert.equal(lockVdi(r, 7, LockType.NORMAL, A), Res.SUCCESS);
  const peer = registry(5, 7);
  peer.get(7)!.parentVid = 5;
  peer.get(7)!.nrCopies = 2;
  r.merge(peer.encode(), { locks: false });
  assert.ok(!r.hasPartial());
  assert.equal(r.get(7)!.parentVid, 5);
  assert.equal(r.get(7)!.nrCopies, 2);
  assert.equal(r.get(7)!.lockState, LockState.LOCKED, "the lock stays");
});
