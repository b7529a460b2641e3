import assert from "node:assert/strict";
import { AssertionError } from "../assert.ts";
import { makeNode, type SdNode } from "../proto/node.ts";
import type { StaleObject } from "../store/object_store.ts";
import {
  type EpochRing,
  epochRing,
  type Fetch,
  nodeKey,
  type NodeObjects,
  peerCopyFor,
  type PlanInput,
  planMoves,
  planRecovery,
  type RecoveryPlan,
  type RecoverySource,
} from "./plan.ts";
import { Prng } from "./prng.ts";

/** Storage node i (10.0.0.i:7000) in zone i unless given. */
function node(i: number, opts: { zone?: number; vnodes?: number } = {}): SdNode {
  return makeNode(`10.0.0.${i}`, 7000, { zone: opts.zone ?? i, nrVnodes: opts.vnodes ?? 32 });
}

const A = node(1);
const B = node(2);
const C = node(3);
const D = node(4);
const E = node(5);

const copies3 = () => 3;

function dataOid(vid: number, idx: number): bigint {
  return (BigInt(vid) << 32n) | BigInt(idx);
}

const keys = (nodes: readonly SdNode[]) => nodes.map(nodeKey);

/** The first data oids of VDI 7 satisfying `pred`. */
function oidsWhere(
  pred: (oid: bigint) => boolean,
  count = 1,
  vid = 7,
  make: (vid: number, i: number) => bigint = dataOid,
): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; out.length < count; i++) {
    assert.ok(i < 100_000, "no oid satisfies the predicate");
    const oid = make(vid, i);
    if (pred(oid)) out.push(oid);
  }
  return out;
}

function holderKeys(er: EpochRing, oid: bigint, copies = 3): string[] {
  return keys(er.ring.place(oid, copies));
}

function input(over: Partial<PlanInput> & Pick<PlanInput, "self" | "epochs">): PlanInput {
  const cur = Math.max(...over.epochs.map((e) => e.epoch));
  return {
    currentEpoch: cur,
    storeEpoch: cur - 1,
    copiesOf: copies3,
    gathered: over.epochs.find((e) => e.epoch === cur)!.ring.nodes.map((n) => ({
      node: n,
      oids: [],
    })),
    local: [],
    localStale: [],
    ...over,
  };
}

function fetchOf(plan: RecoveryPlan, oid: bigint): Fetch {
  const f = plan.fetches.find((x) => x.oid === oid);
  assert.ok(f, `no fetch for ${oid.toString(16)}`);
  return f;
}

function describe(sources: readonly RecoverySource[]): string[] {
  return sources.map((s) =>
    s.kind === "local" ? `local@${s.epoch}` : `${nodeKey(s.node)}@${s.epoch}`
  );
}

function listsWith(nodes: readonly SdNode[], oids: readonly bigint[]): NodeObjects[] {
  return nodes.map((n) => ({ node: n, oids }));
}

Deno.test("a node that stays keeps the objects it still holds and moves the others to stale under the previous epoch", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const held = oidsWhere((o) => holderKeys(e1, o).includes(nodeKey(A)), 40);
  const plan = planRecovery(input({
    self: A,
    epochs: [e1, e2],
    local: held,
    gathered: listsWith([A, B, C, D, E], held),
  }));
  assert.equal(plan.trustedLocal, true);
  const kept = held.filter((o) => holderKeys(e2, o).includes(nodeKey(A)));
  const moved = held.filter((o) => !kept.includes(o));
  assert.ok(kept.length > 0 && moved.length > 0, "the join moves some of A's objects");
  assert.deepEqual(plan.moves, moved.map((oid) => ({ oid, epoch: 1 })));
  assert.deepEqual(plan.fetches, []);
});

