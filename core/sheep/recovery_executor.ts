/**
 * The recovery executor of one sheep (protocol sheet §10.6-10.7): it runs the pure planner
 * (core/recovery/plan.ts) and progress state machine (core/recovery/progress.ts) against the
 * real store, the peers and the cluster driver.
 *
 * On every epoch this node adopts with the cluster running (a join, a leave, FORCE_RECOVER, the
 * return to OK after a whole-cluster restart, the first epoch after a restart of this node):
 *
 * 1. Moves (`#moves`, awaited by the daemon's adopt, so before any other cluster event): the
 *    local objects this node must not keep live go to `.stale/<oid>.<tag>`, then syncMoves().
 *    Until then every peer op of the new epoch waits at the gate (`io()`); old-epoch ops that
 *    fail meanwhile answer OLD_NODE_VER and are retried by their gateway.
 * 2. Lists: GET_OBJ_LIST (flag CMD_RECOVERY, stale oids included) from every member of the
 *    epoch; the member answers once it is at this epoch with its moves done and its older-epoch
 *    writes drained.
 * 3. The plan (planRecovery over the rings of the epochs since the last fully gathered one) and
 *    the fetch loop: NodeRecovery says what to start (throttle, priorities, in-flight bound); a
 *    fetch tries its sources in order: a local stale copy (link back), else GET_HASH at the
 *    source's tgt_epoch against our stale copies (link back when equal), else READ_PEER with
 *    CMD_RECOVERY and tgt_epoch, and a local create. Only NO_OBJ moves on to the next source;
 *    anything else retries the object later from the first one.
 * 4. COMPLETE_RECOVERY goes out through the cluster driver; when every member of the epoch has
 *    reported it, every node purges its stale copies (gatherOnComplete).
 *
 * A new epoch replaces the running plan: fetches of the old one still end, and the new plan sees
 * what they left in the store.
 *
 * Client I/O during recovery: every peer op on the local store (remote, or the local replica of
 * this node's own gateway) goes through io(): a read, write, remove or decref of an object this
 * node still has to recover waits for it and bumps it to the front; CREATE never waits (its
 * content is newer than any copy recovery could find) and replaces what is there. A wait ends
 * with the object's recovery, or with OLD_NODE_VER when the epoch changes meanwhile. Every such
 * op also tells NodeRecovery that a client is active, which then paces the objects nobody waits
 * for (core/recovery/progress.ts: CLIENT_BUSY_MAX_IN_FLIGHT, CLIENT_BUSY_PAUSE_RATIO).
 *
 * `dog cluster recover disable` pauses the fetch loop except for objects requests wait for;
 * `enable` resumes it. Stale copies are kept until the recovery of the current epoch is complete
 * everywhere, so nothing is lost while it is paused.
 *
 * @module
 */

