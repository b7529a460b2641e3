import assert from "node:assert/strict";
import { makeNode, type SdNode } from "../proto/node.ts";
import { sdHash, sdHashNext } from "../hash/fnv.ts";
import { buildRing } from "./ring.ts";
import { autoVnodes, nodeSeedHash, vnodeHashes } from "./vnodes.ts";

const vectors = JSON.parse(
  Deno.readTextFileSync(
    new URL("../../../shared/testdata/placement-vectors.json", import.meta.url),
  ),
);

function withSpace(spaces: bigint[], nrVnodes = 128): SdNode[] {
  return spaces.map((space, i) => makeNode(`10.${i >> 8}.${i & 255}.1`, 7000, { nrVnodes, space }));
}

function counts(nodes: SdNode[]): number[] {
  return nodes.map((n) => n.nrVnodes);
}

Deno.test("nodeSeedHash() is sd_hash of addr[16] ‖ port LE", () => {
  const node = makeNode("127.0.0.1", 0x1b58);
  const buf = new Uint8Array(18);
  buf[12] = 127;
  buf[15] = 1;
  buf[16] = 0x58;
  buf[17] = 0x1b;
  assert.equal(nodeSeedHash(node.nid), sdHash(buf));
});

Deno.test("vnodeHashes() chains sd_hash_next from the seed and matches the vectors", () => {
  const node = makeNode("127.0.0.1", 7000, { nrVnodes: 4 });
  const hs = vnodeHashes(node);
  assert.equal(hs.length, 4);
  assert.equal(hs[0], sdHashNext(nodeSeedHash(node.nid)));
  for (let i = 1; i < 4; i++) assert.equal(hs[i], sdHashNext(hs[i - 1]));
  const want = vectors.rings[0].first_vnode_hashes["127.0.0.1:7000"];
  assert.deepEqual(vnodeHashes(node, 3).map((h) => h.toString(16).padStart(16, "0")), want);
  assert.deepEqual(vnodeHashes(node, 0), []);
});

Deno.test("autoVnodes() gives 128 to every node of equal space", () => {
  assert.deepEqual(counts(autoVnodes(withSpace([5n << 30n, 5n << 30n, 5n << 30n]))), [
    128,
    128,
    128,
  ]);
});

Deno.test("autoVnodes() scales by space over the mean, rounded to nearest", () => {
  // mean 2.25: 56.9, 113.8, 227.6, 113.8
  assert.deepEqual(counts(autoVnodes(withSpace([1n, 2n, 4n, 2n].map((x) => x << 30n)))), [
    57,
    114,
    228,
    114,
  ]);
});

Deno.test("autoVnodes() divides the mean in integers, as v1.0's u64 average does", () => {
  // sum 3 / 2 nodes = 1, not 1.5: 128 and 256 rather than 85 and 171.
  assert.deepEqual(counts(autoVnodes(withSpace([1n, 2n]))), [128, 256]);
});

Deno.test("autoVnodes() rounds halves to even like rintf()", () => {
  // mean 256: 0.5 → 0, 1.5 → 2, 254, 256
  assert.deepEqual(counts(autoVnodes(withSpace([1n, 3n, 508n, 512n]))), [0, 2, 254, 256]);
});

Deno.test("autoVnodes() keeps gateways at 0 and out of the mean", () => {
  const nodes = withSpace([4n << 30n, 4n << 30n, 100n << 30n]);
  nodes[2].nrVnodes = 0;
  const got = autoVnodes(nodes);
  assert.deepEqual(counts(got), [128, 128, 0]);
  assert.equal(buildRing(got).nrZones, 2);
});

Deno.test("autoVnodes() gives 0 to a storage node without space and leaves it out of the mean", () => {
  assert.deepEqual(counts(autoVnodes(withSpace([0n, 8n, 8n]))), [0, 128, 128]);
});

Deno.test("autoVnodes() leaves the counts alone when no node reports space", () => {
  const nodes = withSpace([0n, 0n]);
  nodes[1].nrVnodes = 0;
  assert.deepEqual(counts(autoVnodes(nodes)), [128, 0]);
  assert.deepEqual(autoVnodes([]), []);
});

Deno.test("autoVnodes() handles spaces beyond 2^53 and clamps to the u16 field", () => {
  assert.deepEqual(counts(autoVnodes(withSpace([1n << 60n, 1n << 60n, 1n << 61n]))), [
    96,
    96,
    192,
  ]);
  const spaces = [1n << 40n];
  for (let i = 0; i < 599; i++) spaces.push(1n);
  const got = autoVnodes(withSpace(spaces));
  assert.equal(got[0].nrVnodes, 65535);
  assert.equal(got[1].nrVnodes, 0);
});

Deno.test("autoVnodes() returns copies and does not touch its input", () => {
  const nodes = withSpace([1n, 2n]);
  const got = autoVnodes(nodes);
  assert.deepEqual(counts(nodes), [128, 128]);
  assert.notEqual(got[0], nodes[0]);
  assert.equal(got[0].nid, nodes[0].nid);
});
