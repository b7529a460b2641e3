import assert from "node:assert/strict";
import { AllocationState } from "./protocol.ts";
import { vdiAllocation } from "./vdi_allocation.ts";

const HOLE = AllocationState.HOLE | AllocationState.ZERO;
const MIB = 1024 * 1024;

Deno.test("vdiAllocation() merges objects of one kind and cuts at the range's ends", () => {
  // Objects 0, 1 written, 2, 3 holes, 4 written (by a parent: any non-zero vid is data).
  const owners = [7, 7, 0, 0, 3];
  const owner = (i: number) => owners[i] ?? 0;
  assert.deepEqual(vdiAllocation(0, 5 * 4 * MIB, 4 * MIB, owner, 100), [
    { length: 8 * MIB, flags: 0 },
    { length: 8 * MIB, flags: HOLE },
    { length: 4 * MIB, flags: 0 },
  ]);
  // A range starting and ending inside objects.
  assert.deepEqual(vdiAllocation(4 * MIB + 512, 8 * MIB, 4 * MIB, owner, 100), [
    { length: 4 * MIB - 512, flags: 0 },
    { length: 4 * MIB + 512, flags: HOLE },
  ]);
  assert.deepEqual(vdiAllocation(9 * MIB, 4096, 4 * MIB, owner, 100), [
    { length: 4096, flags: HOLE },
  ]);
  assert.deepEqual(vdiAllocation(0, 0, 4 * MIB, owner, 100), []);
});

Deno.test("vdiAllocation() stops after max extents, covering a prefix", () => {
  const owner = (i: number) => i % 2; // hole, data, hole, data…
  const got = vdiAllocation(0, 10 * 4 * MIB, 4 * MIB, owner, 3);
  assert.deepEqual(got, [
    { length: 4 * MIB, flags: HOLE },
    { length: 4 * MIB, flags: 0 },
    { length: 4 * MIB, flags: HOLE },
  ]);
});

Deno.test("vdiAllocation() covers every byte exactly once for random layouts", () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 500; round++) {
    const objectSize = [4096, 65536, 4 * MIB][rand(3)];
    const owners = Array.from({ length: 40 }, () => rand(3) === 0 ? 0 : 1 + rand(5));
    const offset = rand(20 * objectSize);
    const length = rand(20 * objectSize);
    const got = vdiAllocation(offset, length, objectSize, (i) => owners[i], 1000);
    assert.equal(got.reduce((n, e) => n + e.length, 0), length);
    let at = offset;
    for (const [i, e] of got.entries()) {
      assert.ok(e.length > 0);
      if (i > 0) assert.notEqual(e.flags, got[i - 1].flags, "neighbours are merged");
      for (let b = at; b < at + e.length; b += Math.max(1, Math.floor(e.length / 7))) {
        const hole = owners[Math.floor(b / objectSize)] === 0;
        assert.equal(e.flags, hole ? HOLE : 0, `byte ${b}`);
      }
      at += e.length;
    }
  }
});
