import assert from "node:assert/strict";
import {
  applyRelease,
  copyReferences,
  decodeIndex,
  freshLedger,
  getGref,
  GREF_SIZE,
  grefOffset,
  indexOffset,
  isAllZero,
  LEDGER_WORDS,
  ledgerPrefixBytes,
  ledgerWords,
  releasedReferences,
  setGref,
} from "./gref.ts";
import { SD_INODE_GREF_OFFSET } from "../proto/constants.ts";
import { Prng } from "../recovery/prng.ts";

Deno.test("gref: offsets", () => {
  assert.equal(indexOffset(0), 4664);
  assert.equal(indexOffset(3), 4664 + 12);
  assert.equal(grefOffset(0), SD_INODE_GREF_OFFSET);
  assert.equal(grefOffset(0), 4_198_968);
  assert.equal(grefOffset(2), 4_198_968 + 16);
});

Deno.test("gref: copyReferences bumps the source and gives the copy the next generation", () => {
  const index = Uint32Array.of(7, 0, 9);
  const grefs = new Uint8Array(3 * GREF_SIZE);
  setGref(grefs, 0, { generation: 2, count: 5 });
  setGref(grefs, 1, { generation: 4, count: 4 }); // unallocated: left alone
  const { source, copy } = copyReferences(index, grefs);
  assert.deepEqual(getGref(source, 0), { generation: 2, count: 6 });
  assert.deepEqual(getGref(source, 1), { generation: 4, count: 4 });
  assert.deepEqual(getGref(source, 2), { generation: 0, count: 1 });
  assert.deepEqual(getGref(copy, 0), { generation: 3, count: 0 });
  assert.deepEqual(getGref(copy, 1), { generation: 0, count: 0 });
  assert.deepEqual(getGref(copy, 2), { generation: 1, count: 0 });
  // inputs untouched
  assert.deepEqual(getGref(grefs, 0), { generation: 2, count: 5 });
});

Deno.test("gref: releasedReferences skips unchanged and newly allocated entries", () => {
  const grefs = new Uint8Array(4 * GREF_SIZE);
  setGref(grefs, 0, { generation: 1, count: 0 });
  setGref(grefs, 2, { generation: 0, count: 2 });
  setGref(grefs, 3, { generation: 3, count: 1 });
  const r = releasedReferences(
    10,
    Uint32Array.of(5, 0, 6, 6),
    Uint32Array.of(8, 8, 6, 0),
    grefs,
  );
  assert.deepEqual(r.releases, [
    { vid: 5, idx: 10, generation: 1, count: 0 },
    { vid: 6, idx: 13, generation: 3, count: 1 },
  ]);
  assert.deepEqual(r.changed, [0, 3]);
});

Deno.test("gref: ledger arithmetic as observed on v1.0", () => {
  // A snapshot still references the object after the working VDI replaced its entry.
  const l = freshLedger(ledgerPrefixBytes(1));
  applyRelease(l, 1, 0);
  assert.deepEqual(ledgerWords(l), [1, 0xffffffff]);
  assert.equal(isAllZero(l), false);
  applyRelease(l, 0, 1); // the snapshot goes too
  assert.deepEqual(ledgerWords(l), []);
  assert.equal(isAllZero(l), true);
});

Deno.test("gref: ledger bounds", () => {
  assert.equal(ledgerPrefixBytes(0), 4096);
  assert.equal(ledgerPrefixBytes(1022), 4096);
  assert.equal(ledgerPrefixBytes(1023), 8192);
  assert.throws(() => ledgerPrefixBytes(LEDGER_WORDS - 1));
  assert.throws(() => applyRelease(new Uint8Array(8), 1, 0));
  assert.deepEqual([...decodeIndex(Uint8Array.of(1, 0, 0, 0, 0, 1, 0, 0))], [1, 256]);
});

// ---------------------------------------------------------------------------------------------
// A model: inodes with data_vdi_id and gref, ledgers per object; random snapshots, clones,
// writes, rollbacks and deletes. The ledger must report an object unreferenced exactly when no
// inode entry names it, whatever the order in which releases are applied.

interface ModelInode {
  vid: number;
  entries: Uint32Array;
  grefs: Uint8Array;
  frozen: boolean;
  deleted: boolean;
}

const N = 6;

class Model {
  inodes = new Map<number, ModelInode>();
  ledgers = new Map<string, Uint8Array>();
  live = new Set<string>(); // objects that exist
  pending: { vid: number; idx: number; generation: number; count: number }[] = [];
  nextVid = 1;

  constructor(readonly rand: () => number) {}

  fresh(): number {
    const vid = this.nextVid++;
    this.inodes.set(vid, {
      vid,
      entries: new Uint32Array(N),
      grefs: new Uint8Array(N * GREF_SIZE),
      frozen: false,
      deleted: false,
    });
    return vid;
  }

