/**
 * Virtual nodes: where a node's vnodes sit on the ring (protocol sheet §9.3) and how many it gets
 * in an auto-vnodes cluster (§9.2).
 *
 * @module
 */

import { assert } from "../assert.ts";
import { SD_DEFAULT_VNODES } from "../proto/constants.ts";
import type { NodeId, SdNode } from "../proto/node.ts";
import { sdHash, sdHashNext } from "../hash/fnv.ts";

/** nr_vnodes is a u16 in sd_node. */
const MAX_VNODES = 0xffff;

/** sd_hash of the first 18 bytes of node_id (addr[16] ‖ port u16 LE): the seed of its vnodes. */
export function nodeSeedHash(nid: NodeId): bigint {
  assert(nid.addr.length === 16, "node addr is 16 bytes");
  const buf = new Uint8Array(18);
  buf.set(nid.addr);
  buf[16] = nid.port & 0xff;
  buf[17] = (nid.port >>> 8) & 0xff;
  return sdHash(buf);
}

/**
 * The ring positions of a node's first `count` vnodes (default: all of them): starting from
 * the seed, each is sd_hash_next of the previous one.
 */
export function vnodeHashes(node: SdNode, count: number = node.nrVnodes): bigint[] {
  assert(Number.isInteger(count) && count >= 0, "vnode count must be a natural number");
  const out: bigint[] = [];
  let h = nodeSeedHash(node.nid);
  for (let i = 0; i < count; i++) {
    h = sdHashNext(h);
    out.push(h);
  }
  return out;
}

/**
 * Auto-vnodes: copies of `nodes` with each storage node's count set from its share of the
 * space, as v1.0 recomputes them on every membership change. Exactly v1.0's arithmetic:
 *
 * - avg = (sum of `space` over storage nodes with space > 0) / their number, in integer (u64)
 *   division;
 * - nr_vnodes = rintf(128 × ((float)space / (float)avg)), single-precision, ties to even.
 *
 * Gateways (nrVnodes 0) stay 0 and are left out of the mean; a storage node with space 0 gets 0.
 * When no storage node reports any space, v1.0 leaves the counts untouched, and so do we (they
 * are the nodes' own counts, 128 by default). Counts are clamped to the u16 field (65535).
 *
 * Pass the nodes' own join-time records: a node that got 0 here would count as a gateway if fed
 * back in.
 */
export function autoVnodes(nodes: readonly SdNode[]): SdNode[] {
  let sum = 0n;
  let n = 0n;
  for (const node of nodes) {
    if (node.nrVnodes > 0 && node.space > 0n) {
      sum += node.space;
      n++;
    }
  }
  if (n === 0n) return nodes.map((node) => ({ ...node }));
  const avg = u64ToF32(sum / n);
  return nodes.map((node) => {
    if (node.nrVnodes === 0) return { ...node };
    const factor = Math.fround(u64ToF32(node.space) / avg);
    const count = rint(Math.fround(SD_DEFAULT_VNODES * factor));
    return { ...node, nrVnodes: Math.min(count, MAX_VNODES) };
  });
}

/** C's `(float)u64`: one correctly rounded (ties to even) conversion, no double rounding. */
function u64ToF32(v: bigint): number {
  assert(v >= 0n, "space must not be negative");
  if (v <= 1n << 53n) return Math.fround(Number(v));
  const shift = BigInt(v.toString(2).length - 24);
  let mant = v >> shift;
  const rest = v & ((1n << shift) - 1n);
  const half = 1n << (shift - 1n);
  if (rest > half || (rest === half && (mant & 1n) === 1n)) mant++;
  return Math.fround(Number(mant) * 2 ** Number(shift));
}

/** C's rint() in the default rounding mode: to nearest, ties to even. */
function rint(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
