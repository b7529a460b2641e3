/**
 * FNV-1a 64 and the sd_hash family built on it (protocol sheet §7.1). Every object's place in the
 * cluster comes from these, so they must match v1.0 bit for bit.
 *
 * The math runs on two 32-bit halves with plain number arithmetic instead of BigInt: the FNV prime
 * is 2^40 + 0x1b3, so `h * prime mod 2^64` is `h * 0x1b3 + (h << 40)`, which splits into 32-bit
 * pieces whose products stay exact in a double. The gateway hashes an oid per request, and the
 * BigInt form is several times slower. The `*Into` helpers write the result into a caller-owned
 * `Uint32Array` `[hi, lo]` so the placement hot path allocates nothing.
 *
 * @module
 */

import { assert } from "../assert.ts";

/** The FNV-1 64-bit offset basis, FNV1_64_INIT in v1.0. */
export const FNV1A_64_INIT = 0xcbf29ce484222325n;

const INIT_HI = 0xcbf29ce4;
const INIT_LO = 0x84222325;
/** The FNV prime 0x100000001b3 is 2^40 + PRIME_LO. */
const PRIME_LO = 0x1b3;
const TWO_32 = 4294967296;
const U64_MAX = (1n << 64n) - 1n;

/** One FNV-1a round over a byte array, on halves; writes [hi, lo] (unsigned) to `out`. */
function fnvBytes(buf: Uint8Array, hi: number, lo: number, out: Uint32Array): void {
  for (let i = 0; i < buf.length; i++) {
    lo = (lo ^ buf[i]) >>> 0;
    const p = lo * PRIME_LO; // < 2^41: exact
    const carry = (p / TWO_32) | 0;
    hi = (Math.imul(hi, PRIME_LO) + carry + (lo << 8)) >>> 0;
    lo = p >>> 0;
  }
  out[0] = hi;
  out[1] = lo;
}

/**
 * fnv_64a_64 on halves: feeds the 8 bytes of v (vHi:vLo), least significant first, into h
 * (hHi:hLo). Writes [hi, lo] to `out`.
 */
function fnvWord(vHi: number, vLo: number, hi: number, lo: number, out: Uint32Array): void {
  for (let k = 0; k < 8; k++) {
    const b = k < 4 ? (vLo >>> (8 * k)) & 0xff : (vHi >>> (8 * (k - 4))) & 0xff;
    lo = (lo ^ b) >>> 0;
    const p = lo * PRIME_LO;
    const carry = (p / TWO_32) | 0;
    hi = (Math.imul(hi, PRIME_LO) + carry + (lo << 8)) >>> 0;
    lo = p >>> 0;
  }
  out[0] = hi;
  out[1] = lo;
}

function join(out: Uint32Array): bigint {
  return (BigInt(out[0]) << 32n) | BigInt(out[1]);
}

function assertU64(v: bigint, what: string): void {
  assert(v >= 0n && v <= U64_MAX, `${what} must be an unsigned 64-bit value`);
}

/** FNV-1a 64 of `buf`, continuing from `h` (default: the offset basis). fnv_64a_buf in v1.0. */
export function fnv1a64(buf: Uint8Array, h: bigint = FNV1A_64_INIT): bigint {
  assertU64(h, "hash");
  const out = new Uint32Array(2);
  fnvBytes(buf, Number(h >> 32n), Number(h & 0xffffffffn), out);
  return join(out);
}

/** fnv_64a_64: FNV-1a of the 8 bytes of `v` (least significant byte first), continuing from `h`. */
export function fnv64a64(v: bigint, h: bigint): bigint {
  assertU64(v, "value");
  assertU64(h, "hash");
  const out = new Uint32Array(2);
  fnvWord(
    Number(v >> 32n),
    Number(v & 0xffffffffn),
    Number(h >> 32n),
    Number(h & 0xffffffffn),
    out,
  );
  return join(out);
}

/** sd_hash: FNV-1a of `buf` from the basis, then mixed once more with fnv_64a_64(h, h). */
export function sdHash(buf: Uint8Array): bigint {
  const out = new Uint32Array(2);
  fnvBytes(buf, INIT_HI, INIT_LO, out);
  fnvWord(out[0], out[1], out[0], out[1], out);
  return join(out);
}

/** sd_hash_next: the next hash of a chain (vnodes, vdisks): fnv_64a_64(h, h). */
export function sdHashNext(h: bigint): bigint {
  assertU64(h, "hash");
  const out = new Uint32Array(2);
  const hi = Number(h >> 32n);
  const lo = Number(h & 0xffffffffn);
  fnvWord(hi, lo, hi, lo, out);
  return join(out);
}

/** sd_hash_oid: h = fnv_64a_64(oid, basis), then fnv_64a_64(h, h). The ring key of an object. */
export function sdHashOid(oid: bigint): bigint {
  assertU64(oid, "oid");
  const out = new Uint32Array(2);
  sdHashOidInto(Number(oid >> 32n), Number(oid & 0xffffffffn), out);
  return join(out);
}

/**
 * sdHashOid on halves, allocation-free: hashes the oid `oidHi:oidLo` (unsigned 32-bit halves)
 * and writes the hash as [hi, lo] into `out` (length ≥ 2). For the placement hot path.
 */
export function sdHashOidInto(oidHi: number, oidLo: number, out: Uint32Array): void {
  fnvWord(oidHi, oidLo, INIT_HI, INIT_LO, out);
  fnvWord(out[0], out[1], out[0], out[1], out);
}

/** sdHashNext on halves, allocation-free: writes sd_hash_next(hi:lo) as [hi, lo] into `out`. */
export function sdHashNextInto(hi: number, lo: number, out: Uint32Array): void {
  fnvWord(hi, lo, hi, lo, out);
}
