/**
 * The contract every ObjectStore implementation passes (plain store, in-memory store of the
 * simulation, multi-disk stores): `runStoreContract(name, makeStore)` registers one Deno.test per
 * rule. Behaviour only; on-disk details are tested by each implementation beside it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import type { ObjectStore } from "./object_store.ts";

/** A store under test and its backing. */
export interface StoreFixture {
  /** The store under test. */
  readonly store: ObjectStore;
  /** Closes the current store and opens a new one over the same backing (restart). */
  reopen(): Promise<ObjectStore>;
  /** Closes the current store and frees its backing. */
  dispose(): Promise<void>;
}

/** Makes a fresh, empty store. */
export type MakeStore = () => Promise<StoreFixture>;

const KIB = 1024;
const MIB = 1024 * KIB;
/** Small objects keep the suite fast; one test uses the real 4 MiB size. */
const OBJ_SIZE = 1 * MIB;
const INODE_SIZE = 12_587_576;
const DATA_OID = 0x007c2b250000000fn;
const INODE_OID = 0x807c2b2500000000n;
const LEDGER_OID = 0x087c2b2500000000n;

/** Deterministic non-zero bytes. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (x >>> 16) | 1;
  }
  return out;
}

/** Asserts that `promise` rejects with an SdError of `result`. */
export async function rejectsWith(promise: Promise<unknown>, result: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SdError, `expected SdError, got ${err}`);
    assert.equal(err.result, result, `expected result ${result}, got ${err.result}: ${err}`);
    return true;
  });
}

/** The expected content of an object: zeros with `data` at `offset`. */
function imageOf(size: number, offset: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(size);
  out.set(data, offset);
  return out;
}

