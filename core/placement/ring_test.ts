import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { makeNode, nodeAddrString, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { sdHashOid } from "../hash/fnv.ts";
import { buildRing, Ring } from "./ring.ts";
import { vnodeHashes } from "./vnodes.ts";

interface VectorNode {
  addr: string;
  port: number;
  zone: number;
  nr_vnodes: number;
}
interface VectorRing {
  name: string;
  nodes: VectorNode[];
  first_vnode_hashes: Record<string, string[]>;
  placements: { oid: string; copies: number; replicas: string[] }[];
}

const vectors = JSON.parse(
  Deno.readTextFileSync(
    new URL("../../../shared/testdata/placement-vectors.json", import.meta.url),
  ),
);
const rings: VectorRing[] = vectors.rings;

function nodesOf(r: VectorRing): SdNode[] {
  return r.nodes.map((n) => makeNode(n.addr, n.port, { zone: n.zone, nrVnodes: n.nr_vnodes }));
}

/** Deterministic xorshift32 so failures replay. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomOid(next: () => number): bigint {
  return (BigInt(next()) << 32n) | BigInt(next());
}

/** A straightforward BigInt ring, written from §9.3/§9.4, to check Ring against. */
function referencePlace(nodes: SdNode[], oid: bigint, copies: number): number[] {
  const vnodes: { h: bigint; i: number }[] = [];
  nodes.forEach((n, i) => vnodeHashes(n).forEach((h) => vnodes.push({ h, i })));
  vnodes.sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : a.i - b.i));
  const zones = new Set(nodes.filter((n) => n.nrVnodes > 0).map((n) => n.zone));
  const want = Math.min(copies, zones.size);
  const key = sdHashOid(oid);
  let pos = vnodes.findIndex((v) => v.h >= key);
  if (pos < 0) pos = 0;
  const out: number[] = [];
  const used = new Set<number>();
  while (out.length < want) {
    const { i } = vnodes[pos];
    if (!used.has(nodes[i].zone)) {
      used.add(nodes[i].zone);
      out.push(i);
    }
    pos = (pos + 1) % vnodes.length;
  }
  return out;
}

/** A few shapes beyond the vectors: gateways, shared zones, uneven weights. */
function variedClusters(): SdNode[][] {
  const out: SdNode[][] = rings.map(nodesOf);
  out.push([
    makeNode("10.0.0.1", 7000, { zone: 1, nrVnodes: 0 }),
    makeNode("10.0.0.2", 7000, { zone: 1, nrVnodes: 3 }),
    makeNode("10.0.0.3", 7000, { zone: 2, nrVnodes: 1 }),
    makeNode("10.0.0.4", 7000, { zone: 2, nrVnodes: 200 }),
    makeNode("10.0.0.5", 7000, { zone: 3, nrVnodes: 7 }),
  ]);
  const many: SdNode[] = [];
  for (let i = 0; i < 40; i++) {
    many.push(makeNode("192.168.1." + (i + 1), 7000 + i, { zone: i % 9, nrVnodes: 1 + i * 3 }));
  }
  out.push(many);
  return out;
}

for (const r of rings) {
  Deno.test(`ring "${r.name}": every node's first vnode hashes match the vectors`, () => {
    for (const node of nodesOf(r)) {
      const want = r.first_vnode_hashes[nodeAddrString(node)];
      assert.ok(want, nodeAddrString(node));
      const got = vnodeHashes(node, want.length).map((h) => h.toString(16).padStart(16, "0"));
      assert.deepEqual(got, want);
    }
  });

  Deno.test(`ring "${r.name}": place() gives every vector's replicas in order`, () => {
    const ring = buildRing(nodesOf(r));
    for (const p of r.placements) {
      const got = ring.place(BigInt("0x" + p.oid), p.copies).map(nodeAddrString);
      assert.deepEqual(got, p.replicas, `${p.oid} × ${p.copies}`);
    }
  });
}

Deno.test("ring.place() agrees with a plain BigInt reference ring on random oids", () => {
  const next = rng(0xc0ffee);
  for (const nodes of variedClusters()) {
    const ring = buildRing(nodes);
    for (let i = 0; i < 300; i++) {
      const oid = randomOid(next);
      const copies = 1 + (next() % 6);
      assert.deepEqual(ring.placeIndexes(oid, copies), referencePlace(nodes, oid, copies));
    }
  }
});

Deno.test("ring.place() never returns two nodes of one zone and returns min(copies, nrZones)", () => {
  const next = rng(42);
  for (const nodes of variedClusters()) {
    const ring = buildRing(nodes);
    for (let i = 0; i < 500; i++) {
      const copies = 1 + (next() % 31);
      const got = ring.place(randomOid(next), copies);
      assert.equal(got.length, Math.min(copies, ring.nrZones));
      assert.equal(new Set(got.map((n) => n.zone)).size, got.length);
      assert.ok(got.every((n) => n.nrVnodes > 0), "a gateway never holds a replica");
    }
  }
});

Deno.test("ring.place() is deterministic and independent of the input order of nodes", () => {
  const next = rng(7);
  for (const nodes of variedClusters()) {
    const a = buildRing(nodes);
    const b = buildRing([...nodes].reverse());
    for (let i = 0; i < 200; i++) {
      const oid = randomOid(next);
      const pa = a.place(oid, 3);
      assert.deepEqual(a.place(oid, 3), pa);
      assert.deepEqual(b.place(oid, 3).map(nodeAddrString), pa.map(nodeAddrString));
    }
  }
});

