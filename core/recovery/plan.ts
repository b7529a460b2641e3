/**
 * The recovery planner (protocol sheet §10.6): what one node must do to its store after an epoch
 * change. Pure: a function of the membership history, the object lists and the local store's
 * content, so running it again on the same state gives the same plan, and a new epoch simply
 * replaces the running plan with a fresh one (no carried-over progress to reconcile).
 *
 * The plan has two parts and nothing else:
 * - moves: local objects this node must not keep live: they go to `.stale/<oid>.<tag>`;
 * - fetches: objects this node must hold in the current ring and does not, each with the ordered
 *   list of places to get it from.
 *
 * Why a copy can be trusted (the rules below rest on this). A write at epoch e is acknowledged
 * only when every replica of the ring of e has it, and a replica that is still recovering the
 * object makes the write wait until it has it. So any live copy on a member that has stayed in
 * the cluster is current, and a stale copy `<oid>.<t>` made when its node stopped holding the
 * object at the change t → t+1 is current as of the end of epoch t. Asking the holders of the
 * newest epoch first therefore finds the newest surviving copy: a newer one would sit on a
 * holder of a newer epoch, asked before. (The one exception is a write made at the current
 * epoch, which waits for this node's own recovery of the object and is applied after it.)
 *
 * A node that missed epochs (its store's epoch `storeEpoch` is older than current − 1) cannot
 * trust its live objects: writes went elsewhere meanwhile. All of them are moved to stale under
 * `storeEpoch`, where they serve as the node's copy of that epoch, and are restored only from
 * that position in the order or when their SHA-1 equals a trusted source's (v1.0 §10.4.6: "a node
 * that was not in the last epoch purges its objects into .stale first").
 *
 * What the executor must do for these rules to hold (the recovery simulation checks that
 * breaking any of the first four loses acknowledged writes):
 * - moves first (planMoves()), made durable (fsync of obj/ and .stale/) before any fetch or peer
 *   I/O at the new epoch: a crash that undoes a move brings back a live copy that is not current;
 * - object lists (GET_OBJ_LIST) include the oids of stale copies: after interrupted recoveries an
 *   object can survive only there;
 * - purge stale copies only on the cluster-wide rule of progress.ts (never on an older epoch's
 *   completion: those copies are the running recovery's sources);
 * - go to the next source only on NO_OBJ; any other failure retries the object later from the
 *   first source (skipping a source that failed transiently could pick an older copy);
 * - a client request for an object still to be recovered waits for it (NodeRecovery.mustWait()).
 *
 * Erasure-coded copy policies are out of scope: replicated objects only (asserted).
 *
 * @module
 */

import { assert } from "../assert.ts";
import { SD_MAX_COPIES } from "../proto/constants.ts";
import { isVdiObj } from "../hash/oid.ts";
import { nodeAddrString, type SdNode } from "../proto/node.ts";
import { buildRing, type Ring } from "../placement/ring.ts";
import type { StaleObject } from "../store/object_store.ts";

/** The ring of one epoch of the membership history. */
export interface EpochRing {
  readonly epoch: number;
  /** Built from that epoch's node list (gateways included: they hold nothing). */
  readonly ring: Ring;
}

/** The ring of `nodes` at `epoch`. Build the nodes exactly as the daemon does (vnode counts). */
export function epochRing(epoch: number, nodes: readonly SdNode[]): EpochRing {
  assertEpochNumber(epoch);
  return { epoch, ring: buildRing(nodes) };
}

/** A node's object list, as GET_OBJ_LIST returns it. */
export interface NodeObjects {
  readonly node: SdNode;
  /**
   * Every oid the node has, live or in `.stale` (the stale ones are needed: after interrupted
   * recoveries an object can survive only as stale copies).
   */
  readonly oids: readonly bigint[];
}

/** What the planner needs to know. */
export interface PlanInput {
  /** This node. It must be a member of the current epoch. */
  readonly self: SdNode;
  /** The epoch being recovered to. */
  readonly currentEpoch: number;
  /**
   * The ring of the current epoch and of the older epochs to search, from the last epoch every
   * node finished recovering (last_gathered_epoch) on; any order. Older epochs may be given (they
   * only cost NO_OBJ round trips); missing ones are skipped.
   */
  readonly epochs: readonly EpochRing[];
  /**
   * The epoch the local store is current for: the latest epoch of the local epoch log whose
   * node list holds this node, before this change (0 for a node that was never a member). Equal
   * to currentEpoch − 1 for a node that stayed, or currentEpoch when planning again within an
   * epoch (restart, new plan after an interruption).
   */
  readonly storeEpoch: number;
  /** Number of copies of an object (its VDI's nr_copies, deleted VDIs included). */
  readonly copiesOf: (oid: bigint) => number;
  /** Copy policy of an object; only 0 (replication) is supported. Default: always 0. */
  readonly copyPolicyOf?: (oid: bigint) => number;
  /** The object lists of the current members (the local one may be among them). */
  readonly gathered: readonly NodeObjects[];
  /** The local live objects. */
  readonly local: readonly bigint[];
  /** The local stale copies. */
  readonly localStale: readonly StaleObject[];
}