  copyOf(base: ModelInode, freezeBase: boolean): number {
    const { source, copy } = copyReferences(base.entries, base.grefs);
    base.grefs = source;
    if (freezeBase) base.frozen = true;
    const vid = this.nextVid++;
    this.inodes.set(vid, {
      vid,
      entries: base.entries.slice(),
      grefs: copy,
      frozen: false,
      deleted: false,
    });
    return vid;
  }

  write(vid: number, idx: number): void {
    const ino = this.inodes.get(vid)!;
    assert(!ino.frozen && !ino.deleted);
    if (ino.entries[idx] === vid) return;
    this.live.add(`${vid}:${idx}`);
    this.setEntries(ino, idx, Uint32Array.of(vid));
  }

  setEntries(ino: ModelInode, first: number, values: Uint32Array): void {
    const before = ino.entries.slice(first, first + values.length);
    const grefs = ino.grefs.slice(first * GREF_SIZE, (first + values.length) * GREF_SIZE);
    const { releases, changed } = releasedReferences(first, before, values, grefs);
    ino.entries.set(values, first);
    for (const i of changed) setGref(ino.grefs, first + i, { generation: 0, count: 0 });
    this.pending.push(...releases);
  }

  remove(vid: number): void {
    const ino = this.inodes.get(vid)!;
    this.setEntries(ino, 0, new Uint32Array(N));
    ino.deleted = true;
    ino.frozen = true;
  }

  /** Applies some pending releases in random order. */
  drain(all: boolean): void {
    while (this.pending.length > 0) {
      if (!all && this.rand() < 0.3) return;
      const k = Math.floor(this.rand() * this.pending.length);
      const [r] = this.pending.splice(k, 1);
      const key = `${r.vid}:${r.idx}`;
      assert(this.live.has(key), `release of a removed object ${key}`);
      let l = this.ledgers.get(key) ?? freshLedger(4096);
      if (l.length < ledgerPrefixBytes(r.generation)) {
        const bigger = new Uint8Array(ledgerPrefixBytes(r.generation));
        bigger.set(l);
        l = bigger;
      }
      applyRelease(l, r.generation, r.count);
      if (isAllZero(l)) {
        this.ledgers.delete(key);
        this.live.delete(key);
        // Nothing may name it any more.
        for (const ino of this.inodes.values()) {
          assert(
            ino.entries[r.idx] !== r.vid,
            `object ${key} removed while inode ${ino.vid} uses it`,
          );
        }
      } else this.ledgers.set(key, l);
    }
  }

  check(): void {
    for (const ino of this.inodes.values()) {
      for (let i = 0; i < N; i++) {
        if (ino.entries[i] !== 0) assert(this.live.has(`${ino.entries[i]}:${i}`));
      }
    }
  }
}

Deno.test("gref: random families reclaim exactly the unreferenced objects", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const prng = new Prng(seed);
    const rand = () => prng.float();
    const m = new Model(rand);
    const working: number[] = [m.fresh()];
    const snapshots: number[] = [];
    for (let step = 0; step < 60; step++) {
      const r = rand();
      const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)];
      if (r < 0.45 && working.length > 0) {
        m.write(pick(working), Math.floor(rand() * N));
      } else if (r < 0.6 && working.length > 0) {
        const w = pick(working);
        const nw = m.copyOf(m.inodes.get(w)!, true); // snapshot
        working.splice(working.indexOf(w), 1, nw);
        snapshots.push(w);
      } else if (r < 0.7 && snapshots.length > 0) {
        working.push(m.copyOf(m.inodes.get(pick(snapshots))!, false)); // clone
      } else if (r < 0.75 && snapshots.length > 0 && working.length > 0) {
        // rebase (rollback): the working VDI freezes, a new one starts from a snapshot.
        const w = pick(working);
        m.inodes.get(w)!.frozen = true;
        const nw = m.copyOf(m.inodes.get(pick(snapshots))!, false);
        working.splice(working.indexOf(w), 1, nw);
        snapshots.push(w);
      } else if (r < 0.9) {
        const all = [...working, ...snapshots];
        if (all.length === 0) continue;
        const v = pick(all);
        m.remove(v);
        if (working.includes(v)) working.splice(working.indexOf(v), 1);
        else snapshots.splice(snapshots.indexOf(v), 1);
      }
      m.drain(false);
      m.check();
    }
    for (const v of [...working, ...snapshots].sort(() => rand() - 0.5)) m.remove(v);
    m.drain(true);
    assert.equal(m.live.size, 0, `seed ${seed}: objects left ${[...m.live]}`);
    assert.equal(m.ledgers.size, 0, `seed ${seed}: ledgers left`);
  }
});