Deno.test("a joining node fetches every object it now holds from the previous epoch's holders in ring order", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const all = oidsWhere(() => true, 60);
  const plan = planRecovery(input({
    self: E,
    epochs: [e1, e2],
    storeEpoch: 0,
    gathered: listsWith([A, B, C, D], all),
  }));
  const mine = all.filter((o) => holderKeys(e2, o).includes(nodeKey(E)));
  assert.ok(mine.length > 0);
  assert.deepEqual(plan.fetches.map((f) => f.oid), mine);
  for (const f of plan.fetches) {
    assert.deepEqual(describe(f.sources), holderKeys(e1, f.oid).map((k) => `${k}@1`));
    assert.deepEqual(f.hashCandidates, []);
    assert.equal(f.copies, 3);
  }
  assert.deepEqual(plan.moves, []);
});

Deno.test("sources go from the previous epoch back to the oldest epoch given, skipping the node itself", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D]);
  const e3 = epochRing(3, [A, B, C, D, E]);
  const [oid] = oidsWhere((o) =>
    holderKeys(e3, o).includes(nodeKey(E)) && !holderKeys(e2, o).includes(nodeKey(D))
  );
  const plan = planRecovery(input({ self: E, epochs: [e3, e1, e2], storeEpoch: 0 }));
  const f = fetchOf(
    planRecovery(input({
      self: E,
      epochs: [e3, e1, e2],
      storeEpoch: 0,
      gathered: listsWith([A, B, C, D, E], [oid]),
    })),
    oid,
  );
  assert.deepEqual(plan.fetches, []);
  assert.deepEqual(describe(f.sources), [
    ...holderKeys(e2, oid).map((k) => `${k}@2`),
    ...holderKeys(e1, oid).map((k) => `${k}@1`),
  ]);
});

Deno.test("a holder that has left the cluster is never a source, and one that came back is", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, C, D]);
  const e3 = epochRing(3, [A, B, C, D, E]);
  const e3gone = epochRing(3, [A, C, D, E]);
  const [oid] = oidsWhere((o) =>
    holderKeys(e1, o).includes(nodeKey(B)) && holderKeys(e3, o).includes(nodeKey(E)) &&
    holderKeys(e3gone, o).includes(nodeKey(E))
  );
  // Without B at epoch 3 it is never asked; with B back it is asked for its copy of epoch 1.
  const gone = planRecovery(input({
    self: E,
    epochs: [e1, e2, e3gone],
    storeEpoch: 0,
    gathered: listsWith([A, C, D, E], [oid]),
  }));
  assert.equal(gone.fetches.length, 1);
  assert.ok(!describe(gone.fetches[0].sources).some((s) => s.startsWith(nodeKey(B))), "B is gone");
  const back = planRecovery(input({
    self: E,
    epochs: [e1, e2, e3],
    storeEpoch: 0,
    gathered: listsWith([A, B, C, D, E], [oid]),
  }));
  const f = fetchOf(back, oid);
  assert.ok(describe(f.sources).includes(`${nodeKey(B)}@1`));
});

Deno.test("the node's own stale copy of an epoch comes first among that epoch's holders and is a hash candidate", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const e3 = epochRing(3, [A, B, C, D]);
  // A held it at 1, lost it to E at 2 (moved to .stale/<oid>.1) and holds it again at 3.
  const [oid] = oidsWhere((o) =>
    holderKeys(e1, o).includes(nodeKey(A)) && !holderKeys(e2, o).includes(nodeKey(A))
  );
  const plan = planRecovery(input({
    self: A,
    epochs: [e1, e2, e3],
    localStale: [{ oid, epoch: 1 }],
    gathered: listsWith([B, C, D], [oid]),
  }));
  const f = fetchOf(plan, oid);
  // E left at epoch 3: its copy can't be asked for.
  assert.deepEqual(describe(f.sources), [
    ...holderKeys(e2, oid).filter((k) => k !== nodeKey(E)).map((k) => `${k}@2`),
    "local@1",
    ...holderKeys(e1, oid).filter((k) => k !== nodeKey(A)).map((k) => `${k}@1`),
  ]);
  assert.deepEqual(f.hashCandidates, [1]);
});

