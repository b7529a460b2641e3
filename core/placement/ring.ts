/**
 * The consistent-hashing ring and replica choice (protocol sheet §9.3, §9.4). A Ring is built
 * once per epoch and asked for every request, so it keeps the sorted vnode hashes in two
 * Uint32Arrays (high and low halves) and places an oid with one allocation-free hash and a binary
 * search.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_MAX_COPIES } from "../proto/constants.ts";
import type { SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { sdHashNextInto, sdHashOidInto } from "../hash/fnv.ts";
import { nodeSeedHash } from "./vnodes.ts";

const U64_MAX = (1n << 64n) - 1n;

/**
 * The vnode ring of one membership. Immutable after construction: it copies what it needs from
 * the nodes, so later changes to the node objects do not move anything.
 */
export class Ring {
  /** The nodes the ring was built from, in the caller's order; placeIndexes() indexes this. */
  readonly nodes: readonly SdNode[];
  /** Distinct zones among nodes with vnodes: the cap on the number of copies. */
  readonly nrZones: number;
  /** High and low 32 bits of each vnode's hash, sorted ascending as unsigned 64-bit values. */
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  /** Index into `nodes` of each vnode's owner. */
  readonly #owner: Uint32Array;
  /** Dense zone number (0 … nrZones-1) of each node. */
  readonly #zone: Uint32Array;
  /** Scratch for the key hash: per ring, so place() allocates nothing but its result. */
  readonly #key = new Uint32Array(2);
  readonly #chosenZones = new Uint32Array(SD_MAX_COPIES);

  /** Builds the ring of `nodes`; same as buildRing(). */
  constructor(nodes: readonly SdNode[]) {
    this.nodes = Object.freeze([...nodes]);
    const zoneIds = new Map<number, number>();
    this.#zone = new Uint32Array(nodes.length);
    let total = 0;
    nodes.forEach((node, i) => {
      assert(Number.isInteger(node.nrVnodes) && node.nrVnodes >= 0, "nrVnodes must be natural");
      if (node.nrVnodes === 0) return;
      total += node.nrVnodes;
      let z = zoneIds.get(node.zone);
      if (z === undefined) {
        z = zoneIds.size;
        zoneIds.set(node.zone, z);
      }
      this.#zone[i] = z;
    });
    this.nrZones = zoneIds.size;

    const hi = new Uint32Array(total);
    const lo = new Uint32Array(total);
    const owner = new Uint32Array(total);
    const h = new Uint32Array(2);
    let k = 0;
    nodes.forEach((node, i) => {
      if (node.nrVnodes === 0) return;
      const seed = nodeSeedHash(node.nid);
      h[0] = Number(seed >> 32n);
      h[1] = Number(seed & 0xffffffffn);
      for (let v = 0; v < node.nrVnodes; v++) {
        sdHashNextInto(h[0], h[1], h);
        hi[k] = h[0];
        lo[k] = h[1];
        owner[k] = i;
        k++;
      }
    });

    // Equal hashes (never seen in practice) keep the input order; the later one can never be a
    // replica of its own, since its zone is always taken by the earlier one.
    const order = new Uint32Array(total);
    for (let i = 0; i < total; i++) order[i] = i;
    order.sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || a - b);
    this.#hi = new Uint32Array(total);
    this.#lo = new Uint32Array(total);
    this.#owner = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      this.#hi[i] = hi[order[i]];
      this.#lo[i] = lo[order[i]];
      this.#owner[i] = owner[order[i]];
    }
  }

  /** True when no node has vnodes: nothing can be placed. */
  get isEmpty(): boolean {
    return this.#hi.length === 0;
  }

  /** Number of vnodes on the ring. */
  get vnodeCount(): number {
    return this.#hi.length;
  }

  /** The hash of the vnode at ring position `i` (sorted order). For diagnostics and tests. */
  vnodeHash(i: number): bigint {
    assert(Number.isInteger(i) && i >= 0 && i < this.#hi.length, "vnode index out of range");
    return (BigInt(this.#hi[i]) << 32n) | BigInt(this.#lo[i]);
  }

  /** Index into `nodes` of the owner of the vnode at ring position `i`. */
  vnodeOwner(i: number): number {
    assert(Number.isInteger(i) && i >= 0 && i < this.#hi.length, "vnode index out of range");
    return this.#owner[i];
  }

  /**
   * The replicas of `oid`, as indexes into `nodes`, first replica first (§9.4): the owner of the
   * first vnode whose hash is ≥ sd_hash_oid(oid) (wrapping to the smallest), then the owners of
   * the following vnodes clockwise, skipping any vnode whose node's zone is already chosen.
   * Returns min(copies, nrZones) indexes, so [] on an empty ring: check `isEmpty` first.
   * Throws SdError(INVALID_PARMS) unless 1 ≤ copies ≤ SD_MAX_COPIES.
   */
  placeIndexes(oid: bigint, copies: number): number[] {
    assert(oid >= 0n && oid <= U64_MAX, "oid must be an unsigned 64-bit value");
    if (!Number.isInteger(copies) || copies < 1 || copies > SD_MAX_COPIES) {
      throw new SdError(Res.INVALID_PARMS, `invalid number of copies ${copies}`);
    }
    const n = Math.min(copies, this.nrZones);
    const out: number[] = [];
    if (n === 0) return out;

    const key = this.#key;
    sdHashOidInto(Number(oid >> 32n), Number(oid & 0xffffffffn), key);
    const kHi = key[0];
    const kLo = key[1];
    const hi = this.#hi;
    const lo = this.#lo;
    const len = hi.length;
    let a = 0;
    let b = len;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (hi[m] < kHi || (hi[m] === kHi && lo[m] < kLo)) a = m + 1;
      else b = m;
    }
    let pos = a === len ? 0 : a;

    const owner = this.#owner;
    const zone = this.#zone;
    const chosen = this.#chosenZones;
    out.push(owner[pos]);
    chosen[0] = zone[owner[pos]];
    // Terminates: n ≤ nrZones, and every zone owns at least one vnode.
    while (out.length < n) {
      pos = pos + 1 === len ? 0 : pos + 1;
      const node = owner[pos];
      const z = zone[node];
      let dup = false;
      for (let i = 0; i < out.length; i++) {
        if (chosen[i] === z) {
          dup = true;
          break;
        }
      }
      if (dup) continue;
      chosen[out.length] = z;
      out.push(node);
    }
    return out;
  }

  /** The replica nodes of `oid`, first replica first; see placeIndexes(). */
  place(oid: bigint, copies: number): SdNode[] {
    return this.placeIndexes(oid, copies).map((i) => this.nodes[i]);
  }
}

/**
 * Builds the ring of a membership (§9.3): per node with nrVnodes > 0, h = sd_hash(addr ‖ port LE),
 * then nrVnodes times h = sd_hash_next(h) and a vnode at h; all sorted by unsigned hash. Zone and
 * space play no part in positions. Nodes with 0 vnodes (gateways) hold no vnode and no zone.
 */
export function buildRing(nodes: readonly SdNode[]): Ring {
  return new Ring(nodes);
}
