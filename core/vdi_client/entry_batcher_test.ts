import assert from "node:assert/strict";
import { EntryBatcher } from "./entry_batcher.ts";

Deno.test("EntryBatcher sends the first update at once and the ones behind it in runs", async () => {
  const writes: { vid: number; first: number; values: number[] }[] = [];
  let release: () => void = () => {};
  const b = new EntryBatcher((vid, first, values) => {
    writes.push({ vid, first, values: [...values] });
    return writes.length === 1 ? new Promise((r) => release = r) : Promise.resolve();
  });
  const first = b.set(7, 10, 7);
  assert.equal(writes.length, 1, "the first update is not delayed");
  const behind = [b.set(7, 12, 7), b.set(7, 11, 7), b.set(7, 20, 7), b.set(9, 13, 9)];
  assert.equal(writes.length, 1, "the others wait for it");
  release();
  await Promise.all([first, ...behind]);
  assert.deepEqual(writes, [
    { vid: 7, first: 10, values: [7] },
    { vid: 7, first: 11, values: [7, 7] },
    { vid: 7, first: 20, values: [7] },
    { vid: 9, first: 13, values: [9] },
  ]);
});

Deno.test("EntryBatcher fails the updates of a failed write only", async () => {
  let release: () => void = () => {};
  let n = 0;
  const b = new EntryBatcher((_vid, first) => {
    n++;
    if (n === 1) return new Promise((r) => release = r);
    return first === 5 ? Promise.reject(new Error("inode write failed")) : Promise.resolve();
  });
  const first = b.set(1, 0, 1);
  const bad = b.set(1, 5, 1);
  const good = b.set(1, 8, 1);
  release();
  await first;
  await assert.rejects(bad, /inode write failed/);
  await good;
  // The batcher goes on after a failure.
  await b.set(1, 9, 1);
});
