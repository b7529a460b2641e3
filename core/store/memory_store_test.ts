import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import {
  MEMORY_CHUNK_SIZE,
  MemoryDisk,
  MemoryStore,
  type MemoryStoreOptions,
} from "./memory_store.ts";
import {
  patternBytes,
  rejectsWith,
  runStoreContract,
  type StoreFixture,
} from "./store_contract_test_suite.ts";

function memoryFixture(options: MemoryStoreOptions): Promise<StoreFixture> {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk, options);
  return Promise.resolve({
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = MemoryStore.open(disk, options);
      return store;
    },
    async dispose() {
      await store.close();
    },
  });
}

runStoreContract("memory store", () => memoryFixture({}));
runStoreContract("memory store (nosync)", () => memoryFixture({ nosync: true }));

const OID = 0x007c2b250000000fn;
const OID2 = 0x007c2b2500000010n;
const OID3 = 0x007c2b2500000011n;
const MIB = 1024 * 1024;

Deno.test("memory store: an injected fault fails the next write of that oid only, with EIO, and changes nothing", async () => {
  const store = MemoryStore.open();
  await store.create(OID, 0, patternBytes(100, 1), MIB, { sparse: false });
  await store.create(OID2, 0, patternBytes(100, 1), MIB, { sparse: false });
  store.injectFault({ op: "write", oid: OID });
  await store.write(OID2, 0, patternBytes(10, 2));
  await rejectsWith(store.write(OID, 0, patternBytes(10, 3)), Res.EIO);
  assert.deepEqual(await store.read(OID, 0, 100), patternBytes(100, 1));
  await store.write(OID, 0, patternBytes(10, 3));
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 3));
});

Deno.test("memory store: a fault with a result and a count fails that many matching operations", async () => {
  const store = MemoryStore.open();
  store.injectFault({ op: "create", result: Res.NO_SPACE, times: 2 });
  await rejectsWith(store.create(OID, 0, new Uint8Array(1), 4096, { sparse: false }), Res.NO_SPACE);
  await rejectsWith(
    store.create(OID2, 0, new Uint8Array(1), 4096, { sparse: false }),
    Res.NO_SPACE,
  );
  await store.create(OID, 0, new Uint8Array(1), 4096, { sparse: false });
  store.injectFault({ op: "read", oid: OID2 });
  store.clearFaults();
  assert.equal((await store.read(OID, 0, 1)).length, 1);
  assert.deepEqual(await store.list(), [OID]);
});

Deno.test("memory store: a fault on list and on readStale fails those calls", async () => {
  const store = MemoryStore.open();
  await store.create(OID, 0, new Uint8Array(1), 4096, { sparse: false });
  await store.moveToStale(OID, 3);
  store.injectFault({ op: "list" });
  store.injectFault({ op: "readStale", oid: OID });
  await rejectsWith(store.list(), Res.EIO);
  await rejectsWith(store.readStale(OID, 3, 0, 1), Res.EIO);
  assert.deepEqual(await store.list(), []);
  assert.equal((await store.readStale(OID, 3, 0, 1)).length, 1);
});

Deno.test("memory store: a restored object shares its bytes with the stale copy, like a hard link", async () => {
  const store = MemoryStore.open();
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.moveToStale(OID, 5);
  await store.restoreFromStale(OID, 5);
  await store.write(OID, 0, patternBytes(10, 2));
  assert.deepEqual(await store.readStale(OID, 5, 0, 10), patternBytes(10, 2));
  assert.equal((await store.stat()).free, (await store.stat()).size - 4096);
});

Deno.test("memory store: moving to stale twice under one epoch keeps the newer copy", async () => {
  const store = MemoryStore.open();
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.moveToStale(OID, 5);
  await store.create(OID, 0, patternBytes(10, 2), 4096, { sparse: false });
  await store.moveToStale(OID, 5);
  assert.deepEqual(await store.listStale(), [{ oid: OID, epoch: 5 }]);
  assert.deepEqual(await store.readStale(OID, 5, 0, 10), patternBytes(10, 2));
});

Deno.test("memory store: a create that does not fit the capacity fails with NO_SPACE; stale copies use space", async () => {
  const disk = new MemoryDisk(3 * MIB);
  const store = MemoryStore.open(disk);
  await store.create(OID, 0, new Uint8Array(0), 2 * MIB, { sparse: false });
  await rejectsWith(
    store.create(OID2, 0, new Uint8Array(0), 2 * MIB, { sparse: false }),
    Res.NO_SPACE,
  );
  assert.equal(await store.exists(OID2), false);
  await store.moveToStale(OID, 1);
  await rejectsWith(
    store.create(OID2, 0, new Uint8Array(0), 2 * MIB, { sparse: false }),
    Res.NO_SPACE,
  );
  await store.purgeStale();
  await store.create(OID2, 0, new Uint8Array(0), 2 * MIB, { sparse: false });
  assert.deepEqual(await store.stat(), { size: 3 * MIB, free: MIB });
});

