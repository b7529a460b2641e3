/**
 * Avoid-diskfull (`dog cluster format -F`, cluster flag AVOID_DISKFULL): before a node starts
 * the recovery of an epoch, it checks that the objects the plan brings in fit in its free space
 * with a reserve to spare; when they do not, the recovery is not started (the node keeps serving
 * what it has and the cluster reports itself degraded, see degraded.ts). Pure: the executor
 * measures the space and passes the plan.
 *
 * What counts:
 * - free space: the smaller of the file system's free space (statvfs) and the node's configured
 *   capacity (sd_node.space, the config's space) minus what its objects use — the capacity is what
 *   the node announced to the cluster, and `dog node info` computes Avail the same way;
 * - incoming bytes: every fetch of the plan at its full object size (data objects
 *   `1 << block_size_shift`, inode and ledger objects their fixed size, although they are stored
 *   sparse: an overestimate that errs on the safe side), except a fetch whose first source is the
 *   node's own stale copy, which is a hard link back and takes no space. A fetch that ends up
 *   restored from a stale copy after a GET_HASH, or absent, counts too (unknown in advance).
 *   Stale copies are kept until the whole cluster has recovered, so nothing is freed meanwhile;
 * - the reserve: DISKFULL_RESERVE_PERMILLE of the capacity, at least DISKFULL_RESERVE_MIN_BYTES
 *   (writes in flight, new objects clients create meanwhile, epoch files and the log).
 *
 * @module
 */

import { assert } from "../assert.ts";
import { DISKFULL_RESERVE_MIN_BYTES, DISKFULL_RESERVE_PERMILLE } from "../limits.ts";
import type { Fetch } from "./plan.ts";

/** The space of one node, as measured by the executor. */
export interface NodeSpace {
  /** Free bytes of the file system holding the store (statvfs: f_bavail · f_bsize). */
  readonly fsFree: number;
  /** The node's capacity (sd_node.space); 0 when unknown: the file system alone counts. */
  readonly capacity: number;
  /** Bytes the node's live objects use. */
  readonly used: number;
}

/** The outcome of the check. */
export interface DiskfullDecision {
  /** Whether the recovery may start. */
  readonly start: boolean;
  /** Bytes the plan brings in. */
  readonly incoming: number;
  /** Free bytes now (see freeBytes()). */
  readonly free: number;
  /** Bytes that must stay free afterwards. */
  readonly reserve: number;
}

function assertBytes(n: number, what: string): void {
  assert(Number.isSafeInteger(n) && n >= 0, `bad ${what}: ${n}`);
}

/** Free bytes of a node: min(file system free, capacity − used), never negative. */
export function freeBytes(space: NodeSpace): number {
  assertBytes(space.fsFree, "free space");
  assertBytes(space.capacity, "capacity");
  assertBytes(space.used, "used space");
  if (space.capacity === 0) return space.fsFree;
  return Math.min(space.fsFree, Math.max(0, space.capacity - space.used));
}

/** The bytes a node of `capacity` keeps free after a recovery (0: unknown capacity). */
export function reserveBytes(capacity: number): number {
  assertBytes(capacity, "capacity");
  return Math.max(
    DISKFULL_RESERVE_MIN_BYTES,
    Math.floor(capacity * DISKFULL_RESERVE_PERMILLE / 1000),
  );
}

/**
 * Bytes the fetches bring into the store: the size (`sizeOf`) of each, except those whose first
 * source is a local stale copy (a link back). An object listed twice counts once.
 */
export function incomingBytes(fetches: readonly Fetch[], sizeOf: (oid: bigint) => number): number {
  const seen = new Set<bigint>();
  let total = 0;
  for (const f of fetches) {
    if (seen.has(f.oid)) continue;
    seen.add(f.oid);
    if (f.sources[0]?.kind === "local") continue;
    const size = sizeOf(f.oid);
    assertBytes(size, `size of ${f.oid.toString(16)}`);
    total += size;
  }
  assertBytes(total, "incoming bytes");
  return total;
}

/**
 * Whether a recovery that brings in `incoming` bytes may start on a node with `space`: only when
 * the reserve is still free afterwards. Nothing to bring in always starts (the recovery then only
 * links back stale copies or finds nothing).
 */
export function decideDiskfull(incoming: number, space: NodeSpace): DiskfullDecision {
  assertBytes(incoming, "incoming bytes");
  const free = freeBytes(space);
  const reserve = reserveBytes(space.capacity);
  const start = incoming === 0 || incoming + reserve <= free;
  return { start, incoming, free, reserve };
}

/**
 * Whether one object of `size` bytes may be written by recovery into `fsFree` free bytes (the
 * check before a transfer when avoid-diskfull is off: a fetch that cannot land is not read from
 * its source, it fails with NO_SPACE at once).
 */
export function objectFits(size: number, fsFree: number): boolean {
  assertBytes(size, "object size");
  assertBytes(fsFree, "free space");
  return size <= fsFree;
}
