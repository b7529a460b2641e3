import assert from "node:assert/strict";
import { Res, SD_NR_VDIS } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { vidOfName } from "../hash/oid.ts";
import { VdiBitmap } from "./bitmap.ts";
import {
  chooseVdi,
  type FoundVdi,
  matchVdiHeader,
  planLookup,
  type VdiLookupHeader,
  type VdiWant,
  vidSlotOfName,
} from "./vid_alloc.ts";

const LAST = SD_NR_VDIS - 1;

/** A cluster's VDI state as the tests drive it: bitmaps plus the inode headers on "disk". */
class Cluster {
  inUse = new VdiBitmap();
  deleted = new VdiBitmap();
  inodes = new Map<number, VdiLookupHeader>();
  constructor(readonly recycle = false) {}

  lookup(name: string, want: VdiWant = {}) {
    const plan = planLookup(this.inUse, this.deleted, name, this.recycle);
    const found: FoundVdi[] = plan.candidates.map((vid) => ({
      vid,
      header: this.inodes.get(vid)!,
    }));
    return { plan, choice: chooseVdi(found, name, want) };
  }

  /** dog vdi create: fails unless the name is unknown. */
  create(name: string): number {
    const { plan, choice } = this.lookup(name);
    assert.notEqual(choice.result, Res.SUCCESS, `${name} exists`);
    assert.notEqual(plan.freeVid, null);
    const vid = plan.freeVid!;
    this.inUse.set(vid);
    this.inodes.set(vid, { name, tag: "", snapId: 1, snapCtime: 0n });
    return vid;
  }

  /** dog vdi snapshot: the working VDI becomes a snapshot, a new working VDI takes the free vid. */
  snapshot(name: string, tag = ""): number {
    const { plan, choice } = this.lookup(name);
    assert.equal(choice.result, Res.SUCCESS);
    const base = this.inodes.get(choice.vid!)!;
    base.tag = tag;
    base.snapCtime = 1n;
    const vid = plan.freeVid!;
    this.inUse.set(vid);
    this.inodes.set(vid, { name, tag: "", snapId: base.snapId + 1, snapCtime: 0n });
    return vid;
  }

  /** dog vdi delete: the inode's name is cleared, the deleted bit set, the in-use bit kept. */
  delete(vid: number): void {
    this.inodes.get(vid)!.name = "";
    this.deleted.set(vid);
  }
}

/** Two distinct names with the same masked hash, found by a small birthday search. */
function collidingNames(prefix: string): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0;; i++) {
    const name = prefix + i;
    const h = vidOfName(name);
    const other = seen.get(h);
    if (other !== undefined && h > 0 && h < LAST - 8) return [other, name];
    seen.set(h, name);
  }
}

const header = (name: string, snapId: number, snapCtime = 0n, tag = ""): VdiLookupHeader => ({
  name,
  tag,
  snapId,
  snapCtime,
});

Deno.test("planLookup() on an empty map gives the name's hash slot and nothing to read", () => {
  const c = new Cluster();
  const { plan, choice } = c.lookup("test");
  assert.deepEqual(plan, { freeVid: 0x7c2b25, candidates: [] });
  assert.deepEqual(choice, { result: Res.NO_VDI });
});

Deno.test("a VDI takes its hash slot and its snapshots take the following vids", () => {
  const c = new Cluster();
  assert.equal(c.create("test"), 0x7c2b25);
  assert.equal(c.snapshot("test", "s1"), 0x7c2b26);
  assert.equal(c.snapshot("test"), 0x7c2b27);
  const { plan, choice } = c.lookup("test");
  assert.deepEqual(plan, { freeVid: 0x7c2b28, candidates: [0x7c2b27, 0x7c2b26, 0x7c2b25] });
  assert.deepEqual(choice, { result: Res.SUCCESS, vid: 0x7c2b27 });
  assert.deepEqual(c.lookup("test", { tag: "s1" }).choice, { result: Res.SUCCESS, vid: 0x7c2b25 });
  assert.deepEqual(c.lookup("test", { snapId: 2 }).choice, { result: Res.SUCCESS, vid: 0x7c2b26 });
  assert.deepEqual(c.lookup("test", { snapId: 1 }).choice, { result: Res.SUCCESS, vid: 0x7c2b25 });
  assert.deepEqual(c.lookup("test", { tag: "nope" }).choice, { result: Res.NO_TAG });
  assert.deepEqual(c.lookup("test", { snapId: 9 }).choice, { result: Res.NO_TAG });
});

Deno.test("a lookup by snap id skips the working VDI even when its snap_id matches", () => {
  const c = new Cluster();
  c.create("test");
  c.snapshot("test");
  // The working VDI at 7c2b26 has snap_id 2 but is not a snapshot.
  assert.deepEqual(c.lookup("test", { snapId: 2 }).choice, { result: Res.NO_TAG });
  assert.deepEqual(c.lookup("test", { snapId: 0 }).choice, { result: Res.SUCCESS, vid: 0x7c2b26 });
});