Deno.test("memory store: sparse objects take only the chunks that hold data", async () => {
  const store = MemoryStore.open(new MemoryDisk(MIB));
  await store.create(OID, 0, patternBytes(10, 1), 12_587_576, { sparse: true });
  assert.equal((await store.stat()).free, MIB - MEMORY_CHUNK_SIZE);
  assert.equal(await store.usedBytes(), 12_587_576);
  await store.write(OID, 12_587_576 - 5, patternBytes(5, 2));
  assert.deepEqual(await store.read(OID, 12_587_576 - 5, 5), patternBytes(5, 2));
});

Deno.test("memory store: a crash in sync mode keeps writes, creates and removes but undoes un-synced stale moves", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.create(OID2, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.write(OID, 0, patternBytes(10, 2));
  await store.moveToStale(OID2, 4);
  assert.equal(store.unsyncedCount, 2);
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), [OID, OID2]);
  assert.deepEqual(await store.listStale(), []);
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 2));
});

Deno.test("memory store: a create after a stale move makes the move durable, as the directory fsync does", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.moveToStale(OID, 4);
  await store.create(OID2, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.purgeStale();
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), [OID2]);
  assert.deepEqual(await store.listStale(), [{ oid: OID, epoch: 4 }]);
});

Deno.test("memory store: sync() makes stale moves durable", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.moveToStale(OID, 4);
  store.sync();
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await store.listStale(), [{ oid: OID, epoch: 4 }]);
});

Deno.test("memory store: syncMoves() makes stale moves and purges durable; a replace is durable", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.create(OID2, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.moveToStale(OID, 4);
  await store.syncMoves();
  assert.equal(store.unsyncedCount, 0);
  await store.create(OID2, 0, patternBytes(10, 3), 4096, { sparse: false, replace: true });
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), [OID2]);
  assert.deepEqual(await store.listStale(), [{ oid: OID, epoch: 4 }]);
  assert.deepEqual(await store.read(OID2, 0, 10), patternBytes(10, 3));
});

Deno.test("memory store: a crash undoes writeback writes and creates not flushed, even after a directory fsync", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.write(OID, 0, patternBytes(10, 2), true);
  await store.create(OID2, 0, patternBytes(10, 3), 4096, { sparse: false, writeback: true });
  // A durable create fsyncs the directory: that does not make the writeback writes durable.
  await store.create(OID3, 0, patternBytes(10, 4), 4096, { sparse: false });
  assert.equal(store.unsyncedCount, 2);
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), [OID, OID3]);
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 1));
});

Deno.test("memory store: flush() makes writeback writes and creates durable", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false, writeback: true });
  await store.write(OID, 5, patternBytes(10, 2), true);
  await store.flush();
  assert.equal(store.unsyncedCount, 0);
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), [OID]);
  assert.deepEqual(await store.read(OID, 5, 10), patternBytes(10, 2));
});

Deno.test("memory store: a move to the stale area makes the object's writeback writes durable", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk);
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false, writeback: true });
  await store.write(OID, 5, patternBytes(10, 2), true);
  await store.create(OID2, 0, patternBytes(10, 3), 4096, { sparse: false, writeback: true });
  await store.moveToStale(OID, 3);
  await store.syncMoves();
  store.crash();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await store.readStale(OID, 3, 5, 10), patternBytes(10, 2));
});

Deno.test("memory store: a crash in nosync mode drops everything since the last sync, newest first", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk, { nosync: true });
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  store.sync();
  await store.write(OID, 0, patternBytes(10, 2));
  await store.moveToStale(OID, 2);
  await store.restoreFromStale(OID, 2);
  await store.write(OID, 5, patternBytes(10, 3));
  await store.create(OID2, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.remove(OID2);
  store.crash();
  store = MemoryStore.open(disk, { nosync: true });
  assert.deepEqual(await store.list(), [OID]);
  assert.deepEqual(await store.listStale(), []);
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 1));
});

Deno.test("memory store: a clean close keeps everything, also in nosync mode", async () => {
  const disk = new MemoryDisk();
  let store = MemoryStore.open(disk, { nosync: true });
  await store.create(OID, 0, patternBytes(10, 1), 4096, { sparse: false });
  await store.write(OID, 0, patternBytes(10, 2));
  await store.close();
  store = MemoryStore.open(disk);
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 2));
});

Deno.test("memory store: a disk has one open store at a time and a closed store refuses use", async () => {
  const disk = new MemoryDisk();
  const store = MemoryStore.open(disk);
  assert.throws(() => MemoryStore.open(disk), /already open/);
  await store.close();
  await assert.rejects(store.list(), /closed/);
  MemoryStore.open(disk);
});

Deno.test("memory store: reads return copies, so changing them does not change the object", async () => {
  const store = MemoryStore.open();
  const data = patternBytes(10, 1);
  await store.create(OID, 0, data, 4096, { sparse: false });
  data.fill(0);
  const got = await store.read(OID, 0, 10);
  got.fill(0);
  assert.deepEqual(await store.read(OID, 0, 10), patternBytes(10, 1));
});