/** Registers the contract tests for the store made by `makeStore`. */
export function runStoreContract(name: string, makeStore: MakeStore): void {
  const test = (title: string, body: (fx: StoreFixture) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const fx = await makeStore();
      try {
        await body(fx);
      } finally {
        await fx.dispose();
      }
    });

  test("a created object reads back its data at unaligned offsets and zeros elsewhere", async ({ store }) => {
    const data = patternBytes(5000, 1);
    await store.create(DATA_OID, 1234, data, OBJ_SIZE, { sparse: false });
    const image = imageOf(OBJ_SIZE, 1234, data);
    assert.equal(await store.size(DATA_OID), OBJ_SIZE);
    assert.equal(await store.exists(DATA_OID), true);
    for (const [off, len] of [[0, OBJ_SIZE], [1233, 3], [1234, 5000], [4095, 4099], [6000, 1]]) {
      assert.deepEqual(await store.read(DATA_OID, off, len), image.subarray(off, off + len));
    }
  });

  test("writes at unaligned offsets round trip through read and readInto", async ({ store }) => {
    await store.create(DATA_OID, 0, new Uint8Array(0), OBJ_SIZE, { sparse: false });
    const image = new Uint8Array(OBJ_SIZE);
    const writes: [number, number][] = [[1, 7], [4097, 8191], [OBJ_SIZE - 3, 3], [65535, 2]];
    for (const [i, [off, len]] of writes.entries()) {
      const data = patternBytes(len, 10 + i);
      await store.write(DATA_OID, off, data);
      image.set(data, off);
    }
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), image);
    const buf = new Uint8Array(9000);
    await store.readInto(DATA_OID, 4000, buf);
    assert.deepEqual(buf, image.subarray(4000, 13000));
  });

  test("a read of length zero returns no bytes", async ({ store }) => {
    await store.create(DATA_OID, 0, patternBytes(10, 2), OBJ_SIZE, { sparse: false });
    assert.equal((await store.read(DATA_OID, OBJ_SIZE, 0)).length, 0);
  });

  test("reads and writes beyond the object's size fail with INVALID_PARMS", async ({ store }) => {
    const data = patternBytes(100, 3);
    await store.create(DATA_OID, 0, data, OBJ_SIZE, { sparse: false });
    await rejectsWith(store.read(DATA_OID, OBJ_SIZE - 10, 20), Res.INVALID_PARMS);
    await rejectsWith(store.read(DATA_OID, OBJ_SIZE, 1), Res.INVALID_PARMS);
    await rejectsWith(store.read(DATA_OID, -1, 1), Res.INVALID_PARMS);
    await rejectsWith(store.readInto(DATA_OID, 1, new Uint8Array(OBJ_SIZE)), Res.INVALID_PARMS);
    await rejectsWith(store.write(DATA_OID, OBJ_SIZE - 1, new Uint8Array(2)), Res.INVALID_PARMS);
    await rejectsWith(store.write(DATA_OID, -4096, new Uint8Array(1)), Res.INVALID_PARMS);
    await rejectsWith(store.write(DATA_OID, 0.5, new Uint8Array(1)), Res.INVALID_PARMS);
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), imageOf(OBJ_SIZE, 0, data));
  });

  test("a missing object is NO_OBJ for every operation and does not exist", async ({ store }) => {
    assert.equal(await store.exists(DATA_OID), false);
    await rejectsWith(store.size(DATA_OID), Res.NO_OBJ);
    await rejectsWith(store.read(DATA_OID, 0, 1), Res.NO_OBJ);
    await rejectsWith(store.readInto(DATA_OID, 0, new Uint8Array(1)), Res.NO_OBJ);
    await rejectsWith(store.write(DATA_OID, 0, new Uint8Array(1)), Res.NO_OBJ);
    await rejectsWith(store.sha1(DATA_OID), Res.NO_OBJ);
    await rejectsWith(store.remove(DATA_OID), Res.NO_OBJ);
    await rejectsWith(store.moveToStale(DATA_OID, 1), Res.NO_OBJ);
    assert.deepEqual(await store.list(), []);
  });

  test("creating an existing object fails with OID_EXIST and keeps its content", async ({ store }) => {
    const first = patternBytes(4096, 4);
    await store.create(DATA_OID, 0, first, OBJ_SIZE, { sparse: false });
    await rejectsWith(
      store.create(DATA_OID, 0, patternBytes(4096, 5), OBJ_SIZE, { sparse: false }),
      Res.OID_EXIST,
    );
    assert.deepEqual(await store.read(DATA_OID, 0, 4096), first);
  });

  test("a create with data beyond the object size fails with INVALID_PARMS and creates nothing", async ({ store }) => {
    await rejectsWith(
      store.create(DATA_OID, OBJ_SIZE - 10, new Uint8Array(11), OBJ_SIZE, { sparse: false }),
      Res.INVALID_PARMS,
    );
    assert.equal(await store.exists(DATA_OID), false);
    assert.deepEqual(await store.list(), []);
  });

  test("concurrent creates of one object: one wins, the others get OID_EXIST", async ({ store }) => {
    const results = await Promise.allSettled(
      Array.from(
        { length: 5 },
        (_, i) =>
          store.create(DATA_OID, 0, patternBytes(8192, 20 + i), OBJ_SIZE, { sparse: false }),
      ),
    );
    const won = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === "rejected") {
        assert.ok(r.reason instanceof SdError && r.reason.result === Res.OID_EXIST, `${r.reason}`);
      }
    }
    assert.deepEqual(await store.read(DATA_OID, 0, 8192), patternBytes(8192, 20 + won[0]));
  });

  test("concurrent writes at different offsets of one object all land", async ({ store }) => {
    await store.create(DATA_OID, 0, new Uint8Array(0), OBJ_SIZE, { sparse: false });
    const image = new Uint8Array(OBJ_SIZE);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) {
      const off = i * 16 * KIB + (i % 7);
      const data = patternBytes(4096 + (i % 3), 100 + i);
      image.set(data, off);
      writes.push(store.write(DATA_OID, off, data));
    }
    await Promise.all(writes);
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), image);
  });

  test("a read concurrent with a create sees NO_OBJ or the whole object", async ({ store }) => {
    const size = 4 * MIB;
    const data = patternBytes(size, 6);
    let done = false;
    const creating = store.create(DATA_OID, 0, data, size, { sparse: false }).finally(() => {
      done = true;
    });
    let complete = 0;
    while (!done || complete === 0) {
      const afterCreate = done;
      try {
        const got = await store.read(DATA_OID, 0, size);
        assert.ok(got.every((b, i) => b === data[i]), "a read saw a partial object");
        complete++;
      } catch (err) {
        assert.ok(err instanceof SdError && err.result === Res.NO_OBJ, `${err}`);
        assert.ok(!afterCreate, "NO_OBJ from a read begun after the create resolved");
      }
    }
    await creating;
    assert.ok(complete >= 1);
  });

  test("list returns every object's oid in ascending order, high bits included", async ({ store }) => {
    const oids = [INODE_OID, DATA_OID, LEDGER_OID, 0n, 0xffffffffffffffffn, 0x4000000000000001n];
    for (const oid of oids) {
      await store.create(oid, 0, patternBytes(16, 7), 4096, { sparse: false });
    }
    assert.deepEqual(await store.list(), [...oids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test("a removed object is gone, rejects I/O through any cached handle, and can be created again", async ({ store }) => {
    await store.create(DATA_OID, 0, patternBytes(4096, 8), OBJ_SIZE, { sparse: false });
    await store.write(DATA_OID, 0, patternBytes(10, 9));
    await store.remove(DATA_OID);
    assert.equal(await store.exists(DATA_OID), false);
    await rejectsWith(store.write(DATA_OID, 0, patternBytes(10, 9)), Res.NO_OBJ);
    await rejectsWith(store.read(DATA_OID, 0, 1), Res.NO_OBJ);
    assert.deepEqual(await store.list(), []);
    await store.create(DATA_OID, 0, patternBytes(4096, 10), OBJ_SIZE, { sparse: false });
    assert.deepEqual(await store.read(DATA_OID, 0, 4096), patternBytes(4096, 10));
    assert.deepEqual(await store.read(DATA_OID, 4096, 4096), new Uint8Array(4096));
  });

  test("sha1 is the SHA-1 of the whole object", async ({ store }) => {
    const data = patternBytes(3000, 11);
    await store.create(DATA_OID, 777, data, OBJ_SIZE, { sparse: false });
    const want = createHash("sha1").update(imageOf(OBJ_SIZE, 777, data)).digest();
    const got = await store.sha1(DATA_OID);
    assert.equal(got.length, 20);
    assert.deepEqual(got, new Uint8Array(want));
  });

  test("a sparse inode-sized object reads back its data and zeros elsewhere", async ({ store }) => {
    const header = patternBytes(4664, 12);
    const inode = new Uint8Array(INODE_SIZE);
    inode.set(header, 0);
    inode[4664 + 4 * 5] = 0x25;
    await store.create(INODE_OID, 0, inode, INODE_SIZE, { sparse: true });
    assert.equal(await store.size(INODE_OID), INODE_SIZE);
    assert.deepEqual(await store.read(INODE_OID, 0, INODE_SIZE), inode);
    await store.create(LEDGER_OID, 4096, new Uint8Array(8192), 4 * MIB, { sparse: true });
    assert.deepEqual(await store.read(LEDGER_OID, 0, 4 * MIB), new Uint8Array(4 * MIB));
  });

  test("a full-object create with the default 4 MiB size round trips", async ({ store }) => {
    const data = patternBytes(4 * MIB, 13);
    await store.create(DATA_OID, 0, data, 4 * MIB, { sparse: false });
    assert.deepEqual(await store.read(DATA_OID, 0, 4 * MIB), data);
  });

  test("objects survive a restart of the store", async (fx) => {
    const data = patternBytes(5000, 14);
    await fx.store.create(DATA_OID, 100, data, OBJ_SIZE, { sparse: false });
    await fx.store.write(DATA_OID, 9000, data);
    await fx.store.moveToStale(DATA_OID, 3);
    await fx.store.create(INODE_OID, 0, data, INODE_SIZE, { sparse: true });
    const store = await fx.reopen();
    assert.deepEqual(await store.list(), [INODE_OID]);
    assert.deepEqual(await store.read(INODE_OID, 0, 5000), data);
    assert.deepEqual(await store.listStale(), [{ oid: DATA_OID, epoch: 3 }]);
    assert.deepEqual(await store.readStale(DATA_OID, 3, 9000, 5000), data);
  });

  test("writeback writes and creates are visible at once, and flush() makes them survive a restart", async (fx) => {
    const a = patternBytes(5000, 31);
    const b = patternBytes(3000, 32);
    await fx.store.create(DATA_OID, 100, a, OBJ_SIZE, { sparse: false, writeback: true });
    assert.deepEqual(await fx.store.read(DATA_OID, 100, 5000), a);
    await fx.store.write(DATA_OID, 9000, b, true);
    assert.deepEqual(await fx.store.read(DATA_OID, 9000, 3000), b);
    await fx.store.create(INODE_OID, 0, a, INODE_SIZE, { sparse: true, writeback: true });
    await fx.store.flush();
    await fx.store.flush();
    const store = await fx.reopen();
    assert.deepEqual(await store.list(), [DATA_OID, INODE_OID]);
    const want = imageOf(OBJ_SIZE, 100, a);
    want.set(b, 9000);
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), want);
    assert.deepEqual(await store.read(INODE_OID, 0, 5000), a);
  });

  test("flush() skips writeback objects removed or moved to the stale area since", async ({ store }) => {
    await store.create(DATA_OID, 0, patternBytes(10, 33), OBJ_SIZE, {
      sparse: false,
      writeback: true,
    });
    await store.create(INODE_OID, 0, patternBytes(10, 34), INODE_SIZE, {
      sparse: true,
      writeback: true,
    });
    await store.write(INODE_OID, 20, patternBytes(10, 35), true);
    await store.remove(DATA_OID);
    await store.moveToStale(INODE_OID, 2);
    await store.flush();
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await store.readStale(INODE_OID, 2, 20, 10), patternBytes(10, 35));
  });

  test("usedBytes sums the sizes of the objects, stale copies excluded", async ({ store }) => {
    assert.equal(await store.usedBytes(), 0);
    await store.create(DATA_OID, 0, patternBytes(10, 15), OBJ_SIZE, { sparse: false });
    await store.create(INODE_OID, 0, patternBytes(10, 15), INODE_SIZE, { sparse: true });
    await store.create(LEDGER_OID, 0, patternBytes(10, 15), 4096, { sparse: false });
    assert.equal(await store.usedBytes(), OBJ_SIZE + INODE_SIZE + 4096);
    await store.moveToStale(LEDGER_OID, 1);
    assert.equal(await store.usedBytes(), OBJ_SIZE + INODE_SIZE);
  });

  test("stat reports a size and a free space within it", async ({ store }) => {
    const { size, free } = await store.stat();
    assert.ok(Number.isSafeInteger(size) && size > 0, `size ${size}`);
    assert.ok(Number.isSafeInteger(free) && free >= 0 && free <= size, `free ${free}`);
  });

  test("moveToStale hides the object and keeps a readable copy per epoch", async ({ store }) => {
    const v1 = patternBytes(4096, 16);
    const v2 = patternBytes(4096, 17);
    await store.create(DATA_OID, 0, v1, OBJ_SIZE, { sparse: false });
    await store.write(DATA_OID, 0, v1);
    await store.moveToStale(DATA_OID, 4);
    assert.equal(await store.exists(DATA_OID), false);
    await rejectsWith(store.write(DATA_OID, 0, v2), Res.NO_OBJ);
    await store.create(DATA_OID, 0, v2, OBJ_SIZE, { sparse: false });
    await store.moveToStale(DATA_OID, 7);
    assert.deepEqual(await store.listStale(), [
      { oid: DATA_OID, epoch: 4 },
      { oid: DATA_OID, epoch: 7 },
    ]);
    assert.deepEqual(await store.readStale(DATA_OID, 4, 0, 4096), v1);
    assert.deepEqual(await store.readStale(DATA_OID, 7, 0, 4096), v2);
    assert.equal(await store.staleSize(DATA_OID, 4), OBJ_SIZE);
    const want = createHash("sha1").update(imageOf(OBJ_SIZE, 0, v1)).digest();
    assert.deepEqual(await store.sha1Stale(DATA_OID, 4), new Uint8Array(want));
    await rejectsWith(store.readStale(DATA_OID, 4, OBJ_SIZE - 1, 2), Res.INVALID_PARMS);
    await rejectsWith(store.readStale(DATA_OID, 5, 0, 1), Res.NO_OBJ);
    await rejectsWith(store.staleSize(DATA_OID, 5), Res.NO_OBJ);
    await rejectsWith(store.sha1Stale(INODE_OID, 4), Res.NO_OBJ);
    assert.deepEqual(await store.list(), []);
  });

  test("restoreFromStale brings the object back and refuses to replace a live one", async ({ store }) => {
    const data = patternBytes(4096, 18);
    await store.create(DATA_OID, 8192, data, OBJ_SIZE, { sparse: false });
    await store.moveToStale(DATA_OID, 2);
    await rejectsWith(store.restoreFromStale(DATA_OID, 9), Res.NO_OBJ);
    await store.restoreFromStale(DATA_OID, 2);
    assert.deepEqual(await store.read(DATA_OID, 8192, 4096), data);
    await rejectsWith(store.restoreFromStale(DATA_OID, 2), Res.OID_EXIST);
    await store.write(DATA_OID, 0, data);
    assert.deepEqual(await store.read(DATA_OID, 0, 4096), data);
  });

  test("a create with replace replaces a live object whole, through cached handles too", async ({ store }) => {
    const old = patternBytes(OBJ_SIZE, 30);
    await store.create(DATA_OID, 0, old, OBJ_SIZE, { sparse: false });
    assert.deepEqual(await store.read(DATA_OID, 0, 16), old.subarray(0, 16)); // handle cached
    const part = patternBytes(5000, 31);
    await store.create(DATA_OID, 7000, part, OBJ_SIZE, { sparse: false, replace: true });
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), imageOf(OBJ_SIZE, 7000, part));
    await store.write(DATA_OID, 0, part.subarray(0, 10));
    const want = imageOf(OBJ_SIZE, 7000, part);
    want.set(part.subarray(0, 10), 0);
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), want);
    // Without an existing object it is a plain create; a stale copy linked to the old object
    // keeps the old bytes.
    await store.moveToStale(DATA_OID, 3);
    await store.restoreFromStale(DATA_OID, 3);
    await store.create(DATA_OID, 0, part, OBJ_SIZE, { sparse: false, replace: true });
    assert.deepEqual(await store.readStale(DATA_OID, 3, 0, OBJ_SIZE), want);
    assert.deepEqual(await store.read(DATA_OID, 0, OBJ_SIZE), imageOf(OBJ_SIZE, 0, part));
    await store.create(INODE_OID, 0, part, 8192, { sparse: true, replace: true });
    assert.deepEqual(await store.read(INODE_OID, 0, 8192), imageOf(8192, 0, part));
  });

  test("moves made durable with syncMoves survive a restart", async (fx) => {
    await fx.store.create(DATA_OID, 0, patternBytes(10, 32), OBJ_SIZE, { sparse: false });
    await fx.store.create(INODE_OID, 0, patternBytes(10, 33), 4096, { sparse: false });
    await fx.store.moveToStale(DATA_OID, 5);
    await fx.store.syncMoves();
    const store = await fx.reopen();
    assert.deepEqual(await store.list(), [INODE_OID]);
    assert.deepEqual(await store.listStale(), [{ oid: DATA_OID, epoch: 5 }]);
    await store.syncMoves(); // nothing pending: a no-op
  });

  test("purgeStale removes every stale copy and nothing else", async ({ store }) => {
    await store.create(DATA_OID, 0, patternBytes(10, 19), OBJ_SIZE, { sparse: false });
    await store.create(INODE_OID, 0, patternBytes(10, 19), 4096, { sparse: false });
    await store.moveToStale(DATA_OID, 1);
    await store.purgeStale();
    assert.deepEqual(await store.listStale(), []);
    await rejectsWith(store.readStale(DATA_OID, 1, 0, 1), Res.NO_OBJ);
    assert.deepEqual(await store.list(), [INODE_OID]);
  });

  test("removeAll removes every object and stale copy, and the store stays usable", async ({ store }) => {
    await store.create(DATA_OID, 0, patternBytes(10, 20), OBJ_SIZE, { sparse: false });
    await store.create(INODE_OID, 0, patternBytes(10, 20), 4096, { sparse: false });
    await store.write(INODE_OID, 0, patternBytes(10, 21));
    await store.moveToStale(DATA_OID, 1);
    await store.removeAll();
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await store.listStale(), []);
    await rejectsWith(store.write(INODE_OID, 0, patternBytes(10, 21)), Res.NO_OBJ);
    await store.create(DATA_OID, 0, patternBytes(10, 22), OBJ_SIZE, { sparse: false });
    assert.deepEqual(await store.list(), [DATA_OID]);
  });
}
