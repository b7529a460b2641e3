import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { alignedBuffer, BufferPool } from "../buffer_pool.ts";
import { PlainStore, type PlainStoreOptions } from "./plain_store.ts";
import {
  patternBytes,
  rejectsWith,
  runStoreContract,
  type StoreFixture,
} from "./store_contract_test_suite.ts";

async function plainFixture(options: PlainStoreOptions): Promise<StoreFixture> {
  const dir = await Deno.makeTempDir({ prefix: "sheepdog-plain-store-" });
  let store = await PlainStore.open(dir, options);
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = await PlainStore.open(dir, options);
      return store;
    },
    async dispose() {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

runStoreContract("plain store", () => plainFixture({}));
runStoreContract("plain store (nosync)", () => plainFixture({ nosync: true }));
runStoreContract("plain store (2 cached handles)", () => plainFixture({ handleCacheSize: 2 }));
runStoreContract("plain store (buffered creates)", () => plainFixture({ directIo: false }));

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sheepdog-plain-store-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const INODE_SIZE = 12_587_576;

Deno.test("plain store names object files %016lx in DIR/obj and stale ones <oid>.<epoch>", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      await store.create(0xfn, 0, patternBytes(10, 1), 4096, { sparse: false });
      await store.create(0x807c2b2500000000n, 0, patternBytes(10, 1), 4096, { sparse: false });
      await store.moveToStale(0xfn, 12);
      const names = [...Deno.readDirSync(`${dir}/obj`)].map((e) => e.name).sort();
      assert.deepEqual(names, [".stale", "807c2b2500000000"]);
      const stale = [...Deno.readDirSync(`${dir}/obj/.stale`)].map((e) => e.name);
      assert.deepEqual(stale, ["000000000000000f.12"]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store serves a directory written by v1.0 as is", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/obj/.stale`, { recursive: true });
    const inode = patternBytes(4664, 2);
    const data = patternBytes(4 << 20, 3);
    await Deno.writeFile(`${dir}/obj/807c2b2500000000`, inode);
    await Deno.writeFile(`${dir}/obj/007c2b250000000f`, data);
    await Deno.writeFile(`${dir}/obj/087c2b2500000000`, new Uint8Array(4096));
    await Deno.writeFile(`${dir}/obj/.stale/007c2b2500000001.3`, patternBytes(100, 4));
    await Deno.writeFile(`${dir}/config`, new Uint8Array(40));
    const store = await PlainStore.open(dir);
    try {
      assert.deepEqual(await store.list(), [
        0x007c2b250000000fn,
        0x087c2b2500000000n,
        0x807c2b2500000000n,
      ]);
      assert.deepEqual(await store.read(0x807c2b2500000000n, 0, 4664), inode);
      assert.deepEqual(await store.read(0x007c2b250000000fn, 0, 4 << 20), data);
      assert.deepEqual(await store.listStale(), [{ oid: 0x007c2b2500000001n, epoch: 3 }]);
      assert.deepEqual(await store.readStale(0x007c2b2500000001n, 3, 0, 100), patternBytes(100, 4));
      await store.write(0x007c2b250000000fn, 4096, patternBytes(4096, 5));
      assert.deepEqual(await store.read(0x007c2b250000000fn, 4096, 4096), patternBytes(4096, 5));
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store removes .tmp leftovers of a crash at open and never lists them", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/obj`, { recursive: true });
    await Deno.writeFile(`${dir}/obj/007c2b250000000f.tmp`, patternBytes(100, 6));
    await Deno.writeFile(`${dir}/obj/007c2b2500000001`, patternBytes(100, 6));
    const store = await PlainStore.open(dir);
    try {
      assert.deepEqual(await store.list(), [0x007c2b2500000001n]);
      assert.equal(await store.exists(0x007c2b250000000fn), false);
      const names = [...Deno.readDirSync(`${dir}/obj`)].map((e) => e.name).sort();
      assert.deepEqual(names, [".stale", "007c2b2500000001"]);
      await store.create(0x007c2b250000000fn, 0, patternBytes(10, 7), 4096, { sparse: false });
      assert.deepEqual(await store.read(0x007c2b250000000fn, 0, 10), patternBytes(10, 7));
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store ignores files that are not objects when listing", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/obj/.other`, { recursive: true });
    await Deno.writeFile(`${dir}/obj/007C2B250000000F`, new Uint8Array(1));
    await Deno.writeFile(`${dir}/obj/007c2b250000000f_1`, new Uint8Array(1));
    await Deno.writeFile(`${dir}/obj/notes`, new Uint8Array(1));
    await Deno.mkdir(`${dir}/obj/.stale`);
    await Deno.writeFile(`${dir}/obj/.stale/junk`, new Uint8Array(1));
    const store = await PlainStore.open(dir);
    try {
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(await store.listStale(), []);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store keeps a sparse inode object to a few blocks on disk", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      const inode = new Uint8Array(INODE_SIZE);
      inode.set(patternBytes(4664, 8), 0);
      inode[4664 + 4 * 1000] = 0x7c;
      const oid = 0x807c2b2500000000n;
      await store.create(oid, 0, inode, INODE_SIZE, { sparse: true });
      const st = await Deno.stat(`${dir}/obj/807c2b2500000000`);
      assert.equal(st.size, INODE_SIZE);
      assert.ok(st.blocks !== null && st.blocks * 512 <= 32 * 1024, `${st.blocks} blocks`);
      assert.deepEqual(await store.read(oid, 0, INODE_SIZE), inode);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store preallocates a non-sparse object created by a partial write", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      await store.create(0x7c2b250000000fn, 12288, patternBytes(4096, 9), 4 << 20, {
        sparse: false,
      });
      const st = await Deno.stat(`${dir}/obj/007c2b250000000f`);
      assert.equal(st.size, 4 << 20);
      assert.ok(st.blocks !== null && st.blocks * 512 >= 4 << 20, `${st.blocks} blocks`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store keeps open handles within the cache bound", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir, { handleCacheSize: 4 });
    try {
      const countOpen = () =>
        [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
          try {
            return Deno.readLinkSync(`/proc/self/fd/${e.name}`).startsWith(`${dir}/obj/`);
          } catch (err) {
            // The directory fd of readDirSync itself is gone by the time it is read.
            if (err instanceof Deno.errors.NotFound) return false;
            throw err;
          }
        }).length;
      for (let i = 0n; i < 20n; i++) {
        await store.create(i, 0, patternBytes(8, 10), 4096, { sparse: false });
        await store.write(i, 0, patternBytes(8, 11));
      }
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.read(BigInt(i), 0, 8)),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(countOpen() <= 4, `${countOpen()} open object files`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store keeps writeback writes and creates pending until flush(), durable ones not", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      await store.create(0x1n, 0, patternBytes(10, 1), 4096, { sparse: false });
      await store.write(0x1n, 100, patternBytes(10, 2));
      assert.equal(store.unflushedCount, 0);
      await store.write(0x1n, 200, patternBytes(10, 3), true);
      await store.create(0x2n, 0, patternBytes(10, 4), 4096, { sparse: false, writeback: true });
      await store.create(0x807c2b2500000000n, 0, patternBytes(10, 5), INODE_SIZE, {
        sparse: true,
        writeback: true,
      });
      assert.equal(store.unflushedCount, 3);
      await store.remove(0x2n);
      await store.moveToStale(0x807c2b2500000000n, 4);
      assert.equal(store.unflushedCount, 1, "a move to stale syncs the object's writes");
      await store.flush();
      assert.equal(store.unflushedCount, 0);
      assert.deepEqual(await store.read(0x1n, 200, 10), patternBytes(10, 3));
    } finally {
      await store.close();
    }
    const nosync = await PlainStore.open(dir, { nosync: true });
    try {
      await nosync.write(0x1n, 300, patternBytes(10, 6), true);
      assert.equal(nosync.unflushedCount, 0);
    } finally {
      await nosync.close();
    }
  });
});

