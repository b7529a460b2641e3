/**
 * Unit tests of `dog vdi lock list|unlock` against the in-process fake cluster.
 */
import assert from "node:assert/strict";
import { ClusterFlag, LockState, LockType, Op } from "../../core/proto/constants.ts";
import { makeNode } from "../../core/proto/node.ts";
import type { FakeCluster } from "./fake_sheep.ts";
import { runDogCaptured, startFake } from "./test_harness.ts";
import { LOCK_LIST_HEADER, lockHolders, lockListRow, nodeIdText } from "./vdi_lock.ts";

async function withLockingCluster(f: (fake: FakeCluster) => Promise<void>) {
  const fake = startFake(3);
  try {
    assert.equal((await runDogCaptured(["cluster", "format", "-l", "-c", "2"], { fake })).code, 0);
    assert.ok(fake.flags & ClusterFlag.USE_LOCK, "format -l sets USE_LOCK");
    for (const name of ["alpha", "beta", "gamma"]) {
      assert.equal((await runDogCaptured(["vdi", "create", name, "4M"], { fake })).code, 0);
    }
    fake.seen.length = 0;
    await f(fake);
  } finally {
    await fake.stop();
  }
}

function vidOf(fake: FakeCluster, name: string): number {
  return [...fake.inuse].find((v) => fake.header(v).name === name)!;
}

Deno.test("nodeIdText() is v1.0's node_id_to_str", () => {
  assert.equal(nodeIdText(makeNode("127.0.0.1", 7000).nid), "IPv4 ip:127.0.0.1 port:7000");
  const v6 = makeNode("127.0.0.1", 7001).nid;
  v6.addr = new Uint8Array(16);
  v6.addr[0] = 0xfe;
  v6.addr[1] = 0x80;
  v6.addr[15] = 1;
  assert.equal(nodeIdText(v6), "IPv6 ip:fe80::1 port:7001");
});

Deno.test("lockListRow() shows the owner, or every participant of a shared lock", () => {
  const a = makeNode("127.0.0.1", 7000).nid;
  const b = makeNode("127.0.0.1", 7001).nid;
  assert.equal(
    lockListRow({ vid: 1, name: "vol", snapId: 0, shared: false, holders: [a] }, false),
    "vol | IPv4 ip:127.0.0.1 port:7000",
  );
  assert.equal(
    lockListRow({ vid: 1, name: "vol", snapId: 2, shared: true, holders: [a, b] }, false),
    "vol:2 (shared) | IPv4 ip:127.0.0.1 port:7000, IPv4 ip:127.0.0.1 port:7001",
  );
  assert.equal(
    lockListRow({ vid: 1, name: "vol", snapId: 0, shared: true, holders: [a, b] }, true),
    "vol shared 127.0.0.1:7000,127.0.0.1:7001",
  );
  const base = {
    vid: 1,
    nrCopies: 1,
    snapshot: false,
    deleted: false,
    copyPolicy: 0,
    blockSizeShift: 22,
    parentVid: 0,
    lockOwner: null,
    participants: [],
  };
  assert.equal(lockHolders({ ...base, lockState: LockState.UNLOCKED }), null);
  assert.deepEqual(lockHolders({ ...base, lockState: LockState.LOCKED, lockOwner: a }), {
    shared: false,
    holders: [a],
  });
});

Deno.test("vdi lock list prints the header and the locked VDIs only", async () => {
  await withLockingCluster(async (fake) => {
    const empty = await runDogCaptured(["vdi", "lock", "list"], { fake });
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, LOCK_LIST_HEADER + "\n");
    fake.locks.set(vidOf(fake, "beta"), { state: LockState.LOCKED, holders: [1] });
    fake.locks.set(vidOf(fake, "alpha"), { state: LockState.SHARED, holders: [0, 2] });
    const run = await runDogCaptured(["vdi", "lock", "list"], { fake });
    assert.equal(run.code, 0);
    assert.equal(
      run.stdout,
      "VDI | owner node\n" +
        "alpha (shared) | IPv4 ip:127.0.0.1 port:7000, IPv4 ip:127.0.0.1 port:7002\n" +
        "beta | IPv4 ip:127.0.0.1 port:7001\n",
    );
    const raw = await runDogCaptured(["vdi", "lock", "list", "-r"], { fake });
    assert.equal(
      raw.stdout,
      "alpha shared 127.0.0.1:7000,127.0.0.1:7002\nbeta locked 127.0.0.1:7001\n",
    );
    const json = await runDogCaptured(["vdi", "lock", "list", "--json"], { fake });
    assert.deepEqual(JSON.parse(json.stdout)[1], {
      name: "beta",
      snapId: 0,
      vid: vidOf(fake, "beta").toString(16),
      state: "locked",
      owners: ["127.0.0.1:7001"],
    });
    assert.ok(fake.seen.some((s) => s.opcode === Op.GET_VDI_COPIES));
  });
});

Deno.test("vdi lock unlock sends v1.0's forced RELEASE_VDI and frees another node's lock", async () => {
  await withLockingCluster(async (fake) => {
    const vid = vidOf(fake, "gamma");
    fake.locks.set(vid, { state: LockState.LOCKED, holders: [2] });
    const run = await runDogCaptured(["vdi", "lock", "unlock", "gamma"], { fake });
    assert.equal(run.code, 0);
    assert.equal(run.all, "");
    assert.equal(fake.locks.has(vid), false);
    const rel = fake.seen.find((s) => s.opcode === Op.RELEASE_VDI)!;
    assert.equal(rel.node, 0);
    assert.equal(rel.req.vdi.baseVdiId, vid);
    assert.equal(rel.req.vdi.type, LockType.NORMAL);
    assert.equal(rel.req.dataLength, 0);
    assert.equal(rel.data.length, 0);
  });
});

Deno.test("vdi lock unlock of an unlocked VDI says so and exits 1; of a missing one, No VDI found", async () => {
  await withLockingCluster(async (fake) => {
    const run = await runDogCaptured(["vdi", "lock", "unlock", "alpha"], { fake });
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "VDI alpha is not locked\n");
    assert.ok(!fake.seen.some((s) => s.opcode === Op.RELEASE_VDI));
    const missing = await runDogCaptured(["vdi", "lock", "unlock", "nosuch"], { fake });
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found\n",
    );
    const usage = await runDogCaptured(["vdi", "lock", "unlock"], { fake });
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /^Usage: dog vdi lock/);
  });
});