Deno.test("a tag wins over a snap id and an empty tag means no tag", () => {
  const c = new Cluster();
  c.create("test");
  c.snapshot("test", "a");
  c.snapshot("test", "b");
  assert.deepEqual(c.lookup("test", { tag: "a", snapId: 2 }).choice, {
    result: Res.SUCCESS,
    vid: 0x7c2b25,
  });
  assert.deepEqual(c.lookup("test", { tag: "", snapId: 2 }).choice, {
    result: Res.SUCCESS,
    vid: 0x7c2b26,
  });
});

Deno.test("two names with the same hash share one run and are told apart by their inodes", () => {
  const [a, b] = collidingNames("vm-");
  const h = vidOfName(a);
  assert.equal(vidOfName(b), h);
  const c = new Cluster();
  assert.equal(c.create(a), h);
  assert.deepEqual(c.lookup(b), {
    plan: { freeVid: h + 1, candidates: [h] },
    choice: { result: Res.NO_VDI },
  });
  assert.equal(c.create(b), h + 1);
  assert.equal(c.snapshot(a), h + 2);
  assert.deepEqual(c.lookup(a).plan.candidates, [h + 2, h + 1, h]);
  assert.deepEqual(c.lookup(a).choice, { result: Res.SUCCESS, vid: h + 2 });
  assert.deepEqual(c.lookup(b).choice, { result: Res.SUCCESS, vid: h + 1 });
  assert.deepEqual(c.lookup(a, { snapId: 1 }).choice, { result: Res.SUCCESS, vid: h });
  assert.deepEqual(c.lookup(b, { snapId: 1 }).choice, { result: Res.NO_TAG });
});

Deno.test("a name hashing into a neighbour's run is placed after the run", () => {
  const c = new Cluster();
  for (let v = 0x7c2b20; v < 0x7c2b30; v++) {
    c.inUse.set(v);
    c.inodes.set(v, header("other" + v, 1));
  }
  const { plan, choice } = c.lookup("test");
  assert.equal(plan.freeVid, 0x7c2b30);
  assert.deepEqual(
    plan.candidates,
    [0x7c2b2f, 0x7c2b2e, 0x7c2b2d, 0x7c2b2c, 0x7c2b2b].concat(
      [0x7c2b2a, 0x7c2b29, 0x7c2b28, 0x7c2b27, 0x7c2b26, 0x7c2b25],
    ),
  );
  assert.equal(choice.result, Res.NO_VDI);
});

Deno.test("a name whose hash is 0 starts at vid 1, and vid 0 is never used", () => {
  assert.equal(vidOfName("zi7rxc"), 0);
  assert.equal(vidSlotOfName("zi7rxc"), 1);
  const c = new Cluster();
  assert.equal(c.create("zi7rxc"), 1);
  assert.equal(c.snapshot("zi7rxc"), 2);
  assert.deepEqual(c.lookup("zi7rxc").plan, { freeVid: 3, candidates: [2, 1] });
  assert.equal(c.inUse.test(0), false);
});

Deno.test("a run reaching 2^24-1 wraps around to vid 1", () => {
  assert.equal(vidOfName("00471718"), 0xfffff9);
  const c = new Cluster();
  assert.equal(c.create("00471718"), 0xfffff9);
  for (let i = 0; i < 6; i++) c.snapshot("00471718");
  assert.equal(c.inUse.test(LAST), true);
  // The run now fills fffff9..ffffff: the next member wraps to 1, skipping vid 0.
  assert.equal(c.snapshot("00471718"), 1);
  assert.equal(c.snapshot("00471718", "t"), 2);
  const { plan, choice } = c.lookup("00471718");
  assert.deepEqual(plan, {
    freeVid: 3,
    candidates: [2, 1, 0xffffff, 0xfffffe, 0xfffffd, 0xfffffc, 0xfffffb, 0xfffffa, 0xfffff9],
  });
  assert.deepEqual(choice, { result: Res.SUCCESS, vid: 2 });
  assert.deepEqual(c.lookup("00471718", { tag: "t" }).choice, { result: Res.SUCCESS, vid: 1 });
  assert.deepEqual(c.lookup("00471718", { snapId: 1 }).choice, {
    result: Res.SUCCESS,
    vid: 0xfffff9,
  });
});

Deno.test("a name hashing to 2^24-1 wraps right after its first VDI", () => {
  assert.equal(vidOfName("zneaj"), LAST);
  const c = new Cluster();
  assert.equal(c.create("zneaj"), LAST);
  assert.deepEqual(c.lookup("zneaj").plan, { freeVid: 1, candidates: [LAST] });
  assert.equal(c.snapshot("zneaj"), 1);
  assert.deepEqual(c.lookup("zneaj").plan, { freeVid: 2, candidates: [1, LAST] });
});

