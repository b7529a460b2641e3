import assert from "node:assert/strict";
import { AssertionError } from "../assert.ts";
import { DISKFULL_RESERVE_MIN_BYTES, DISKFULL_RESERVE_PERMILLE } from "../limits.ts";
import { makeNode } from "../proto/node.ts";
import { decideDiskfull, freeBytes, incomingBytes, objectFits, reserveBytes } from "./diskfull.ts";
import type { Fetch } from "./plan.ts";

const MIB = 1024 * 1024;
const peer = makeNode("127.0.0.1", 7001, { zone: 1 });
const viaPeer = (oid: bigint): Fetch => ({
  oid,
  copies: 2,
  sources: [{ kind: "peer", epoch: 1, node: peer }],
  hashCandidates: [],
});
const viaLocal = (oid: bigint): Fetch => ({
  oid,
  copies: 2,
  sources: [{ kind: "local", epoch: 1 }, { kind: "peer", epoch: 1, node: peer }],
  hashCandidates: [1],
});

Deno.test("freeBytes() is the smaller of the file system's free space and capacity − used", () => {
  assert.equal(freeBytes({ fsFree: 100, capacity: 1000, used: 500 }), 100);
  assert.equal(freeBytes({ fsFree: 900, capacity: 1000, used: 500 }), 500);
  assert.equal(freeBytes({ fsFree: 900, capacity: 1000, used: 1200 }), 0);
  assert.equal(freeBytes({ fsFree: 900, capacity: 0, used: 1200 }), 900, "unknown capacity");
  assert.throws(() => freeBytes({ fsFree: -1, capacity: 0, used: 0 }), AssertionError);
  assert.throws(() => freeBytes({ fsFree: 1.5, capacity: 0, used: 0 }), AssertionError);
});

Deno.test("reserveBytes() is a share of the capacity, never below the minimum", () => {
  assert.equal(reserveBytes(0), DISKFULL_RESERVE_MIN_BYTES);
  assert.equal(reserveBytes(40 * MIB), DISKFULL_RESERVE_MIN_BYTES);
  const big = 1024 * 1024 * MIB;
  assert.equal(reserveBytes(big), Math.floor(big * DISKFULL_RESERVE_PERMILLE / 1000));
});

Deno.test("incomingBytes() counts fetches from peers, not links back from local stale copies", () => {
  const size = (oid: bigint) => oid === 1n ? 4 * MIB : 8 * MIB;
  assert.equal(incomingBytes([], size), 0);
  assert.equal(incomingBytes([viaPeer(1n), viaPeer(2n)], size), 12 * MIB);
  assert.equal(incomingBytes([viaPeer(1n), viaLocal(2n)], size), 4 * MIB);
  assert.equal(incomingBytes([viaPeer(1n), viaPeer(1n)], size), 4 * MIB, "counted once");
  const noSource: Fetch = { oid: 3n, copies: 1, sources: [], hashCandidates: [] };
  assert.equal(incomingBytes([noSource], size), 8 * MIB, "unknown outcome counts");
  assert.throws(() => incomingBytes([viaPeer(1n)], () => -1), AssertionError);
});

Deno.test("decideDiskfull() starts only when the reserve stays free afterwards", () => {
  const space = { fsFree: 100 * MIB, capacity: 100 * MIB, used: 0 };
  const reserve = reserveBytes(space.capacity);
  assert.deepEqual(decideDiskfull(100 * MIB - reserve, space), {
    start: true,
    incoming: 100 * MIB - reserve,
    free: 100 * MIB,
    reserve,
  });
  assert.equal(decideDiskfull(100 * MIB - reserve + 1, space).start, false);
  assert.equal(decideDiskfull(0, { fsFree: 0, capacity: 1, used: 5 }).start, true, "nothing");
  // The configured capacity bounds it even when the file system has room.
  const capped = { fsFree: 1024 * MIB, capacity: 64 * MIB, used: 40 * MIB };
  assert.equal(decideDiskfull(16 * MIB, capped).start, true);
  assert.equal(decideDiskfull(24 * MIB, capped).start, false);
  // Exhaustive over a small grid: start ⟺ incoming = 0 or incoming + reserve ≤ free.
  for (const fsFree of [0, 4, 8, 12, 16, 64].map((m) => m * MIB)) {
    for (const capacity of [0, 16, 64].map((m) => m * MIB)) {
      for (const used of [0, 8, 64].map((m) => m * MIB)) {
        for (const incoming of [0, 4, 8, 16].map((m) => m * MIB)) {
          const s = { fsFree, capacity, used };
          const free = freeBytes(s);
          const want = incoming === 0 || incoming + reserveBytes(capacity) <= free;
          assert.equal(decideDiskfull(incoming, s).start, want, JSON.stringify({ s, incoming }));
        }
      }
    }
  }
});

Deno.test("objectFits() needs the whole object free", () => {
  assert.equal(objectFits(4 * MIB, 4 * MIB), true);
  assert.equal(objectFits(4 * MIB, 4 * MIB - 1), false);
  assert.equal(objectFits(0, 0), true);
});