Deno.test("a local stale copy of an epoch in which the node was not a holder is only a hash candidate", () => {
  const e1 = epochRing(1, [A, B, C, D, E]);
  const e2 = epochRing(2, [A, B, C, D]);
  const [oid] = oidsWhere((o) =>
    !holderKeys(e1, o).includes(nodeKey(A)) && holderKeys(e2, o).includes(nodeKey(A))
  );
  const plan = planRecovery(input({
    self: A,
    epochs: [e1, e2],
    localStale: [{ oid, epoch: 1 }, { oid, epoch: 0 }],
  }));
  const f = fetchOf(plan, oid);
  assert.ok(!f.sources.some((s) => s.kind === "local"));
  assert.deepEqual(f.hashCandidates, [1, 0]);
});

Deno.test("a node that missed epochs moves all its live objects to stale under its store epoch and fetches the ones it holds", () => {
  const e2 = epochRing(2, [A, B, C, D]);
  const e3 = epochRing(3, [B, C, D]);
  const e4 = epochRing(4, [A, B, C, D]);
  const local = oidsWhere((o) => holderKeys(e2, o).includes(nodeKey(A)), 20);
  const plan = planRecovery(input({
    self: A,
    epochs: [e2, e3, e4],
    storeEpoch: 2,
    local,
    gathered: listsWith([B, C, D], local),
  }));
  assert.equal(plan.trustedLocal, false);
  assert.deepEqual(plan.moves, local.map((oid) => ({ oid, epoch: 2 })));
  const owned = local.filter((o) => holderKeys(e4, o).includes(nodeKey(A)));
  assert.deepEqual(plan.fetches.map((f) => f.oid), owned);
  for (const f of plan.fetches) {
    // Holders of epoch 3 first (they saw the writes A missed), then A's own copy of epoch 2.
    assert.deepEqual(describe(f.sources).slice(0, 3), holderKeys(e3, f.oid).map((k) => `${k}@3`));
    assert.equal(describe(f.sources)[3], "local@2");
    assert.deepEqual(f.hashCandidates, [2]);
  }
});

Deno.test("a node whose store epoch is the previous one trusts its store, one epoch older does not", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D]);
  const e3 = epochRing(3, [A, B, C, D, E]);
  const local = oidsWhere((o) => holderKeys(e3, o).includes(nodeKey(A)), 5);
  const base = { self: A, epochs: [e1, e2, e3], local };
  assert.equal(planRecovery(input({ ...base, storeEpoch: 3 })).trustedLocal, true);
  assert.equal(planRecovery(input({ ...base, storeEpoch: 2 })).moves.length, 0);
  const old = planRecovery(input({ ...base, storeEpoch: 1 }));
  assert.equal(old.trustedLocal, false);
  assert.deepEqual(old.moves.map((m) => m.oid), local);
  assert.ok(old.moves.every((m) => m.epoch === 1));
});

Deno.test("a new node with leftover objects moves them under epoch 0 and trusts none", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D]);
  const local = oidsWhere(() => true, 10);
  const plan = planRecovery(input({ self: D, epochs: [e1, e2], storeEpoch: 0, local }));
  assert.deepEqual(plan.moves, local.map((oid) => ({ oid, epoch: 0 })));
  for (const f of plan.fetches) assert.deepEqual(f.hashCandidates, [0]);
});

Deno.test("a restart within the epoch moves again under the previous epoch, as the first plan did", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const local = oidsWhere((o) => !holderKeys(e2, o).includes(nodeKey(A)), 3);
  const plan = planRecovery(input({ self: A, epochs: [e1, e2], storeEpoch: 2, local }));
  assert.deepEqual(plan.moves, local.map((oid) => ({ oid, epoch: 1 })));
});

