import assert from "node:assert/strict";
import { familyOf, reclaimableFamily } from "./family.ts";

const m = (vid: number, parentVid: number, deleted = false) => ({ vid, parentVid, deleted });

Deno.test("family: parents, children and clones are one family", () => {
  const members = [m(10, 0), m(11, 10), m(12, 11), m(50, 11), m(51, 50), m(70, 0), m(71, 70)];
  assert.deepEqual(familyOf(12, members), [10, 11, 12, 50, 51]);
  assert.deepEqual(familyOf(51, members), [10, 11, 12, 50, 51]);
  assert.deepEqual(familyOf(70, members), [70, 71]);
  // an unknown parent (already reclaimed) ends the walk
  assert.deepEqual(familyOf(5, [m(5, 4)]), [5]);
});

Deno.test("family: reclaimable only once every other member is deleted", () => {
  const members = [m(10, 0, true), m(11, 10), m(50, 10, true)];
  assert.deepEqual(reclaimableFamily(11, members), [10, 11, 50]);
  assert.deepEqual(reclaimableFamily(50, members), []);
  assert.deepEqual(reclaimableFamily(7, [m(7, 0)]), [7]);
});