Deno.test("plain store: a flush that starts while another runs ends after it (that one took its objects)", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      for (let i = 1n; i <= 16n; i++) {
        await store.create(i, 0, patternBytes(4096, Number(i)), 1 << 20, {
          sparse: false,
          writeback: true,
        });
      }
      const order: string[] = [];
      const first = store.flush().then(() => order.push("first"));
      const second = store.flush().then(() => order.push("second"));
      await Promise.all([first, second]);
      assert.deepEqual(order, ["first", "second"]);
      assert.equal(store.unflushedCount, 0);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store refuses use after close", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    await store.close();
    await assert.rejects(store.read(1n, 0, 1), /after close/);
  });
});

Deno.test("plain store create with an all-zero sparse buffer writes no blocks", async () => {
  await withDir(async (dir) => {
    const store = await PlainStore.open(dir);
    try {
      await store.create(0x087c2b2500000000n, 0, new Uint8Array(4 << 20), 4 << 20, {
        sparse: true,
      });
      const st = await Deno.stat(`${dir}/obj/087c2b2500000000`);
      assert.equal(st.size, 4 << 20);
      assert.equal(st.blocks, 0);
      await rejectsWith(store.read(0x087c2b2500000000n, 4 << 20, 1), Res.INVALID_PARMS);
    } finally {
      await store.close();
    }
  });
});