Deno.test("ring.place() puts the first replica on the owner of the first vnode ≥ the key", () => {
  const next = rng(99);
  const ring = buildRing(
    rings[2].nodes.map((n) => makeNode(n.addr, n.port, { zone: n.zone, nrVnodes: n.nr_vnodes })),
  );
  for (let i = 0; i < 1000; i++) {
    const oid = randomOid(next);
    const key = sdHashOid(oid);
    let pos = 0;
    while (pos < ring.vnodeCount && ring.vnodeHash(pos) < key) pos++;
    if (pos === ring.vnodeCount) pos = 0;
    assert.equal(ring.placeIndexes(oid, 1)[0], ring.vnodeOwner(pos));
    assert.equal(ring.placeIndexes(oid, 3)[0], ring.vnodeOwner(pos));
  }
});

Deno.test("ring.place() wraps to the smallest vnode for a key above every vnode", () => {
  // Search a key above the last vnode, then check it lands on vnode 0's owner.
  const nodes = [makeNode("127.0.0.1", 7000, { zone: 0, nrVnodes: 2 })].concat(
    makeNode("127.0.0.1", 7001, { zone: 1, nrVnodes: 2 }),
  );
  const ring = buildRing(nodes);
  const last = ring.vnodeHash(ring.vnodeCount - 1);
  let oid = 0n;
  while (sdHashOid(oid) <= last) oid++;
  assert.deepEqual(ring.placeIndexes(oid, 2), [ring.vnodeOwner(0), 1 - ring.vnodeOwner(0)]);
});

Deno.test("ring.place() skips vnodes of a zone already chosen", () => {
  const ring = buildRing(nodesOf(rings[3])); // 7000 and 7001 share zone 0
  const next = rng(5);
  let sawSkip = false;
  for (let i = 0; i < 2000; i++) {
    const got = ring.place(randomOid(next), 3).map((n) => n.nid.port);
    assert.ok(!(got.includes(7000) && got.includes(7001)));
    if (got.includes(7001) || got.includes(7000)) sawSkip = true;
  }
  assert.ok(sawSkip);
  assert.equal(ring.nrZones, 3);
});

Deno.test("ring vnodes are sorted and a gateway contributes neither vnodes nor a zone", () => {
  const nodes = [
    makeNode("10.0.0.1", 7000, { zone: 9, nrVnodes: 0 }),
    makeNode("10.0.0.2", 7000, { zone: 1, nrVnodes: 5 }),
    makeNode("10.0.0.3", 7000, { zone: 1, nrVnodes: 6 }),
  ];
  const ring = new Ring(nodes);
  assert.equal(ring.vnodeCount, 11);
  assert.equal(ring.nrZones, 1);
  for (let i = 1; i < ring.vnodeCount; i++) assert.ok(ring.vnodeHash(i - 1) < ring.vnodeHash(i));
  for (let i = 0; i < ring.vnodeCount; i++) assert.notEqual(ring.vnodeOwner(i), 0);
  assert.equal(ring.place(123n, 3).length, 1);
  assert.deepEqual(ring.nodes, nodes);
});

Deno.test("an empty ring places nothing and says so", () => {
  for (const nodes of [[], [makeNode("10.0.0.1", 7000, { nrVnodes: 0 })]]) {
    const ring = buildRing(nodes);
    assert.equal(ring.isEmpty, true);
    assert.equal(ring.nrZones, 0);
    assert.deepEqual(ring.place(1n, 3), []);
  }
  assert.equal(buildRing(nodesOf(rings[0])).isEmpty, false);
});

Deno.test("ring.place() rejects a copy count outside 1..31 with INVALID_PARMS", () => {
  const ring = buildRing(nodesOf(rings[0]));
  for (const bad of [0, -1, 32, 1.5, NaN]) {
    assert.throws(
      () => ring.place(1n, bad),
      (e) => e instanceof SdError && e.result === Res.INVALID_PARMS,
      String(bad),
    );
  }
  assert.equal(ring.place(1n, 31).length, 3);
});

Deno.test("a ring keeps its placement when the node objects change after building", () => {
  const nodes = nodesOf(rings[0]);
  const ring = buildRing(nodes);
  const before = ring.placeIndexes(0x007c2b2500000000n, 3);
  nodes[0].nrVnodes = 0;
  nodes[1].zone = 2;
  assert.deepEqual(ring.placeIndexes(0x007c2b2500000000n, 3), before);
});

Deno.test("micro-check: an 8 × 128 ring builds and places 100k oids quickly", () => {
  const nodes = nodesOf(rings[1]);
  let t = performance.now();
  const ring = buildRing(nodes);
  const build = performance.now() - t;
  const next = rng(1);
  const oids: bigint[] = [];
  for (let i = 0; i < 100_000; i++) oids.push(randomOid(next) & 0x00ffffffffffffffn);
  // Warm up the JIT, then measure.
  for (let i = 0; i < 10_000; i++) ring.placeIndexes(oids[i], 3);
  t = performance.now();
  let sum = 0;
  for (const oid of oids) sum += ring.placeIndexes(oid, 3)[0];
  const place = performance.now() - t;
  const big: SdNode[] = [];
  for (let i = 0; i < 1000; i++) {
    big.push(makeNode(`10.${i >> 8}.${i & 255}.1`, 7000, { nrVnodes: 128 }));
  }
  t = performance.now();
  buildRing(big);
  const bigBuild = performance.now() - t;
  console.log(
    `ring 8×128 build ${build.toFixed(2)} ms; 100k place(copies 3) ${place.toFixed(1)} ms ` +
      `(${(place * 10).toFixed(0)} ns/op); ring 1000×128 build ${bigBuild.toFixed(1)} ms`,
  );
  assert.ok(sum >= 0);
});