import {
  ClusterFlag,
  ClusterStatus,
  Flag,
  Op,
  Res,
  SD_SHEEP_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import type { ClusterInfo } from "../proto/cluster_info.ts";
import { decodeEpochFile } from "../proto/epoch_log.ts";
import { addrToString, encodeNode, type SdNode } from "../proto/node.ts";
import type { RecoveryState } from "../proto/stat.ts";
import { isLedgerObj, isVdiObj, objectSize, oidToString, oidToVid } from "../hash/oid.ts";
import { MAX_REQUEST_DATA, RECOVERY_NO_SPACE_RETRY_MS } from "../limits.ts";
import { type DegradedNode, DegradedReason, type DegradedReasonCode } from "../proto/degraded.ts";
import {
  degradedInit,
  degradedOnComplete,
  degradedOnEpoch,
  degradedOnReport,
  type DegradedState,
} from "../recovery/degraded.ts";
import { decideDiskfull, incomingBytes, objectFits } from "../recovery/diskfull.ts";
import {
  type EpochRing,
  epochRing,
  type Fetch,
  nodeKey,
  type NodeObjects,
  peerCopyFor,
  planMoves,
  planRecovery,
} from "../recovery/plan.ts";
import {
  gatherInit,
  gatherOnComplete,
  gatherOnMembership,
  type GatherState,
  NO_THROTTLE,
  NodeRecovery,
  type Outcome,
  type Throttle,
} from "../recovery/progress.ts";
import { type DegradedMessage, encodeDegradedMessage, encodeOpMessage } from "./cluster_msg.ts";
import type { Sheep } from "./sheep.ts";
import { isReclaimable, isStillReferenced } from "./reclaimed_check.ts";
import { sleep } from "../cluster/deadline.ts";

/** Objects fetched at the same time. */
export const RECOVERY_MAX_IN_FLIGHT = 4;
/** Delay before an object whose fetch failed transiently is tried again (ms). */
const RETRY_DELAY_MS = 500;
/** Delay before the object lists are gathered again after a failure (ms). */
const GATHER_RETRY_MS = 300;
/** How long a list or hash request waits for this node to reach the requester's epoch (ms). */
const EPOCH_WAIT_MS = 10_000;
/** A waiting request looks at the object again at least this often (ms). */
const WAIT_RECHECK_MS = 1000;
/** Pause between attempts to send COMPLETE_RECOVERY (ms). */
const ANNOUNCE_RETRY_MS = 100;
/** How long recovery data waits for older-epoch requests to land before it is served (ms). */
const DRAIN_WAIT_MS = 10_000;
/** Largest epoch file: SD_MAX_NODES (6144) nodes of 80 bytes and the time. */
const EPOCH_FILE_MAX = 6144 * 80 + 8;

/** What a peer op does to the object (for the wait rules). */
export type IoKind = "read" | "write" | "create" | "remove";

/** Counters of the current or last recovery, for logs and tests. */
export interface RecoveryCounters {
  epoch: number;
  /** Objects created from a peer's copy, and their bytes. */
  fetched: number;
  fetchedBytes: number;
  /** Objects linked back from a local stale copy (directly or after an equal GET_HASH). */
  restored: number;
  /** Objects every source answered NO_OBJ for. */
  absent: number;
  /** Transient failures (retried). */
  retries: number;
  /** Objects moved to stale at the epoch change. */
  moved: number;
  startedAt: number;
  finishedAt: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}

/** The recovery of one sheep. */
export class RecoveryExecutor {
  readonly #s: Sheep;
  #nr: NodeRecovery;
  #throttle: Throttle;
  #gather: GatherState | null = null;
  /** The epoch the local store is current for (see PlanInput.storeEpoch). */
  #storeEpoch = 0;
  /** The epoch whose moves #gate waits for, and the gate (resolved once they are durable). */
  #gateEpoch = 0;
  #gate: Deferred = resolvedDeferred();
  /** The fetches of the plan of the current epoch. */
  #fetches = new Map<bigint, Fetch>();
  /** Requests waiting for an object, woken when it is recovered or the epoch changes. */
  readonly #waiters = new Map<bigint, Set<() => void>>();
  /** Peer ops in flight on the local store, by the epoch they were admitted at. */
  readonly #inflight = new Map<number, number>();
  #drainWaiters: (() => void)[] = [];
  #timer: unknown = null;
  /** Objects of the running fetches found reclaimed (core/sheep/reclaimed_check.ts). */
  readonly #reclaimed = new Set<bigint>();
  /**
   * Objects a peer op removed from this node's store, with the epoch it was admitted at (a reclaim:
   * the gateway removes from every replica of that epoch). A plan may still name them (object
   * lists gathered before, other nodes' older stale copies), and a fetch must not bring them back
   * (cluster sim, seeds 10308 and 10232) as long as this node held the object in every epoch since
   * the removal: then a later CREATE of the oid would have come here too, and forgot the entry.
   * Cleared when the cluster purges its stale copies (the entries only bound memory then).
   */
  #removedHere = new Map<bigint, number>();
  #pumping = false;
  #closed = false;
  /** MAKE_FS is being applied (see onFormat). */
  #formatPending = false;
  /** The epoch a format created: recovered from nothing. */
  #freshEpoch = 0;
  readonly #rings = new Map<number, EpochRing>();
  #counters: RecoveryCounters = emptyCounters(0);
  /** Which members' recovery is refused or stuck for lack of space (the whole cluster's view). */
  #degraded: DegradedState = degradedInit();
  /** The last epoch this node reported itself degraded for (one report per epoch). */
  #reportedDegraded = 0;

  constructor(sheep: Sheep, throttle: Throttle | null) {
    this.#s = sheep;
    this.#throttle = throttle ?? NO_THROTTLE;
    this.#nr = this.#newProgress();
  }

  #newProgress(): NodeRecovery {
    return new NodeRecovery({
      maxInFlight: RECOVERY_MAX_IN_FLIGHT,
      retryDelayMs: RETRY_DELAY_MS,
      throttle: this.#throttle,
    });
  }

  /**
   * Learns the epoch the local store is current for: the latest local epoch file that lists this
   * node. Call once at start, before joining.
   */
  async init(): Promise<void> {
    this.#storeEpoch = await this.#latestOwnEpoch();
  }

  async #latestOwnEpoch(): Promise<number> {
    const meta = this.#s.deps.meta;
    const self = nodeKey(this.#s.self);
    const epochs = await meta.listEpochs();
    for (let i = epochs.length - 1; i >= 0; i--) {
      const bytes = await meta.readEpoch(epochs[i]);
      if (!bytes) continue;
      try {
        if (decodeEpochFile(bytes).nodes.some((n) => nodeKey(n) === self)) return epochs[i];
      } catch {
        // a damaged epoch file says nothing
      }
    }
    return 0;
  }

  /** The epoch the local store is current for. */
  get storeEpoch(): number {
    return this.#storeEpoch;
  }

  /** The counters of the current or last recovery. */
  get counters(): Readonly<RecoveryCounters> {
    return this.#counters;
  }

  get throttle(): Throttle {
    return this.#throttle;
  }

  /** dog node recovery set-throttle. */
  setThrottle(t: Throttle): void {
    this.#nr.setThrottle(t);
    this.#throttle = this.#nr.throttle;
    this.#s.log.info("recovery throttle set", { max: t.max, intervalMs: t.intervalMs });
    this.pump();
  }

  /** STAT_RECOVERY. */
  state(): RecoveryState {
    return this.#nr.state();
  }

  /** Stops timers; fetches in flight end on their own. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#s.deps.timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#wakeAll();
  }

  // ---------------------------------------------------------------------------------------------
  // Epoch changes

  /**
   * The daemon made `next` current (its ring and cinfo are set). When the cluster runs at an
   * epoch this node has not recovered yet, closes the gate, does the moves durably and starts
   * the recovery of that epoch in the background. Resolves once the moves are done.
   */
  /**
   * MAKE_FS is being applied: the store was just wiped, so the epoch it creates has nothing to
   * recover. Its plan must not gather object lists, because members that have not applied the
   * format yet still list the old cluster's objects under the same epoch number.
   */
  onFormat(): void {
    this.#formatPending = true;
  }

  async onAdopt(prev: ClusterInfo, next: ClusterInfo): Promise<void> {
    if (this.#closed) return;
    if (this.#formatPending) {
      this.#formatPending = false;
      this.#freshEpoch = next.epoch;
    }
    if (next.ctime !== prev.ctime) {
      // A format: a new cluster, whatever this node recovered before is gone.
      this.#nr = this.#newProgress();
      this.#gather = null;
      this.#storeEpoch = 0;
      this.#rings.clear();
      this.#degraded = degradedInit();
      this.#reportedDegraded = 0;
    }
    if (next.status !== ClusterStatus.OK || next.ctime === 0n) return;
    const members = next.nodes.map(nodeKey);
    this.#degraded = degradedOnEpoch(this.#degraded, next.epoch, members);
    this.#gather = this.#gather === null || prev.status !== ClusterStatus.OK
      ? gatherInit(next.epoch, members, 0)
      : gatherOnMembership(this.#gather, next.epoch, members);
    if (next.epoch <= this.#nr.epoch) return;
    const epoch = next.epoch;
    const self = nodeKey(this.#s.self);
    if (!members.includes(self)) return;

    // Nothing of this epoch is served before the moves are durable.
    this.#gate = deferred();
    this.#gateEpoch = epoch;
    this.#nr.begin(epoch);
    this.#fetches = new Map();
    this.#counters = emptyCounters(epoch);
    this.#counters.startedAt = this.#s.deps.now();
    if (this.#timer !== null) this.#s.deps.timers.clearTimeout(this.#timer);
    this.#timer = null;
    // Requests waiting at the old epoch look again (they answer OLD_NODE_VER).
    this.#wakeAll();
    try {
      await this.#moves(next);
    } catch (e) {
      // The store is failing: do not serve at this epoch from a store in an unknown state.
      this.#s.log.error("recovery: moving objects to stale failed", { epoch, error: String(e) });
      throw e;
    } finally {
      this.#gate.resolve();
    }
    this.#prepare(epoch).catch((e) =>
      this.#s.log.error("recovery: preparing the plan failed", { epoch, error: String(e) })
    );
  }

  async #moves(ci: ClusterInfo): Promise<void> {
    const store = this.#s.store;
    const cur = this.#ring(ci.epoch, ci.nodes);
    const { moves, trustedLocal } = planMoves({
      self: this.#s.self,
      currentEpoch: ci.epoch,
      epochs: [cur],
      storeEpoch: Math.min(this.#storeEpoch, ci.epoch),
      copiesOf: (oid) => this.#copiesOf(oid),
      local: await store.list(),
      localStale: await store.listStale(),
    });
    let moved = 0;
    for (const mv of moves) {
      try {
        await store.moveToStale(mv.oid, mv.epoch);
        moved++;
      } catch (e) {
        // Removed meanwhile by an old-epoch request: nothing to keep.
        if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
      }
    }
    await store.syncMoves();
    this.#storeEpoch = ci.epoch;
    this.#counters.moved = moved;
    if (moved > 0 || !trustedLocal) {
      this.#s.log.info("recovery: objects moved to stale", {
        epoch: ci.epoch,
        moved,
        tag: moves[0]?.epoch,
        trusted: trustedLocal,
      });
    }
  }

  /** Gathers the object lists and plans, again after failures, until the epoch changes. */
  async #prepare(epoch: number): Promise<void> {
    if (this.#freshEpoch === epoch) {
      // Just formatted: nothing to fetch; completion is still reported so the gather rule holds.
      const { accepted } = this.#nr.setPlan(epoch, []);
      if (accepted) this.pump();
      return;
    }
    for (let attempt = 0;; attempt++) {
      if (this.#stale(epoch)) return;
      try {
        const epochs = await this.#windowRings(epoch);
        if (this.#stale(epoch)) return;
        const gathered = await this.#gatherLists(epoch);
        if (this.#stale(epoch)) return;
        const store = this.#s.store;
        const plan = planRecovery({
          self: this.#s.self,
          currentEpoch: epoch,
          epochs,
          storeEpoch: epoch,
          copiesOf: (oid) => this.#copiesOf(oid),
          gathered,
          local: await store.list(),
          localStale: await store.listStale(),
        });
        if (this.#stale(epoch)) return;
        if (plan.missingLists.length > 0) {
          throw new Error(`missing object lists of ${plan.missingLists.map(nodeKey).join(", ")}`);
        }
        if ((this.#s.cinfo.flags & ClusterFlag.AVOID_DISKFULL) !== 0) {
          if (!(await this.#roomFor(epoch, plan.fetches))) return;
        }
        this.#fetches = new Map(plan.fetches.map((f) => [f.oid, f]));
        const { accepted, released } = this.#nr.setPlan(epoch, plan.fetches.map((f) => f.oid));
        if (!accepted) return;
        for (const oid of released) this.#wake(oid);
        this.#s.log.info("recovery: plan ready", {
          epoch,
          objects: plan.fetches.length,
          window: epochs.map((e) => e.epoch).sort((a, b) => a - b).join(","),
        });
        this.pump();
        return;
      } catch (e) {
        if (this.#stale(epoch)) return;
        // A member that joins listens only after its accept; one that died is listed until its
        // leave: both resolve themselves, so say it once in a while only.
        if (attempt % 20 === 0) {
          this.#s.log.warn("recovery: cannot prepare the plan yet; trying again", {
            epoch,
            attempt,
            error: String(e),
          });
        }
        await sleep(GATHER_RETRY_MS, this.#s.deps.timers);
      }
    }
  }

  /**
   * Avoid-diskfull: whether the plan of `epoch` fits (core/recovery/diskfull.ts). When it does
   * not, the recovery of this epoch is refused: nothing is fetched, requests stop waiting, no
   * completion is reported (the cluster keeps its stale copies), and the cluster learns it.
   */
  async #roomFor(epoch: number, fetches: readonly Fetch[]): Promise<boolean> {
    const store = this.#s.store;
    const [{ free: fsFree }, used] = await Promise.all([store.stat(), store.usedBytes()]);
    if (this.#stale(epoch)) return false;
    const capacity = this.#s.config.space > BigInt(Number.MAX_SAFE_INTEGER)
      ? 0
      : Number(this.#s.config.space);
    const d = decideDiskfull(
      incomingBytes(fetches, (oid) => this.#objectSize(oid)),
      { fsFree, capacity, used },
    );
    if (d.start) return true;
    const { accepted, released } = this.#nr.refuse(epoch);
    if (!accepted) return false;
    for (const oid of released) this.#wake(oid);
    this.#s.log.error(
      "recovery: not started: it would fill this node's disk (avoid-diskfull); " +
        "serving degraded until an epoch change brings room",
      {
        epoch,
        objects: fetches.length,
        neededMb: +(d.incoming / 2 ** 20).toFixed(1),
        freeMb: +(d.free / 2 ** 20).toFixed(1),
        reserveMb: +(d.reserve / 2 ** 20).toFixed(1),
      },
    );
    this.#reportDegraded(epoch, DegradedReason.NOT_STARTED, d.incoming, d.free);
    return false;
  }

  /** The size `oid` takes once created (its VDI's block size for data objects). */
  #objectSize(oid: bigint): number {
    const shift = this.#s.vdis.get(oidToVid(oid))?.blockSizeShift || this.#s.cinfo.blockSizeShift;
    return objectSize(oid, shift || 22);
  }

  /** Tells every member (once per epoch) that this node's recovery of `epoch` does not go on. */
  #reportDegraded(epoch: number, reason: DegradedReasonCode, needed: number, free: number): void {
    if (this.#reportedDegraded >= epoch) return;
    this.#reportedDegraded = epoch;
    const msg = encodeDegradedMessage({ epoch, reason, needed, free });
    this.#notify(epoch, msg, "the degraded state").catch((e) =>
      this.#s.log.error("recovery: cannot announce the degraded state", {
        epoch,
        error: String(e),
      })
    );
  }

  /**
   * RECOVERY_DEGRADED from `sender`, in the cluster's total order: the cluster serves degraded
   * until that node completes the epoch or a new epoch begins.
   */
  onDegraded(sender: SdNode, m: DegradedMessage): void {
    if (m.reason !== DegradedReason.NOT_STARTED && m.reason !== DegradedReason.OUT_OF_SPACE) {
      this.#s.log.warn("ignoring a degraded report with an unknown reason", { reason: m.reason });
      return;
    }
    this.#degraded = degradedOnReport(this.#degraded, m.epoch, {
      node: sender,
      reason: m.reason,
      needed: m.needed,
      free: m.free,
    });
    this.#s.log.warn("the cluster serves degraded: a node's recovery does not go on", {
      node: nodeKey(sender),
      epoch: m.epoch,
      reason: m.reason === DegradedReason.NOT_STARTED ? "not started" : "out of space",
    });
  }

  /** The members whose recovery of the current epoch is refused or stuck for lack of space. */
  get degraded(): readonly DegradedNode[] {
    return this.#degraded.epoch === this.#s.cinfo.epoch ? this.#degraded.nodes : [];
  }

  /**
   * An object was created here at `epoch` (a client CREATE admitted then, or a fetch or restore of
   * that epoch's plan) but the node moved on to a newer epoch meanwhile, maybe after the moves of
   * that epoch ran: unless this node held the object in every epoch since (#heldSince), it goes to
   * stale as the copy of `epoch`, as the moves would have done. A live copy of an object a node
   * does not hold would be trusted, out of date, if the node held it again later.
   */
  async #late(oid: bigint, epoch: number): Promise<void> {
    const s = this.#s;
    if (s.cinfo.status !== ClusterStatus.OK || s.cinfo.epoch === epoch) return;
    if (this.#gateEpoch === s.cinfo.epoch) await this.#gate.promise;
    if (this.#ring(s.cinfo.epoch, s.cinfo.nodes).ring.isEmpty) return;
    if (this.#heldSince(oid, epoch)) return;
    try {
      await s.store.moveToStale(oid, epoch);
      await s.store.syncMoves();
      s.log.info("recovery: moved a late object to stale", { oid: oidToString(oid), epoch });
    } catch (e) {
      if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
    }
  }

  /**
   * Whether this node holds `oid` in the ring of every epoch after `epoch` up to the current one:
   * only then would the moves have left live a copy that landed in time at `epoch`. Held now but
   * not in an epoch between, the copy misses that epoch's writes (they went to its holders): it
   * must not be trusted as current. An epoch whose ring this node does not know counts as not held.
   */
  #heldSince(oid: bigint, epoch: number): boolean {
    const s = this.#s;
    const self = nodeKey(s.self);
    const copies = this.#copiesOf(oid);
    for (let e = epoch + 1; e <= s.cinfo.epoch; e++) {
      const r = e === s.cinfo.epoch ? this.#ring(e, s.cinfo.nodes) : this.#rings.get(e);
      if (r === undefined || !r.ring.place(oid, copies).some((n) => nodeKey(n) === self)) {
        return false;
      }
    }
    return true;
  }

  /** Whether the recovery of `epoch` was replaced (or the daemon is stopping). */
  #stale(epoch: number): boolean {
    return this.#closed || this.#nr.epoch !== epoch || this.#s.cinfo.epoch !== epoch;
  }

  #ring(epoch: number, nodes: readonly SdNode[]): EpochRing {
    let r = this.#rings.get(epoch);
    if (!r) {
      r = epochRing(epoch, nodes);
      this.#rings.set(epoch, r);
    }
    return r;
  }

  /**
   * The rings of the epochs from the last fully gathered one (or the first) to `epoch`. Epoch
   * files this node misses are fetched from the members (GET_EPOCH, #fetchEpoch: a member that
   * cannot answer makes the plan wait); only those no member has are skipped (no current member
   * was in that epoch, so none of its holders can be asked anyway).
   */
  async #windowRings(epoch: number): Promise<EpochRing[]> {
    const from = Math.max(1, this.#gather?.lastGathered ?? 1);
    const out: EpochRing[] = [this.#ring(epoch, this.#s.cinfo.nodes)];
    for (let e = from; e < epoch; e++) {
      const cached = this.#rings.get(e);
      if (cached) {
        out.push(cached);
        continue;
      }
      let bytes = await this.#s.deps.meta.readEpoch(e);
      if (!bytes) bytes = await this.#fetchEpoch(e);
      if (!bytes) {
        this.#s.log.warn("recovery: no member has the epoch file; its ring is skipped", {
          epoch: e,
        });
        continue;
      }
      try {
        out.push(this.#ring(e, decodeEpochFile(bytes).nodes));
      } catch (err) {
        this.#s.log.warn("recovery: skipping a damaged epoch file", {
          epoch: e,
          error: String(err),
        });
      }
    }
    return out;
  }

  /**
   * The file of `epoch` from a member that has it; null only when every other member answered
   * that it has none (NO_TAG) or a damaged one. A member that could not answer (a broken
   * connection, one still starting) makes it throw, and the plan is prepared again later:
   * skipping a ring some member knows would let this node's stale copies from before that epoch
   * look current (cluster simulation, seed 40152: a node back after missing epoch 2 restored its
   * epoch-1 copies over the writes of epoch 2 because a GET_EPOCH had failed).
   */
  async #fetchEpoch(epoch: number): Promise<Uint8Array | null> {
    let unsure: unknown = null;
    for (const m of this.#others()) {
      try {
        const req = SdReq.of(Op.GET_EPOCH, SD_SHEEP_PROTO_VER, { dataLength: EPOCH_FILE_MAX });
        req.obj.tgtEpoch = epoch;
        const { rsp, data } = await this.#request(m, req);
        if (rsp.result === Res.NO_TAG) continue;
        if (rsp.result !== Res.SUCCESS) {
          unsure = new SdError(rsp.result, `GET_EPOCH ${epoch} of ${nodeKey(m)}`);
          continue;
        }
        try {
          decodeEpochFile(data);
        } catch (err) {
          this.#s.log.warn("recovery: a member's epoch file is damaged", {
            node: nodeKey(m),
            epoch,
            error: String(err),
          });
          continue;
        }
        await this.#s.deps.meta.writeEpoch(epoch, data);
        return data;
      } catch (e) {
        unsure = e;
      }
    }
    if (unsure !== null) {
      throw new SdError(Res.NETWORK_ERROR, `cannot fetch the file of epoch ${epoch}`, {
        cause: unsure,
      });
    }
    return null;
  }

  /** The other members of the current epoch. */
  #others(): SdNode[] {
    const self = nodeKey(this.#s.self);
    return this.#s.cinfo.nodes.filter((n) => nodeKey(n) !== self);
  }

  /** GET_OBJ_LIST of every member of `epoch` (this node's from its own store). */
  async #gatherLists(epoch: number): Promise<NodeObjects[]> {
    const self = nodeKey(this.#s.self);
    return await Promise.all(this.#s.cinfo.nodes.map(async (n): Promise<NodeObjects> => {
      if (nodeKey(n) === self) return { node: n, oids: await this.localObjectList() };
      const req = SdReq.of(Op.GET_OBJ_LIST, SD_SHEEP_PROTO_VER, {
        epoch,
        flags: Flag.CMD_RECOVERY,
        dataLength: MAX_REQUEST_DATA,
      });
      const { rsp, data } = await this.#request(n, req);
      if (rsp.result !== Res.SUCCESS) {
        throw new SdError(rsp.result, `GET_OBJ_LIST of ${nodeKey(n)}`);
      }
      return { node: n, oids: decodeOids(data) };
    }));
  }

  /** Every oid this node has, live or stale, ascending and without duplicates. */
  async localObjectList(): Promise<bigint[]> {
    const store = this.#s.store;
    const set = new Set<bigint>(await store.list());
    for (const s of await store.listStale()) set.add(s.oid);
    return [...set].sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
  }

  #copiesOf(oid: bigint): number {
    return this.#s.gateway.copiesFor(oid);
  }

  // ---------------------------------------------------------------------------------------------
  // The fetch loop

  /** Starts whatever may start now; call after anything that may let more start. */
  pump(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    try {
      for (;;) {
        const now = this.#s.deps.now();
        const r = this.#nr.next(now, { urgentOnly: this.#s.cinfo.disableRecovery });
        if (r.kind === "start") {
          this.#runFetch(r.epoch, r.oid);
          continue;
        }
        if (r.kind === "notify") {
          this.#nr.notified(r.epoch);
          this.#complete(r.epoch);
          continue;
        }
        if (r.kind === "wait") {
          if (this.#timer !== null) this.#s.deps.timers.clearTimeout(this.#timer);
          this.#timer = this.#s.deps.timers.setTimeout(() => {
            this.#timer = null;
            this.pump();
          }, Math.max(1, r.until - now));
        }
        return;
      }
    } finally {
      this.#pumping = false;
    }
  }

  #runFetch(epoch: number, oid: bigint): void {
    const f = this.#fetches.get(oid);
    let retryDelay: number | undefined;
    const run = async (): Promise<Outcome> => {
      if (!f) return "absent";
      try {
        return await this.#fetch(epoch, f);
      } catch (e) {
        this.#counters.retries++;
        if (e instanceof SdError && e.result === Res.NO_SPACE) {
          // The disk is full: the object fails with NO_SPACE and is tried again much later; the
          // cluster serves degraded meanwhile (the store removed its partial file).
          retryDelay = RECOVERY_NO_SPACE_RETRY_MS;
          if (this.#reportedDegraded < epoch) {
            this.#s.log.error("recovery: out of space; objects will be retried", {
              oid: oidToString(oid),
              epoch,
              error: String(e),
            });
            const free = await this.#s.store.stat().then((st) => st.free, () => 0);
            if (!this.#stale(epoch)) {
              this.#reportDegraded(epoch, DegradedReason.OUT_OF_SPACE, 0, free);
            }
          }
          return "noSpace";
        }
        this.#s.log.debug("recovery: object failed, will retry", {
          oid: oidToString(oid),
          error: String(e),
        });
        return "retry";
      }
    };
    run().then((outcome) => {
      if (outcome === "absent" && f && !this.#reclaimed.delete(oid)) {
        this.#counters.absent++;
        this.#s.log.warn("recovery: no copy of an object found", {
          oid: oidToString(oid),
          epoch,
          sources: f.sources.length,
        });
      }
      const { release } = this.#nr.finish(epoch, oid, outcome, this.#s.deps.now(), retryDelay);
      if (release) this.#wake(oid);
      this.pump();
    });
  }

  async #fetch(epoch: number, f: Fetch): Promise<Outcome> {
    const store = this.#s.store;
    if (await store.exists(f.oid)) return "recovered";
    const removedAt = this.#removedHere.get(f.oid);
    if (removedAt !== undefined && this.#heldSince(f.oid, removedAt)) {
      // Reclaimed here, and not created again since: any copy a source has predates the removal.
      this.#reclaimed.add(f.oid);
      this.#s.log.info("recovery: not bringing back an object removed here", {
        oid: oidToString(f.oid),
        epoch,
        removedAt,
      });
      return "absent";
    }
    // Whether a newer source answered NO_OBJ: the older copies may be of a reclaimed object.
    let missed = false;
    let checked = false;
    // An object of a VDI already deleted is checked even when the first source has it: the
    // DEL_VDI sweep (deleted_sweep.ts) removes live objects only, and a source's stale copy of
    // an epoch before the deletion would otherwise come back unchecked and be copied on from
    // node to node (cluster sim, seed 30299: an epoch-8 stale copy fetched at epoch 11 after
    // every live copy had been swept, then fetched on from that node at epoch 12).
    const ofDeleted = this.#s.vdis.get(oidToVid(f.oid))?.deleted === true;
    for (const src of f.sources) {
      if (this.#stale(epoch)) return "retry";
      if ((missed || ofDeleted) && !checked && isReclaimable(f.oid)) {
        checked = true;
        if (!(await isStillReferenced(f.oid, this.#s.gateway, this.#s.vdis, this.#s.deps.timers))) {
          this.#reclaimed.add(f.oid);
          this.#s.log.info("recovery: not bringing back a reclaimed object", {
            oid: oidToString(f.oid),
            epoch,
          });
          return "absent";
        }
        if (this.#stale(epoch)) return "retry";
      }
      missed = true;
      if (src.kind === "local") {
        if (await this.#restore(f.oid, src.epoch, epoch)) return "recovered";
        continue;
      }
      if (f.hashCandidates.length > 0) {
        const digest = await this.#peerHash(src.node, f.oid, src.epoch, epoch);
        if (digest === null) continue;
        for (const e of f.hashCandidates) {
          let mine: Uint8Array;
          try {
            mine = await store.sha1Stale(f.oid, e);
          } catch (err) {
            if (err instanceof SdError && err.result === Res.NO_OBJ) continue;
            throw err;
          }
          if (!equalBytes(mine, digest)) continue;
          // GET_HASH and sha1Stale awaited: a newer epoch may have begun (and done its moves).
          if (this.#stale(epoch)) return "retry";
          if (await this.#restore(f.oid, e, epoch)) return "recovered";
        }
      }
      if (!isSparseKind(f.oid)) {
        // Not worth a transfer when it cannot land (the create would fail with NO_SPACE).
        const size = this.#objectSize(f.oid);
        if (!objectFits(size, (await store.stat()).free)) {
          throw new SdError(Res.NO_SPACE, `no room for ${oidToString(f.oid)} (${size} bytes)`);
        }
      }
      const copy = await this.#peerRead(src.node, f.oid, src.epoch, epoch);
      if (copy === null) continue;
      if (this.#stale(epoch)) return "retry";
      try {
        // Trailing zeros of inode and ledger objects are not sent: their size is fixed.
        const size = isSparseKind(f.oid) ? objectSize(f.oid, 22) : copy.length;
        if (copy.length > size) {
          throw new SdError(Res.EIO, `oversized copy of ${oidToString(f.oid)}`);
        }
        await store.create(f.oid, 0, copy, size, { sparse: isSparseKind(f.oid) });
        this.#counters.fetched++;
        this.#counters.fetchedBytes += copy.length;
      } catch (e) {
        // A client CREATE (or a newer epoch's fetch) made it meanwhile: that one is newer, and
        // not this fetch's to move if late (its own io() or fetch does).
        if (!(e instanceof SdError && e.result === Res.OID_EXIST)) throw e;
        return "recovered";
      }
      if (this.#stale(epoch)) await this.#late(f.oid, epoch);
      return "recovered";
    }
    return "absent";
  }

  /**
   * Links the local stale copy `<oid>.<staleEpoch>` back for the plan of `epoch`; false when there
   * is none. `epoch` must be the fetch's own plan epoch, not the running plan's (#nr.epoch): a
   * fetch of epoch e whose GET_HASH was answered just before this node adopted e+1 restores after
   * the moves of e+1, and only the fetch's epoch tells that the restore is late (cluster sim, seed
   * 2053: an object restored so stayed live on a node the ring of e+1 does not place it on).
   */
  async #restore(oid: bigint, staleEpoch: number, epoch: number): Promise<boolean> {
    try {
      await this.#s.store.restoreFromStale(oid, staleEpoch);
      this.#counters.restored++;
      if (this.#stale(epoch)) await this.#late(oid, epoch);
      return true;
    } catch (e) {
      if (e instanceof SdError && e.result === Res.OID_EXIST) return true;
      if (e instanceof SdError && e.result === Res.NO_OBJ) return false;
      throw e;
    }
  }

  async #peerRead(
    node: SdNode,
    oid: bigint,
    tgtEpoch: number,
    epoch: number,
  ): Promise<Uint8Array | null> {
    const req = SdReq.of(Op.READ_PEER, SD_SHEEP_PROTO_VER, {
      epoch,
      flags: Flag.CMD_RECOVERY,
      // The whole object, whatever its size (the reply is sized by what the peer has).
      dataLength: MAX_REQUEST_DATA,
    });
    req.obj.oid = oid;
    req.obj.tgtEpoch = tgtEpoch;
    const { rsp, data } = await this.#request(node, req);
    if (rsp.result === Res.NO_OBJ) return null;
    if (rsp.result !== Res.SUCCESS) {
      throw new SdError(rsp.result, `recovery read from ${nodeKey(node)}`);
    }
    return data;
  }

  async #peerHash(
    node: SdNode,
    oid: bigint,
    tgtEpoch: number,
    epoch: number,
  ): Promise<Uint8Array | null> {
    const req = SdReq.of(Op.GET_HASH, SD_SHEEP_PROTO_VER, { epoch, flags: Flag.CMD_RECOVERY });
    req.obj.oid = oid;
    req.obj.tgtEpoch = tgtEpoch;
    const { rsp } = await this.#request(node, req);
    if (rsp.result === Res.NO_OBJ) return null;
    if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result, `GET_HASH from ${nodeKey(node)}`);
    return rsp.hash.digest.slice();
  }

  async #request(node: SdNode, req: SdReq) {
    try {
      return await this.#s.peers.request(addrToString(node.nid.addr), node.nid.port, req);
    } catch (e) {
      if (e instanceof SdError) throw e;
      throw new SdError(Res.NETWORK_ERROR, `${nodeKey(node)}: ${String(e)}`, { cause: e });
    }
  }

  /** This node finished `epoch`: tell every node (COMPLETE_RECOVERY through the driver). */
  #complete(epoch: number): void {
    const c = this.#counters;
    c.finishedAt = this.#s.deps.now();
    const secs = Math.max(0.001, (c.finishedAt - c.startedAt) / 1000);
    this.#s.log.info("recovery: done", {
      epoch,
      fetched: c.fetched,
      restored: c.restored,
      absent: c.absent,
      retries: c.retries,
      mb: +(c.fetchedBytes / 1e6).toFixed(1),
      seconds: +secs.toFixed(2),
      mbPerSec: +(c.fetchedBytes / 1e6 / secs).toFixed(1),
    });
    this.#announce(epoch).catch((e) =>
      this.#s.log.error("recovery: cannot announce the completion", { epoch, error: String(e) })
    );
  }

  /**
   * Sends COMPLETE_RECOVERY(epoch), again until the driver takes it or the epoch is gone (a
   * joiner may finish before its own join is through, when the driver refuses its messages).
   */
  async #announce(epoch: number): Promise<void> {
    const req = SdReq.of(Op.COMPLETE_RECOVERY, SD_SHEEP_PROTO_VER, { epoch });
    req.obj.tgtEpoch = epoch;
    const rsp = SdRsp.replyTo(req, epoch, Res.SUCCESS);
    const msg = encodeOpMessage(0, req, rsp, encodeNode(this.#s.self));
    await this.#notify(epoch, msg, "the completion");
  }

  /** Sends `msg` through the driver, again until it takes it or `epoch` is gone. */
  async #notify(epoch: number, msg: Uint8Array, what: string): Promise<void> {
    for (let attempt = 0;; attempt++) {
      if (this.#stale(epoch)) return;
      try {
        await this.#s.deps.driver.notify(msg);
        return;
      } catch (e) {
        if (attempt % 50 === 49) {
          this.#s.log.warn(`recovery: cannot announce ${what} yet; trying again`, {
            epoch,
            error: String(e),
          });
        }
      }
      await sleep(ANNOUNCE_RETRY_MS, this.#s.deps.timers);
    }
  }

  /**
   * COMPLETE_RECOVERY(epoch) from `sender`, in the cluster's total order. When every member of
   * the current epoch has reported it, the stale copies are purged.
   */
  async onCompleteRecovery(sender: SdNode, epoch: number): Promise<void> {
    this.#degraded = degradedOnComplete(this.#degraded, epoch, nodeKey(sender));
    if (this.#gather === null) return;
    const { state, purge } = gatherOnComplete(this.#gather, epoch, nodeKey(sender));
    this.#gather = state;
    if (!purge) return;
    this.#removedHere.clear();
    await this.#s.store.purgeStale();
    this.#s.log.info("recovery: every node finished; stale objects purged", { epoch });
  }

  /** The last epoch every member finished recovering (0: unknown). */
  get lastGathered(): number {
    return this.#gather?.lastGathered ?? 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Serving peers and clients

  /**
   * Runs a peer op on the local store for `oid`, issued at `epoch` (the request's, or for this
   * node's own gateway the epoch its ring was taken at). Waits for the moves of the epoch, and
   * unless it is a create for the object's recovery; converts a failure after an epoch change
   * into OLD_NODE_VER (the gateway retries in the new epoch).
   */
  async io<T>(oid: bigint, kind: IoKind, epoch: number, op: () => Promise<T>): Promise<T> {
    const s = this.#s;
    this.#nr.clientIo(s.deps.now(), kind === "create");
    if (s.cinfo.status === ClusterStatus.OK) {
      if (epoch < s.cinfo.epoch) throw new SdError(Res.OLD_NODE_VER);
      if (this.#gateEpoch === epoch) await this.#gate.promise;
      if (kind !== "create") await this.#waitRecovered(oid, epoch);
      const noRoom = this.#nr.phase === "refused" || this.#nr.lacksSpace(oid);
      if (kind === "write" && noRoom && !(await s.store.exists(oid))) {
        // An object this node holds in the current ring but could not recover (avoid-diskfull
        // refused it, or the disk is full): the write cannot be applied here, and acknowledging
        // it on fewer replicas would break the promise of `copies` copies. Fail cleanly.
        throw new SdError(
          Res.NO_SPACE,
          `${oidToString(oid)} is not recovered on this node: no space for it`,
        );
      }
    }
    this.#inflight.set(epoch, (this.#inflight.get(epoch) ?? 0) + 1);
    try {
      const out = await op();
      if (kind === "create") {
        this.#removedHere.delete(oid);
        if (s.cinfo.epoch !== epoch) await this.#late(oid, epoch);
        else if (this.#nr.createdLocally(oid)) this.#wake(oid);
      }
      if (kind === "remove" && s.cinfo.status === ClusterStatus.OK && s.cinfo.epoch === epoch) {
        this.#removedHere.set(oid, epoch);
      }
      return out;
    } catch (e) {
      if (s.cinfo.epoch !== epoch) {
        throw new SdError(Res.OLD_NODE_VER, `epoch changed during the request: ${String(e)}`);
      }
      throw e;
    } finally {
      const left = (this.#inflight.get(epoch) ?? 1) - 1;
      if (left === 0) this.#inflight.delete(epoch);
      else this.#inflight.set(epoch, left);
      if (left === 0 && this.#drainWaiters.length > 0) {
        const ws = this.#drainWaiters;
        this.#drainWaiters = [];
        for (const w of ws) w();
      }
    }
  }

  async #waitRecovered(oid: bigint, epoch: number): Promise<void> {
    for (;;) {
      if (this.#s.cinfo.epoch !== epoch) throw new SdError(Res.OLD_NODE_VER);
      const phase = this.#nr.phase;
      if (phase !== "preparing" && phase !== "recovering") return;
      const exists = await this.#s.store.exists(oid);
      if (!this.#nr.mustWait(oid, exists)) return;
      this.pump();
      await this.#waitFor(oid);
    }
  }

  #waitFor(oid: bigint): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(oid);
      if (!set) this.#waiters.set(oid, set = new Set());
      const done = () => {
        this.#s.deps.timers.clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0 && this.#waiters.get(oid) === set) this.#waiters.delete(oid);
        resolve();
      };
      const timer = this.#s.deps.timers.setTimeout(done, WAIT_RECHECK_MS);
      set.add(done);
    });
  }

  #wake(oid: bigint): void {
    const set = this.#waiters.get(oid);
    if (!set) return;
    for (const w of [...set]) w();
  }

  #wakeAll(): void {
    for (const oid of [...this.#waiters.keys()]) this.#wake(oid);
  }

  /**
   * Before serving recovery data at `epoch` (object lists, recovery reads, hashes): this node must
   * be at that epoch with its moves done, and the writes it admitted at older epochs must have
   * landed (they may still be acknowledged, so the copy served must hold them).
   */
  async #readyToServe(epoch: number): Promise<void> {
    const s = this.#s;
    if (epoch > s.cinfo.epoch) await s.waitForEpoch(epoch, EPOCH_WAIT_MS);
    if (epoch < s.cinfo.epoch) throw new SdError(Res.OLD_NODE_VER);
    if (this.#gateEpoch === epoch) await this.#gate.promise;
    const deadline = s.deps.now() + DRAIN_WAIT_MS;
    for (;;) {
      const older = [...this.#inflight.keys()].some((e) => e < epoch);
      if (!older) break;
      if (s.deps.now() >= deadline) {
        // An old request that does not end (it may itself wait for a recovery elsewhere) must
        // not hold the whole cluster's recovery; it answers OLD_NODE_VER if it fails.
        s.log.warn("recovery: serving while older requests are still running", { epoch });
        break;
      }
      await new Promise<void>((r) => {
        const t = s.deps.timers.setTimeout(r, 200);
        this.#drainWaiters.push(() => {
          s.deps.timers.clearTimeout(t);
          r();
        });
      });
    }
    if (epoch !== s.cinfo.epoch) throw new SdError(Res.OLD_NODE_VER);
  }

  /** GET_OBJ_LIST with CMD_RECOVERY: live and stale oids, once ready at the request's epoch. */
  async serveObjectList(req: SdReq): Promise<Uint8Array> {
    await this.#readyToServe(req.epoch);
    const out = encodeOids(await this.localObjectList());
    if (out.length > req.dataLength) throw new SdError(Res.BUFFER_SMALL);
    return out;
  }

  /**
   * READ_PEER with CMD_RECOVERY: the live object, else the stale copy of exactly tgt_epoch
   * (peerCopyFor), from `offset` up to the request's length. Never waits for a recovery.
   */
  async serveRecoveryRead(req: SdReq): Promise<Uint8Array> {
    await this.#readyToServe(req.epoch);
    const store = this.#s.store;
    const oid = req.obj.oid;
    const which = await this.#copyFor(oid, req.obj.tgtEpoch);
    const size = which === "live" ? await store.size(oid) : await store.staleSize(oid, which);
    const offset = req.obj.offset;
    const length = Math.max(0, Math.min(req.dataLength, size - offset));
    const data = which === "live"
      ? await store.read(oid, offset, length)
      : await store.readStale(oid, which, offset, length);
    // Inode and ledger objects have a fixed size and are mostly zeros: their trailing zeros are
    // not sent (the requester knows the size).
    return offset === 0 && isSparseKind(oid) ? data.subarray(0, endOfData(data)) : data;
  }

  /** GET_HASH: SHA-1 of the live object, or with CMD_RECOVERY of the copy a recovery read gets. */
  async serveHash(req: SdReq): Promise<Uint8Array> {
    const store = this.#s.store;
    const oid = req.obj.oid;
    if ((req.flags & Flag.CMD_RECOVERY) === 0) return await store.sha1(oid);
    await this.#readyToServe(req.epoch);
    const which = await this.#copyFor(oid, req.obj.tgtEpoch);
    return which === "live" ? await store.sha1(oid) : await store.sha1Stale(oid, which);
  }

  /** "live", or the epoch of the stale copy to serve; NO_OBJ when neither. */
  async #copyFor(oid: bigint, tgtEpoch: number): Promise<"live" | number> {
    const store = this.#s.store;
    const live = await store.exists(oid);
    let stale: number[] = [];
    if (!live) {
      try {
        await store.staleSize(oid, tgtEpoch);
        stale = [tgtEpoch];
      } catch (e) {
        if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
      }
    }
    const which = peerCopyFor(live, stale, tgtEpoch, this.#s.cinfo.epoch);
    if (which === null) throw new SdError(Res.NO_OBJ);
    return which === "live" ? "live" : which.staleEpoch;
  }
}

function resolvedDeferred(): Deferred {
  const d = deferred();
  d.resolve();
  return d;
}

function emptyCounters(epoch: number): RecoveryCounters {
  return {
    epoch,
    fetched: 0,
    fetchedBytes: 0,
    restored: 0,
    absent: 0,
    retries: 0,
    moved: 0,
    startedAt: 0,
    finishedAt: 0,
  };
}

/** Little-endian u64 array → oids. */
export function decodeOids(data: Uint8Array): bigint[] {
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  const out: bigint[] = [];
  for (let off = 0; off + 8 <= data.length; off += 8) out.push(v.getBigUint64(off, true));
  return out;
}

/** Oids → little-endian u64 array. */
export function encodeOids(oids: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(oids.length * 8);
  const v = new DataView(out.buffer);
  oids.forEach((o, i) => v.setBigUint64(i * 8, o, true));
  return out;
}

/** Inode and ledger objects: fixed size, stored sparse. */
function isSparseKind(oid: bigint): boolean {
  return isVdiObj(oid) || isLedgerObj(oid);
}

/** The length of `data` without its trailing zeros. */
function endOfData(data: Uint8Array): number {
  let end = data.length;
  // Eight bytes at a time where aligned, then byte by byte.
  const words = new BigUint64Array(
    data.buffer,
    data.byteOffset,
    (data.byteOffset % 8 === 0) ? Math.floor(data.length / 8) : 0,
  );
  if (words.length > 0) {
    const tail = data.length - words.length * 8;
    for (let i = data.length - 1; i >= data.length - tail; i--) if (data[i] !== 0) return i + 1;
    let w = words.length - 1;
    while (w >= 0 && words[w] === 0n) w--;
    end = (w + 1) * 8;
  }
  while (end > 0 && data[end - 1] === 0) end--;
  return end;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