Deno.test("planning again on the store a plan produced gives an empty plan", () => {
  const r = new Prng(4);
  for (let round = 0; round < 30; round++) {
    const pool = [A, B, C, D, E, node(6, { zone: 2 }), node(7, { vnodes: 0 })];
    const e1 = epochRing(1, r.shuffle(pool).slice(0, 4));
    const e2 = epochRing(2, r.shuffle(pool).slice(0, 5));
    const members = e2.ring.nodes;
    const self = r.pick(members);
    const all = oidsWhere(() => true, 50, 1 + round);
    const local = all.filter(() => r.chance(0.4));
    const localStale: StaleObject[] = all.filter(() => r.chance(0.2)).map((oid) => ({
      oid,
      epoch: 1,
    }));
    const base = {
      self,
      epochs: [e1, e2],
      storeEpoch: r.chance(0.5) ? 1 : 0,
      gathered: listsWith(members, all),
    };
    const plan = planRecovery(input({ ...base, local, localStale }));
    const after = new Set(local);
    const stale = [...localStale];
    for (const m of plan.moves) {
      after.delete(m.oid);
      stale.push(m);
    }
    for (const f of plan.fetches) after.add(f.oid);
    const again = planRecovery(input({
      ...base,
      storeEpoch: 2,
      local: [...after],
      localStale: stale,
    }));
    assert.deepEqual(again.moves, [], `round ${round}`);
    assert.deepEqual(again.fetches, [], `round ${round}`);
  }
});

Deno.test("an object known only from another node's stale copy is still recovered", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const [oid] = oidsWhere((o) => holderKeys(e2, o).includes(nodeKey(E)));
  const plan = planRecovery(input({
    self: E,
    epochs: [e1, e2],
    storeEpoch: 0,
    gathered: [{ node: D, oids: [oid] }, { node: A, oids: [] }, { node: B, oids: [] }, {
      node: C,
      oids: [],
    }, { node: E, oids: [] }],
  }));
  assert.deepEqual(plan.fetches.map((f) => f.oid), [oid]);
});

Deno.test("objects the node does not hold in the current ring are never fetched, even when listed everywhere", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const all = oidsWhere(() => true, 80);
  const plan = planRecovery(input({
    self: E,
    epochs: [e1, e2],
    storeEpoch: 0,
    gathered: listsWith([A, B, C, D], all),
  }));
  for (const f of plan.fetches) assert.ok(holderKeys(e2, f.oid).includes(nodeKey(E)));
});

Deno.test("copies are capped by each epoch's zones: two zones give two sources per epoch and a third zone adds a holder", () => {
  const a = node(1, { zone: 1 });
  const b = node(2, { zone: 1 });
  const c = node(3, { zone: 2 });
  const d = node(4, { zone: 3 });
  const e1 = epochRing(1, [a, b, c]);
  const e2 = epochRing(2, [a, b, c, d]);
  assert.equal(e1.ring.nrZones, 2);
  const all = oidsWhere(() => true, 40);
  const plan = planRecovery(input({
    self: d,
    epochs: [e1, e2],
    storeEpoch: 0,
    gathered: listsWith([a, b, c], all),
  }));
  // With three zones every object has a replica in zone 3, and d is its only node.
  assert.deepEqual(plan.fetches.map((f) => f.oid), all);
  for (const f of plan.fetches) {
    assert.equal(f.sources.length, 2);
    assert.deepEqual(describe(f.sources), holderKeys(e1, f.oid).map((k) => `${k}@1`));
  }
});

Deno.test("a gateway holds nothing: it moves all its objects away, fetches nothing and is never a source", () => {
  const g = node(9, { vnodes: 0 });
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, g]);
  const local = oidsWhere(() => true, 10);
  const plan = planRecovery(input({ self: g, epochs: [e1, e2], local }));
  assert.deepEqual(plan.moves, local.map((oid) => ({ oid, epoch: 1 })));
  assert.deepEqual(plan.fetches, []);
  const e3 = epochRing(3, [A, B, C, D, g]);
  const all = oidsWhere(() => true, 40);
  const other = planRecovery(input({
    self: D,
    epochs: [e1, e2, e3],
    storeEpoch: 1,
    gathered: listsWith([A, B, C, g], all),
  }));
  for (const f of other.fetches) {
    assert.ok(!describe(f.sources).some((s) => s.startsWith(nodeKey(g))));
  }
});