Deno.test("plain store builds non-sparse objects with O_DIRECT from any buffer, at any offset", async () => {
  await withDir(async (dir) => {
    const size = 4 << 20;
    const pool = new BufferPool();
    const pooled = pool.take(size);
    pooled.set(patternBytes(size, 7));
    const aligned = alignedBuffer(64 * 1024);
    aligned.set(patternBytes(aligned.length, 8));
    const cases: [bigint, number, Uint8Array][] = [
      [1n, 0, pooled], // the whole object from a pooled (aligned) payload
      [2n, 0, patternBytes(size, 9)], // the whole object, any address
      [3n, 4096, aligned], // aligned part
      [4n, 12345, patternBytes(777, 10)], // unaligned part: zeros around it
      [5n, size - 5, patternBytes(5, 11)],
    ];
    for (const nosync of [false, true]) {
      const store = await PlainStore.open(`${dir}/${nosync}`, { nosync, buffers: pool });
      try {
        for (const [oid, offset, data] of cases) {
          await store.create(oid, offset, data, size, { sparse: false });
          const want = new Uint8Array(size);
          want.set(data, offset);
          assert.equal(await store.size(oid), size);
          assert.ok(sameBytes(await store.read(oid, 0, size), want), `object ${oid}`);
        }
        // An object whose size is not a multiple of the alignment is written the buffered way.
        await store.create(6n, 10, patternBytes(10, 12), 5000, { sparse: false });
        const want = new Uint8Array(5000);
        want.set(patternBytes(10, 12), 10);
        assert.deepEqual(await store.read(6n, 0, 5000), want);
        await rejectsWith(
          store.create(1n, 0, pooled, size, { sparse: false }),
          Res.OID_EXIST,
        );
        const names = [...Deno.readDirSync(`${dir}/${nosync}/obj`)].map((e) => e.name);
        assert.ok(!names.some((n) => n.endsWith(".tmp")), names.join(" "));
      } finally {
        await store.close();
      }
    }
    pool.give(pooled);
  });
});

Deno.test("plain store reads whole objects into buffers of the pool it is given", async () => {
  await withDir(async (dir) => {
    const size = 4 << 20;
    const pool = new BufferPool();
    const store = await PlainStore.open(dir, { nosync: true, buffers: pool });
    try {
      await store.create(1n, 0, patternBytes(size, 13), size, { sparse: false });
      const whole = await store.read(1n, 0, size);
      assert.ok(pool.owns(whole), "a whole object comes in a buffer of the given pool");
      assert.ok(sameBytes(whole, patternBytes(size, 13)));
      pool.give(whole);
      const again = await store.read(1n, 0, size);
      assert.equal(again.buffer, whole.buffer, "the buffer given back is reused");
      pool.give(again);
      assert.ok(!new BufferPool().owns(again), "no other pool claims it");
    } finally {
      await store.close();
    }
  });
});

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
