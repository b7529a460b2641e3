import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { makeNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { type ContractMember, InProcessMember } from "./contract_member.ts";
import { runDriverContract } from "./contract_test_suite.ts";
import type { ClusterHandlers } from "./driver.ts";
import { MemoryDriver, MemoryHub, type MemoryHubOptions } from "./memory.ts";

function memoryCluster(opts: MemoryHubOptions = {}) {
  const hub = new MemoryHub(opts);
  const members: ContractMember[] = [];
  return {
    hub,
    async start(port: number): Promise<ContractMember> {
      const d = new MemoryDriver(hub);
      const m = await InProcessMember.start(d, port, () => d.kill());
      members.push(m);
      return m;
    },
    async close(): Promise<void> {
      for (const m of members) await m.close();
    },
  };
}

runDriverContract("memory", () => Promise.resolve(memoryCluster()));

/** A scheduler that runs queued deliveries in a seeded random order, one per macrotask. */
function seededScheduler(seed: number): MemoryHubOptions["schedule"] {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const queue: (() => void)[] = [];
  let armed = false;
  const run = () => {
    armed = false;
    while (queue.length > 0) {
      const [fn] = queue.splice(Math.floor(rnd() * queue.length), 1);
      fn();
    }
  };
  return (fn) => {
    queue.push(fn);
    if (!armed) {
      armed = true;
      setTimeout(run, 0);
    }
  };
}

runDriverContract(
  "memory (seeded scheduler)",
  () => Promise.resolve(memoryCluster({ schedule: seededScheduler(42) })),
);

const noHandlers: ClusterHandlers = {
  onJoinCheck: (_n, _m, opaque) => ({ accept: true, opaque }),
  onAccept() {},
  onLeave() {},
  onNotify() {},
  onUpdateNode() {},
  onLost() {},
};

Deno.test("memory: operations before join fail with CLUSTER_ERROR", async () => {
  const d = new MemoryDriver(new MemoryHub());
  await d.init(noHandlers);
  for (
    const op of [
      () => d.notify(new Uint8Array(1)),
      () => d.block(),
      () => d.updateNode(makeNode("127.0.0.1", 1)),
    ]
  ) {
    await assert.rejects(op(), (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR);
  }
  await d.close();
});

Deno.test("memory: a message larger than an event buffer is refused", async () => {
  const d = new MemoryDriver(new MemoryHub());
  await d.init(noHandlers);
  await d.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  await assert.rejects(
    d.notify(new Uint8Array(128 * 1024 + 1)),
    (e) => e instanceof SdError && e.result === Res.INVALID_PARMS,
  );
  await d.close();
});

Deno.test("memory: a join nobody answers fails after its deadline and is withdrawn", async () => {
  const hub = new MemoryHub();
  let release!: () => void;
  const stuck = new Promise<void>((r) => release = r);
  const master = new MemoryDriver(hub);
  await master.init({
    ...noHandlers,
    onJoinCheck: async (_n, _m, opaque) => {
      await stuck;
      return { accept: true, opaque };
    },
  });
  await master.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  const joiner = new MemoryDriver(hub, { joinTimeoutMs: 100 });
  const accepted: number[] = [];
  await joiner.init({ ...noHandlers, onAccept: (n) => void accepted.push(n.nid.port) });
  await assert.rejects(
    joiner.join(makeNode("127.0.0.1", 2), new Uint8Array(0)),
    (e) => e instanceof SdError && e.result === Res.JOIN_FAILED && /100 ms/.test(e.message),
  );
  // The master answers late: the withdrawn joiner never becomes a member.
  release();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(hub.members.map((m) => m.node.nid.port), [1]);
  assert.deepEqual(accepted, []);
  await joiner.close();
  await master.close();
});

Deno.test("memory: a block nobody grants fails after its deadline and is released when granted", async () => {
  const hub = new MemoryHub();
  const a = new MemoryDriver(hub);
  const b = new MemoryDriver(hub, { blockTimeoutMs: 100 });
  const seen: string[] = [];
  const td = new TextDecoder();
  await a.init({ ...noHandlers, onNotify: (_s, m) => void seen.push(td.decode(m)) });
  await b.init(noHandlers);
  await a.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  await b.join(makeNode("127.0.0.1", 2), new Uint8Array(0));
  await a.block();
  await assert.rejects(b.block(), (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR);
  await a.unblock(new TextEncoder().encode("a"));
  // b's late grant is released silently: a can block again and nothing else was delivered.
  await a.block();
  await a.unblock(new TextEncoder().encode("a2"));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, ["a", "a2"]);
  await a.close();
  await b.close();
});

Deno.test("memory: a handler that throws makes its member leave and report onLost", async () => {
  const hub = new MemoryHub();
  const a = new MemoryDriver(hub);
  const b = new MemoryDriver(hub);
  const lost: string[] = [];
  const left: number[] = [];
  await a.init({ ...noHandlers, onLeave: (n) => void left.push(n.nid.port) });
  await b.init({
    ...noHandlers,
    onNotify() {
      throw new Error("boom");
    },
    onLost: (r) => void lost.push(r),
  });
  await a.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  await b.join(makeNode("127.0.0.1", 2), new Uint8Array(0));
  await a.notify(new Uint8Array(1));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(lost.length, 1);
  assert.match(lost[0], /boom/);
  assert.deepEqual(left, [2]);
  await assert.rejects(b.notify(new Uint8Array(1)), (e) => e instanceof SdError);
  await a.close();
  await b.close();
});

Deno.test("memory: the hub drops events once every member has read them", async () => {
  const hub = new MemoryHub();
  const ds = [new MemoryDriver(hub), new MemoryDriver(hub)];
  for (const [i, d] of ds.entries()) {
    await d.init(noHandlers);
    await d.join(makeNode("127.0.0.1", i + 1), new Uint8Array(0));
  }
  for (let i = 0; i < 100; i++) await ds[i % 2].notify(new Uint8Array(8));
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(hub.seq >= 103);
  assert.equal(hub.retained, 0);
  // A late member starts from the hub's snapshot and sees the current members.
  const late = new MemoryDriver(hub);
  const lists: number[][] = [];
  await late.init({
    ...noHandlers,
    onAccept: (_n, ms) => void lists.push(ms.map((m) => m.nid.port)),
  });
  await late.join(makeNode("127.0.0.1", 3), new Uint8Array(0));
  assert.deepEqual(lists, [[1, 2, 3]]);
  for (const d of [...ds, late]) await d.close();
});

Deno.test("memory: the same seeded scheduler gives the same delivery order", async () => {
  const run = async () => {
    const c = memoryCluster({ schedule: seededScheduler(7) });
    const ms = await Promise.all([0, 1, 2, 3].map((i) => c.start(7000 + i)));
    await Promise.all(ms.map((m, i) => m.join(`j${i}`)));
    await Promise.all(ms.map(async (m, i) => {
      for (let k = 0; k < 5; k++) await m.notify(`${i}.${k}`);
    }));
    await new Promise((r) => setTimeout(r, 20));
    const seq = ms.map((m) => m.events.map((e) => JSON.stringify({ ...e, t: 0 })));
    await c.close();
    return seq;
  };
  assert.deepEqual(await run(), await run());
});

Deno.test("memory: leave() twice resolves twice; operations afterwards fail with CLUSTER_ERROR", async () => {
  const hub = new MemoryHub();
  const a = new MemoryDriver(hub);
  await a.init(noHandlers);
  await a.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  await Promise.all([a.leave(), a.leave()]);
  await a.leave();
  assert.deepEqual(hub.members, []);
  await assert.rejects(
    a.notify(new Uint8Array(1)),
    (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
  );
  await a.close();
});

Deno.test("memory: a holder that was declared dead gets onLost and its unblock fails", async () => {
  const hub = new MemoryHub();
  const a = new MemoryDriver(hub);
  const b = new MemoryDriver(hub);
  const lost: string[] = [];
  await a.init(noHandlers);
  await b.init({ ...noHandlers, onLost: (r) => void lost.push(r) });
  await a.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
  await b.join(makeNode("127.0.0.1", 2), new Uint8Array(0));
  await b.block();
  hub.post({ type: "leave", id: b.id! });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(lost, ["a leave was posted for it (it left or was found dead)"]);
  await assert.rejects(
    b.unblock(new Uint8Array(1)),
    (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
  );
  // The block is released for everyone else.
  await a.block();
  await a.unblock(new Uint8Array(0));
  await a.close();
  await b.close();
});