Deno.test("a full bitmap gives no free vid (FULL_VDI) and nothing to read", () => {
  const c = new Cluster();
  c.inUse.bytes.fill(0xff);
  c.inUse.clear(0); // vid 0 being clear does not help
  assert.deepEqual(planLookup(c.inUse, c.deleted, "test", false), {
    freeVid: null,
    candidates: [],
  });
  c.inUse.clear(5);
  const plan = planLookup(c.inUse, c.deleted, "test", false);
  assert.equal(plan.freeVid, 5);
  assert.equal(plan.candidates.length, 4 + (SD_NR_VDIS - 0x7c2b25));
  assert.deepEqual(plan.candidates.slice(0, 5), [4, 3, 2, 1, LAST]);
  assert.equal(plan.candidates.at(-1), 0x7c2b25);
});

Deno.test("deleted VDIs keep their vid, are read, and never match their old name", () => {
  const c = new Cluster();
  c.create("test");
  c.snapshot("test", "s1");
  c.delete(0x7c2b26); // the working VDI
  const { plan, choice } = c.lookup("test");
  assert.deepEqual(plan, { freeVid: 0x7c2b27, candidates: [0x7c2b26, 0x7c2b25] });
  // Only the snapshot is left under that name.
  assert.deepEqual(choice, { result: Res.NO_TAG });
  assert.deepEqual(c.lookup("test", { tag: "s1" }).choice, { result: Res.SUCCESS, vid: 0x7c2b25 });
  c.delete(0x7c2b25);
  assert.deepEqual(c.lookup("test").choice, { result: Res.NO_VDI });
  // Without RECYCLE_VID a deleted vid is never taken again.
  assert.equal(c.create("test"), 0x7c2b27);
});

Deno.test("RECYCLE_VID: the free vid is the first clear bit from 1 and every used vid is read", () => {
  const c = new Cluster(true);
  assert.equal(c.create("test"), 1);
  assert.equal(c.create("Alice"), 2);
  assert.equal(c.snapshot("test"), 3);
  assert.deepEqual(c.lookup("test").plan, { freeVid: 4, candidates: [3, 2, 1] });
  assert.deepEqual(c.lookup("test").choice, { result: Res.SUCCESS, vid: 3 });
  assert.deepEqual(c.lookup("test", { snapId: 1 }).choice, { result: Res.SUCCESS, vid: 1 });
  assert.deepEqual(c.lookup("Bob").choice, { result: Res.NO_VDI });
  // A family freed by GC clears its in-use bits: the vids are reused, lowest first.
  c.delete(2);
  c.inUse.clear(2);
  c.deleted.clear(2);
  c.inUse.set(LAST);
  c.inodes.set(LAST, header("far", 1));
  c.deleted.set(0x500);
  c.inodes.set(0x500, header("", 1));
  assert.deepEqual(c.lookup("x").plan, { freeVid: 2, candidates: [LAST, 0x500, 3, 1] });
  assert.equal(c.create("Bob"), 2);
});

Deno.test("RECYCLE_VID: a full map has no free vid but can still be searched", () => {
  const inUse = new VdiBitmap();
  inUse.bytes.fill(0xff);
  const plan = planLookup(inUse, new VdiBitmap(), "test", true);
  assert.equal(plan.freeVid, null);
  assert.equal(plan.candidates.length, SD_NR_VDIS - 1);
  assert.equal(plan.candidates[0], LAST);
  assert.equal(plan.candidates.at(-1), 1);
});

Deno.test("matchVdiHeader() classifies headers for an early stop", () => {
  const working = header("test", 3);
  const snap = header("test", 2, 5n, "t");
  assert.equal(matchVdiHeader(working, "test", {}), "match");
  assert.equal(matchVdiHeader(snap, "test", {}), "name");
  assert.equal(matchVdiHeader(header("", 1), "test", {}), "other");
  assert.equal(matchVdiHeader(working, "tes", {}), "other");
  assert.equal(matchVdiHeader(snap, "test", { tag: "t" }), "match");
  assert.equal(matchVdiHeader(snap, "test", { snapId: 2 }), "match");
  assert.equal(matchVdiHeader(working, "test", { snapId: 3 }), "name");
  assert.equal(matchVdiHeader({ ...working, tag: "t" }, "test", { tag: "t" }), "name");
});

Deno.test("chooseVdi() takes the first match in scan order", () => {
  const found: FoundVdi[] = [
    { vid: 9, header: header("a", 2, 0n) },
    { vid: 8, header: header("a", 1, 0n) }, // an older working VDI never wins over a newer one
  ];
  assert.deepEqual(chooseVdi(found, "a", {}), { result: Res.SUCCESS, vid: 9 });
  assert.deepEqual(chooseVdi([], "a", {}), { result: Res.NO_VDI });
});

Deno.test("planLookup() and chooseVdi() reject an empty name or a bad snap id", () => {
  const isInvalid = (e: unknown) => e instanceof SdError && e.result === Res.INVALID_PARMS;
  assert.throws(() => planLookup(new VdiBitmap(), new VdiBitmap(), "", false), isInvalid);
  assert.throws(() => chooseVdi([], "", {}), isInvalid);
  assert.throws(() => chooseVdi([], "a", { snapId: -1 }), isInvalid);
  assert.throws(() => chooseVdi([], "a", { snapId: 2 ** 32 }), isInvalid);
});
