import assert from "node:assert/strict";
import {
  fnv1a64,
  FNV1A_64_INIT,
  fnv64a64,
  sdHash,
  sdHashNext,
  sdHashOid,
  sdHashOidInto,
} from "./fnv.ts";

const vectors = JSON.parse(
  Deno.readTextFileSync(
    new URL("../../../shared/testdata/placement-vectors.json", import.meta.url),
  ),
);

const PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

/** The spec's FNV-1a, byte by byte in BigInt: the reference for the fast versions. */
function refBytes(buf: Uint8Array, h = FNV1A_64_INIT): bigint {
  for (const b of buf) h = ((h ^ BigInt(b)) * PRIME) & MASK;
  return h;
}

function refWord(v: bigint, h: bigint): bigint {
  for (let i = 0n; i < 8n; i++) h = ((h ^ ((v >> (8n * i)) & 0xffn)) * PRIME) & MASK;
  return h;
}

function refHashOid(oid: bigint): bigint {
  const h = refWord(oid, FNV1A_64_INIT);
  return refWord(h, h);
}

/** Deterministic xorshift128+ so a failure can be replayed. */
function rng(seed: bigint): () => bigint {
  let s0 = seed | 1n;
  let s1 = (seed * 0x9e3779b97f4a7c15n) & MASK | 2n;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & MASK;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (s1 + y) & MASK;
  };
}

Deno.test("fnv1a64() matches every golden vector", () => {
  for (const v of vectors.fnv1a64) {
    const got = fnv1a64(new TextEncoder().encode(v.input));
    assert.equal(got.toString(16).padStart(16, "0"), v.hash, v.input);
  }
});

Deno.test("fnv1a64() continues from a given hash like two calls over the concatenation", () => {
  const a = new TextEncoder().encode("hello ");
  const b = new TextEncoder().encode("world");
  assert.equal(fnv1a64(b, fnv1a64(a)), fnv1a64(new TextEncoder().encode("hello world")));
});

Deno.test("sdHashOid() matches every golden vector", () => {
  for (const v of vectors.sd_hash_oid) {
    assert.equal(sdHashOid(BigInt("0x" + v.oid)).toString(16).padStart(16, "0"), v.hash, v.oid);
  }
});

Deno.test("the fast hashes agree with a BigInt reference on random inputs", () => {
  const next = rng(0x5eed1234n);
  const out = new Uint32Array(2);
  for (let i = 0; i < 2000; i++) {
    const v = next();
    const h = next();
    assert.equal(fnv64a64(v, h), refWord(v, h), `fnv64a64 ${v} ${h}`);
    assert.equal(sdHashNext(h), refWord(h, h));
    assert.equal(sdHashOid(v), refHashOid(v));
    sdHashOidInto(Number(v >> 32n), Number(v & 0xffffffffn), out);
    assert.equal((BigInt(out[0]) << 32n) | BigInt(out[1]), refHashOid(v));
    const buf = new Uint8Array(i % 40);
    for (let j = 0; j < buf.length; j++) buf[j] = Number(next() & 0xffn);
    assert.equal(fnv1a64(buf, h), refBytes(buf, h));
    assert.equal(sdHash(buf), refWord(refBytes(buf), refBytes(buf)));
  }
});

Deno.test("the fast hashes agree with the reference at the edges of the 64-bit range", () => {
  for (const v of [0n, 1n, 0xffffffffn, 0x100000000n, MASK, MASK - 1n, 1n << 63n]) {
    assert.equal(sdHashOid(v), refHashOid(v));
    assert.equal(sdHashNext(v), refWord(v, v));
    assert.equal(fnv64a64(v, MASK), refWord(v, MASK));
  }
});

Deno.test("the hash functions reject values outside the unsigned 64-bit range", () => {
  assert.throws(() => sdHashOid(-1n));
  assert.throws(() => sdHashOid(1n << 64n));
  assert.throws(() => sdHashNext(-1n));
  assert.throws(() => fnv1a64(new Uint8Array(1), 1n << 64n));
});