/** One place to get an object from. */
export type RecoverySource =
  /** This node's own stale copy `<oid>.<epoch>`: restoreFromStale(oid, epoch), no transfer. */
  | { readonly kind: "local"; readonly epoch: number }
  /**
   * READ_PEER with SD_FLAG_CMD_RECOVERY and obj.tgt_epoch = epoch to `node`, which serves its
   * live object or else its stale copy `<oid>.<epoch>` (see peerCopyFor()).
   */
  | { readonly kind: "peer"; readonly epoch: number; readonly node: SdNode };

/** An object to recover. */
export interface Fetch {
  readonly oid: bigint;
  /** Copies of the object (for the executor's create and logs). */
  readonly copies: number;
  /** Where to look, in order. Try the next only when one answers NO_OBJ. */
  readonly sources: readonly RecoverySource[];
  /**
   * Epochs of local stale copies of the object, newest first (after the plan's moves). Before
   * transferring from a peer, the executor may compare that peer's GET_HASH (same tgt_epoch)
   * with sha1Stale() of these and restore an equal one instead.
   */
  readonly hashCandidates: readonly number[];
}

/** A local object to move to `.stale/<oid>.<epoch>`. */
export interface StaleMove {
  readonly oid: bigint;
  readonly epoch: number;
}

/** What one node does for one epoch. */
export interface RecoveryPlan {
  readonly epoch: number;
  /** Whether the local live objects were kept as current (storeEpoch ≥ epoch − 1). */
  readonly trustedLocal: boolean;
  /** Moves first, all of them, before any fetch and before serving I/O at this epoch. Oid order. */
  readonly moves: readonly StaleMove[];
  /** Objects to recover: inode objects first, then by oid. */
  readonly fetches: readonly Fetch[];
  /**
   * Current members whose object list is missing from `gathered`: objects only they know of are
   * not in the plan. The executor gathers again (GET_OBJ_LIST) and plans again.
   */
  readonly missingLists: readonly SdNode[];
}

/** The identity of a node as a map key (`HOST:PORT`). */
export function nodeKey(node: SdNode): string {
  return nodeAddrString(node);
}

/**
 * The plan of `input.self` for `input.currentEpoch`; see the module comment for the rules.
 * With an empty current ring (no node has vnodes) nothing can be placed and the plan is empty.
 */
