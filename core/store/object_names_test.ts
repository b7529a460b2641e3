import assert from "node:assert/strict";
import {
  objectFileName,
  parseObjectFileName,
  parseStaleFileName,
  staleFileName,
  tmpFileName,
} from "./object_names.ts";

Deno.test("objectFileName() is %016lx of the oid", () => {
  assert.equal(objectFileName(0x807c2b2500000000n), "807c2b2500000000");
  assert.equal(objectFileName(0x007c2b250000000fn), "007c2b250000000f");
  assert.equal(objectFileName(0n), "0000000000000000");
  assert.equal(objectFileName(0xffffffffffffffffn), "ffffffffffffffff");
  assert.equal(tmpFileName(0x087c2b2500000000n), "087c2b2500000000.tmp");
});

Deno.test("objectFileName() rejects oids outside u64", () => {
  assert.throws(() => objectFileName(-1n));
  assert.throws(() => objectFileName(1n << 64n));
});

Deno.test("parseObjectFileName() accepts exactly 16 lowercase hex digits", () => {
  assert.equal(parseObjectFileName("807c2b2500000000"), 0x807c2b2500000000n);
  for (const name of ["807c2b2500000000.tmp", "807C2B2500000000", "7c2b2500000000", ".stale"]) {
    assert.equal(parseObjectFileName(name), null, name);
  }
  assert.equal(parseObjectFileName("007c2b250000000f_2"), null);
});

Deno.test("stale file names are <oid>.<epoch> with a decimal epoch", () => {
  assert.equal(staleFileName(0xfn, 12), "000000000000000f.12");
  assert.deepEqual(parseStaleFileName("000000000000000f.12"), { oid: 0xfn, epoch: 12 });
  assert.deepEqual(parseStaleFileName("807c2b2500000000.4294967295"), {
    oid: 0x807c2b2500000000n,
    epoch: 0xffffffff,
  });
  for (const name of ["000000000000000f", "000000000000000f.", "000000000000000f.x", "f.1"]) {
    assert.equal(parseStaleFileName(name), null, name);
  }
  assert.equal(parseStaleFileName("000000000000000f.4294967296"), null);
  assert.throws(() => staleFileName(1n, -1));
});