Deno.test("each object's copies come from copiesOf, deleted VDIs included", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const one = oidsWhere((o) => holderKeys(e2, o, 1).includes(nodeKey(E)), 3, 1);
  const three = oidsWhere((o) => holderKeys(e2, o).includes(nodeKey(E)), 3, 2);
  const asked: number[] = [];
  const plan = planRecovery(input({
    self: E,
    epochs: [e1, e2],
    storeEpoch: 0,
    copiesOf: (oid) => {
      const vid = Number(oid >> 32n);
      asked.push(vid);
      return vid === 1 ? 1 : 3; // VDI 1 was deleted: its objects still have their copies
    },
    gathered: listsWith([A, B, C, D], [...one, ...three]),
  }));
  assert.deepEqual(plan.fetches.map((f) => f.oid), [...one, ...three]);
  for (const oid of one) {
    assert.equal(fetchOf(plan, oid).copies, 1);
    assert.equal(fetchOf(plan, oid).sources.length, 1);
  }
  for (const oid of three) assert.equal(fetchOf(plan, oid).sources.length, 3);
  assert.ok(asked.includes(1) && asked.includes(2));
});

Deno.test("an erasure-coded copy policy is refused", () => {
  const e1 = epochRing(1, [A, B, C]);
  assert.throws(
    () =>
      planRecovery(input({
        self: A,
        epochs: [e1],
        storeEpoch: 1,
        local: [dataOid(1, 0)],
        copyPolicyOf: () => 0x22,
      })),
    AssertionError,
  );
});

Deno.test("bad copies and bad inputs are assertion failures", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D]);
  const bad = (over: Partial<PlanInput>) =>
    assert.throws(
      () => planRecovery({ ...input({ self: A, epochs: [e1, e2] }), ...over }),
      AssertionError,
    );
  bad({ copiesOf: () => 0, local: [dataOid(1, 0)] });
  bad({ copiesOf: () => 32, local: [dataOid(1, 0)] });
  bad({ epochs: [e1] });
  bad({ self: E });
  bad({ storeEpoch: 3 });
  bad({ epochs: [e1, e2, e2] });
  bad({ epochs: [e1, e2, epochRing(5, [A])] });
  bad({ currentEpoch: 0, epochs: [epochRing(0, [A])] });
});

Deno.test("an empty current ring gives an empty plan", () => {
  const g1 = node(1, { vnodes: 0 });
  const e1 = epochRing(1, [A, B, g1]);
  const e2 = epochRing(2, [g1]);
  const plan = planRecovery(input({ self: g1, epochs: [e1, e2], local: [dataOid(1, 1)] }));
  assert.deepEqual(plan.moves, []);
  assert.deepEqual(plan.fetches, []);
});

Deno.test("current members without a gathered list are reported missing", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D]);
  const plan = planRecovery(input({
    self: A,
    epochs: [e1, e2],
    gathered: [{ node: B, oids: [] }, { node: E, oids: [] }],
  }));
  assert.deepEqual(keys(plan.missingLists), keys([C, D]));
});

Deno.test("inode objects are fetched first, then the others by oid; moves are in oid order", () => {
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const inodes = oidsWhere(
    (o) => holderKeys(e2, o).includes(nodeKey(E)),
    3,
    0,
    (_, i) => (1n << 63n) | (BigInt(i + 1) << 32n),
  );
  const data = oidsWhere((o) => holderKeys(e2, o).includes(nodeKey(E)), 5);
  const plan = planRecovery(input({
    self: E,
    epochs: [e1, e2],
    storeEpoch: 0,
    local: [data[4], data[1]],
    gathered: listsWith([A, B, C, D], [...data].reverse().concat(inodes)),
  }));
  assert.deepEqual(plan.fetches.map((f) => f.oid), [...inodes, ...data]);
  assert.deepEqual(plan.moves.map((m) => m.oid), [data[1], data[4]]);
});

Deno.test("the plan does not depend on the order of its inputs", () => {
  const r = new Prng(11);
  const e1 = epochRing(1, [A, B, C, D]);
  const e2 = epochRing(2, [A, B, D, E]);
  const e3 = epochRing(3, [A, B, C, D, E]);
  const all = oidsWhere(() => true, 60);
  const stale = all.filter(() => r.chance(0.3)).map((oid) => ({ oid, epoch: 2 }));
  const local = all.filter(() => r.chance(0.3));
  const lists = listsWith([A, B, C, D, E], all).map((l) => ({ ...l, oids: r.shuffle(l.oids) }));
  const base = { self: C, storeEpoch: 1, local, localStale: stale, epochs: [e1, e2, e3] };
  const p1 = planRecovery(input({ ...base, gathered: lists }));
  const p2 = planRecovery(input({
    ...base,
    epochs: [e3, e1, e2],
    local: r.shuffle(local),
    localStale: r.shuffle(stale),
    gathered: r.shuffle(lists),
  }));
  assert.deepEqual(p1, p2);
});