export function planRecovery(input: PlanInput): RecoveryPlan {
  const cur = input.currentEpoch;
  assertEpochNumber(cur);
  assert(cur >= 1, "recovery needs an epoch ≥ 1");
  assertEpochNumber(input.storeEpoch);
  assert(input.storeEpoch <= cur, `store epoch ${input.storeEpoch} is newer than ${cur}`);

  const byEpoch = new Map<number, Ring>();
  for (const e of input.epochs) {
    assertEpochNumber(e.epoch);
    assert(!byEpoch.has(e.epoch), `epoch ${e.epoch} given twice`);
    assert(e.epoch <= cur, `epoch ${e.epoch} is newer than the current ${cur}`);
    byEpoch.set(e.epoch, e.ring);
  }
  const curRing = byEpoch.get(cur);
  assert(curRing !== undefined, `the ring of the current epoch ${cur} is missing`);
  const selfKey = nodeKey(input.self);
  const members = new Map<string, SdNode>();
  for (const n of curRing.nodes) members.set(nodeKey(n), n);
  assert(members.has(selfKey), `${selfKey} is not a member of epoch ${cur}`);

  const listed = new Set<string>();
  const reporters = new Map<bigint, Set<string>>();
  for (const g of input.gathered) {
    const k = nodeKey(g.node);
    listed.add(k);
    for (const oid of g.oids) {
      let s = reporters.get(oid);
      if (!s) reporters.set(oid, s = new Set());
      s.add(k);
    }
  }
  const missingLists = [...members.entries()]
    .filter(([k]) => k !== selfKey && !listed.has(k))
    .map(([, n]) => n);

  const trustedLocal = input.storeEpoch >= cur - 1;
  if (curRing.isEmpty) {
    return { epoch: cur, trustedLocal, moves: [], fetches: [], missingLists };
  }

  const copiesCache = new Map<bigint, number>();
  const copiesOf = (oid: bigint): number => {
    let c = copiesCache.get(oid);
    if (c === undefined) {
      c = input.copiesOf(oid);
      assert(
        Number.isInteger(c) && c >= 1 && c <= SD_MAX_COPIES,
        `bad number of copies ${c} for ${oid.toString(16)}`,
      );
      const policy = input.copyPolicyOf?.(oid) ?? 0;
      assert(policy === 0, `erasure-coded object ${oid.toString(16)}: not supported by recovery`);
      copiesCache.set(oid, c);
    }
    return c;
  };
  const holders = (ring: Ring, oid: bigint): SdNode[] =>
    ring.isEmpty ? [] : ring.place(oid, copiesOf(oid));
  const curSelfIdx = curRing.nodes.findIndex((n) => nodeKey(n) === selfKey);
  const owns = (oid: bigint): boolean =>
    curRing.placeIndexes(oid, copiesOf(oid)).includes(curSelfIdx);

  // Moves: everything not owned now; everything when the local store missed epochs.
  const tag = trustedLocal ? cur - 1 : input.storeEpoch;
  const liveKept = new Set<bigint>();
  const moves: StaleMove[] = [];
  for (const oid of new Set(input.local)) {
    if (trustedLocal && owns(oid)) liveKept.add(oid);
    else moves.push({ oid, epoch: tag });
  }
  moves.sort((a, b) => compareBigints(a.oid, b.oid));

  const staleEpochs = new Map<bigint, Set<number>>();
  const addStale = (oid: bigint, epoch: number) => {
    let s = staleEpochs.get(oid);
    if (!s) staleEpochs.set(oid, s = new Set());
    s.add(epoch);
  };
  for (const s of input.localStale) addStale(s.oid, s.epoch);
  for (const m of moves) addStale(m.oid, m.epoch);

  const universe = new Set<bigint>(reporters.keys());
  for (const oid of input.local) universe.add(oid);
  for (const oid of staleEpochs.keys()) universe.add(oid);

  const window = [...byEpoch.keys()].filter((e) => e < cur).sort((a, b) => b - a);
  const fetches: Fetch[] = [];
  for (const oid of universe) {
    if (liveKept.has(oid) || !owns(oid)) continue;
    const local = staleEpochs.get(oid) ?? new Set<number>();
    const sources: RecoverySource[] = [];
    const asked = new Set<string>();
    for (const t of window) {
      const hs = holders(byEpoch.get(t)!, oid);
      if (local.has(t) && hs.some((n) => nodeKey(n) === selfKey)) {
        sources.push({ kind: "local", epoch: t });
      }
      for (const n of hs) {
        const k = nodeKey(n);
        // A node that has left can't be asked; one that came back can.
        if (k === selfKey || !members.has(k)) continue;
        sources.push({ kind: "peer", epoch: t, node: members.get(k)! });
        asked.add(k);
      }
    }
    // Last resort: current holders that listed the object and that no older ring names (they
    // hold it live only once they have recovered it themselves, so it is current).
    const rep = reporters.get(oid);
    if (rep) {
      for (const n of holders(curRing, oid)) {
        const k = nodeKey(n);
        if (k !== selfKey && !asked.has(k) && rep.has(k)) {
          sources.push({ kind: "peer", epoch: cur, node: members.get(k)! });
        }
      }
    }
    fetches.push({
      oid,
      copies: copiesOf(oid),
      sources,
      hashCandidates: [...local].sort((a, b) => b - a),
    });
  }
  fetches.sort((a, b) =>
    (isVdiObj(a.oid) ? 0 : 1) - (isVdiObj(b.oid) ? 0 : 1) || compareBigints(a.oid, b.oid)
  );
  return { epoch: cur, trustedLocal, moves, fetches, missingLists };
}

/** The moves of a plan, which do not depend on the object lists. */
export interface MovePlan {
  readonly epoch: number;
  readonly trustedLocal: boolean;
  readonly moves: readonly StaleMove[];
}

/**
 * The moves planRecovery() would return, without the object lists: the executor does these
 * (durably) as soon as it adopts the epoch, before serving any I/O at it and before gathering
 * the lists (v1.0's update_epoch), then calls planRecovery() with the store's new state and
 * storeEpoch = currentEpoch, whose moves are then empty and whose fetches are those of the
 * one-shot plan.
 */
export function planMoves(input: Omit<PlanInput, "gathered">): MovePlan {
  const { epoch, trustedLocal, moves } = planRecovery({ ...input, gathered: [] });
  return { epoch, trustedLocal, moves };
}

/**
 * What a peer serves to a recovery read of an object at `tgtEpoch` (v1.0's default_read): its
 * live object if it has one, else its stale copy `<oid>.<tgtEpoch>` when tgtEpoch is older than
 * its own epoch, else nothing (NO_OBJ). Other stale copies are never served: their position in
 * the history is another epoch's.
 */
export function peerCopyFor(
  hasLive: boolean,
  staleEpochs: ReadonlySet<number> | readonly number[],
  tgtEpoch: number,
  peerEpoch: number,
): "live" | { readonly staleEpoch: number } | null {
  if (hasLive) return "live";
  const has = Array.isArray(staleEpochs)
    ? staleEpochs.includes(tgtEpoch)
    : (staleEpochs as ReadonlySet<number>).has(tgtEpoch);
  return tgtEpoch < peerEpoch && has ? { staleEpoch: tgtEpoch } : null;
}

function assertEpochNumber(epoch: number): void {
  assert(Number.isInteger(epoch) && epoch >= 0 && epoch <= 0xffff_ffff, `bad epoch ${epoch}`);
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