Deno.test("current holders that listed the object and are in no older ring come last, at the current epoch", () => {
  const e1 = epochRing(1, [A, B, C]);
  const e2 = epochRing(2, [A, B, C, D, E]);
  const [oid] = oidsWhere((o) => {
    const h = holderKeys(e2, o);
    return h.includes(nodeKey(D)) && h.includes(nodeKey(E));
  });
  const plan = planRecovery(input({
    self: D,
    epochs: [e1, e2],
    storeEpoch: 0,
    gathered: [{ node: E, oids: [oid] }, ...listsWith([A, B, C], [])],
  }));
  const src = describe(fetchOf(plan, oid).sources);
  assert.deepEqual(src, [...holderKeys(e1, oid).map((k) => `${k}@1`), `${nodeKey(E)}@2`]);
});

Deno.test("a peer serves its live copy first, else its stale copy of exactly the target epoch, and only for an epoch older than its own", () => {
  assert.equal(peerCopyFor(true, [3], 3, 5), "live");
  assert.deepEqual(peerCopyFor(false, [2, 3], 3, 5), { staleEpoch: 3 });
  assert.deepEqual(peerCopyFor(false, new Set([3]), 3, 5), { staleEpoch: 3 });
  assert.equal(peerCopyFor(false, [2, 4], 3, 5), null);
  assert.equal(peerCopyFor(false, [5], 5, 5), null);
  assert.equal(peerCopyFor(false, [], 1, 5), null);
});

Deno.test("epochRing builds the ring of the nodes given, gateways included as non-holders", () => {
  const g = node(8, { vnodes: 0 });
  const er = epochRing(4, [A, B, g]);
  assert.equal(er.epoch, 4);
  assert.equal(er.ring.nodes.length, 3);
  assert.equal(er.ring.nrZones, 2);
  assert.throws(() => epochRing(-1, [A]), AssertionError);
});

Deno.test("moves do not depend on the object lists, and planning after them gives the one-shot plan's fetches and no moves", () => {
  const r = new Prng(21);
  for (let round = 0; round < 30; round++) {
    const pool = [A, B, C, D, E, node(6, { zone: 3 }), node(7, { vnodes: 0 })];
    const e1 = epochRing(1, r.shuffle(pool).slice(0, 4));
    const e2 = epochRing(2, r.shuffle(pool).slice(0, 4));
    const e3 = epochRing(3, r.shuffle(pool).slice(0, 5));
    const self = r.pick(e3.ring.nodes);
    const all = oidsWhere(() => true, 60, 100 + round);
    const local = all.filter(() => r.chance(0.4));
    const localStale = all.filter(() => r.chance(0.2)).map((oid) => ({ oid, epoch: 1 }));
    const storeEpoch = r.pick([0, 1, 2]);
    const gathered = listsWith(e3.ring.nodes, all.filter(() => r.chance(0.7)));
    const base = { self, epochs: [e1, e2, e3], storeEpoch, local, localStale };
    const oneShot = planRecovery(input({ ...base, gathered }));
    const { moves, trustedLocal } = planMoves(input({ ...base, gathered: [] }));
    assert.deepEqual(moves, oneShot.moves);
    assert.equal(trustedLocal, oneShot.trustedLocal);
    const moved = new Set(moves.map((m) => m.oid));
    const after = planRecovery(input({
      ...base,
      storeEpoch: 3,
      local: local.filter((o) => !moved.has(o)),
      localStale: [...localStale, ...moves],
      gathered,
    }));
    assert.deepEqual(after.moves, []);
    assert.deepEqual(after.fetches, oneShot.fetches, `round ${round}`);
  }
});
