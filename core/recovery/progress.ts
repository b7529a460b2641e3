/**
 * Recovery progress, pure: the per-node state machine that runs a plan (which object next, when,
 * who waits), and the cluster-wide rule for purging stale copies. No timers and no I/O: the
 * executor passes the time in and does what the answers say, so the simulation can replay any
 * interleaving.
 *
 * Per node (v1.0's recovery_info, §10.6): PREPARING_LIST (gathering object lists and planning)
 * → RECOVERING_OBJECTS → NOTIFYING_COMPLETION (COMPLETE_RECOVERY sent) → done. A new epoch at any
 * point starts over at PREPARING_LIST and the old plan is dropped: the planner is a function of
 * the store's state, so whatever the old plan achieved is seen by the new one.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { RecoveryPhase, type RecoveryState, type RecoveryThrottling } from "../proto/stat.ts";

/** Recovery throttling: at most `max` objects started per `intervalMs` (0 = no throttling). */
export interface Throttle {
  readonly max: number;
  readonly intervalMs: number;
}

/** No throttling (v1.0's default). */
export const NO_THROTTLE: Throttle = Object.freeze({ max: 0, intervalMs: 0 });

/** Checks a throttle; SdError(INVALID_PARMS) when it is not two naturals, both 0 or both > 0. */
export function checkThrottle(t: Throttle): Throttle {
  const ok = Number.isSafeInteger(t.max) && Number.isSafeInteger(t.intervalMs) && t.max >= 0 &&
    t.intervalMs >= 0 && (t.max === 0) === (t.intervalMs === 0) && t.max <= 0xffff_ffff;
  if (!ok) {
    throw new SdError(Res.INVALID_PARMS, `invalid recovery throttle ${t.max}/${t.intervalMs} ms`);
  }
  return { max: t.max, intervalMs: t.intervalMs };
}

/**
 * Parses `sheep -R max=N,interval=MS` (both keys, positive integers, any order). SdError
 * (INVALID_PARMS) on anything else.
 */
export function parseThrottleOption(text: string): Throttle {
  const bad = () => new SdError(Res.INVALID_PARMS, `invalid recovery option '${text}'`);
  const seen = new Map<string, number>();
  for (const part of text.split(",")) {
    const m = /^(max|interval)=(\d{1,10})$/.exec(part.trim());
    if (!m || seen.has(m[1])) throw bad();
    seen.set(m[1], Number(m[2]));
  }
  const max = seen.get("max");
  const intervalMs = seen.get("interval");
  if (max === undefined || intervalMs === undefined || max === 0 || intervalMs === 0) throw bad();
  return checkThrottle({ max, intervalMs });
}

/** The wire form of a throttle (GET_RECOVERY / SET_RECOVERY). */
export function throttleToWire(t: Throttle): RecoveryThrottling {
  return { maxExecCount: t.max, queueWorkInterval: BigInt(t.intervalMs), throttling: t.max > 0 };
}

/** A throttle from its wire form; `throttling` false means none. */
export function throttleFromWire(w: RecoveryThrottling): Throttle {
  if (!w.throttling) return NO_THROTTLE;
  if (w.queueWorkInterval > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SdError(Res.INVALID_PARMS, "recovery interval too large");
  }
  return checkThrottle({ max: w.maxExecCount, intervalMs: Number(w.queueWorkInterval) });
}

/** Where a node's recovery is. */
export type Phase = "idle" | "preparing" | "recovering" | "notifying" | "done" | "refused";

/** How the recovery of one object ended. */
export type Outcome =
  /** The object is now in the local store (fetched, restored, or it existed already). */
  | "recovered"
  /** Every source answered NO_OBJ: lost or deleted. Counted as finished; logged by the caller. */
  | "absent"
  /** A transient failure (network, EIO of a peer): try again after the retry delay. */
  | "retry"
  /**
   * The local disk is full (NO_SPACE): tried again after the delay given to finish(), but the
   * requests waiting for it are released and later ones do not wait (see mustWait()): they go on
   * without the object (a read is served by another replica, a write fails with NO_SPACE).
   */
  | "noSpace";

/** What to do next. */
export type Next =
  /** Start recovering this object now; report its end with finish(epoch, oid, …). */
  | { readonly kind: "start"; readonly epoch: number; readonly oid: bigint }
  /** Nothing may start before this time (throttle or retry delay); ask again then. */
  | { readonly kind: "wait"; readonly until: number }
  /** Nothing to start: not recovering, all started, or the in-flight limit is reached. */
  | { readonly kind: "none" }
  /** Every object is finished: send COMPLETE_RECOVERY for `epoch`, then call notified(). */
  | { readonly kind: "notify"; readonly epoch: number };

/**
 * Yielding to clients: while this node serves client I/O (a peer read, write, create or remove
 * within the last CLIENT_BUSY_MS), objects no request waits for are fetched at most
 * CLIENT_BUSY_MAX_IN_FLIGHT at a time instead of maxInFlight; objects requests wait for are not
 * limited by it. Recovery runs at full speed on an idle cluster and at a slower pace under client
 * load. Measured with bench/recovery_bench.ts (4 sheep, maxInFlight 4, 2 cores under load 8-15,
 * two runs each; share of the client's rate kept during recovery, recovery MB/s meanwhile):
 *
 * | busy limit | seq client       | 4 KiB random client |
 * |------------|------------------|---------------------|
 * | 4 (none)   | 30-35%, 141-168  | 13-14%, 401-427     |
 * | 2          | 53-67%, 141-158  | 16-22%, 344-378     |
 * | 1          | 44-59%, 57-99    | 28-35%, 228-251     |
 *
 * 2 kept the recovery rate of no limit there. The machine's noise is large: the full run with 2
 * (median of 3, load 6-18) gave the seq client 34-37% and the random one 20-24%; re-measure on a
 * quiet machine before tuning further.
 */
export const CLIENT_BUSY_MAX_IN_FLIGHT = 2;
/** How long after a client op this node counts as busy with client I/O (ms). */
export const CLIENT_BUSY_MS = 500;
/**
 * Yielding to latency-bound clients: while this node serves client I/O other than creates (reads,
 * writes and removes of existing objects: requests a guest waits for one by one), recovery also
 * pauses after each object nobody waits for, for this many times as long as that object took. At
 * 1 recovery is at work at most about half the time such a client is active, and the client runs
 * unhindered by this node in the other half; the pause stretches with the fetches when the
 * machine is loaded. Creates (a guest writing new data in bulk, throughput-bound, never waiting
 * for recovery) get only the in-flight bound above.
 *
 * bench/recovery_bench.ts on 2 cores (client share kept / recovery share of raw ÷ 3): the full run
 * (4 and 6 sheep, median of 3) gave the 4 KiB random client 17% / 75% and 14% / 62% without the
 * pause, 45% / 44% and 34% / 46% with it; the seq client (creates) is unchanged. Quick runs, 4
 * sheep, median of 3, with pause ratio / busy limit: 1 / 2: random 47% / 47%, seq 76% / 32%;
 * 1 / 1: random 52% / 30%, seq 87% / 20%; 2 / 1: random 61% / 23%. The random client is
 * CPU-bound (2 cores busy before the kill): what recovery takes it loses, so a pause trades one
 * share for the other; the seq client also waits for the disk and loses less per recovered byte,
 * and pausing for it cost recovery more than the client gained, hence no pause for creates.
 */
export const CLIENT_BUSY_PAUSE_RATIO = 1;

/** Options of a NodeRecovery. */
export interface NodeRecoveryOptions {
  /** Objects recovered at the same time. Default 1. */
  readonly maxInFlight?: number;
  /**
   * Objects in flight while the node is busy with client I/O (see clientIo()), as long as no
   * request waits for them. Default min(maxInFlight, CLIENT_BUSY_MAX_IN_FLIGHT).
   */
  readonly busyMaxInFlight?: number;
  /** How long a client op keeps the node busy (ms). Default CLIENT_BUSY_MS. */
  readonly busyMs?: number;
  /**
   * The pause after an object nobody waited for, as a multiple of its fetch time, while the node
   * serves latency-bound client I/O (see clientIo()). Default CLIENT_BUSY_PAUSE_RATIO.
   */
  readonly busyPauseRatio?: number;
  /** Delay before retrying an object after a transient failure, ms. Default 1000. */
  readonly retryDelayMs?: number;
  /** Initial throttle. Default none. */
  readonly throttle?: Throttle;
}

/**
 * The recovery state machine of one node. Methods mutate it and return at once; the time is
 * always an argument. The rules:
 *
 * - Order: the plan's order, except that objects a request waits for go first, the most recently
 *   requested first.
 * - In flight: at most `maxInFlight` objects; while the node is busy with client I/O (clientIo()
 *   within `busyMs`), objects no request waits for start only while fewer than `busyMaxInFlight`
 *   are in flight.
 * - Pacing: while the node is busy with latency-bound client I/O, an object no request waited for
 *   that took d ms from its start to its end holds back the next such start until its end plus
 *   `busyPauseRatio`·d (waited-for objects are never held back).
 * - Throttling: at most `max` starts per window of `intervalMs` (the window opens at the first
 *   start after the previous one closed). Objects a request waits for skip the throttle (a client
 *   is waiting, and the throttle exists to protect clients) but count in the window.
 * - Waiting (mustWait()): a request for an object that is not in the store waits while the node
 *   prepares its list (it might be in the plan) and while the object is pending or in flight in
 *   the plan; never once the node is notifying or done, and never for an object that exists
 *   locally. Waiters are released (the caller wakes them; they look at the store again) when the
 *   object finishes, when it is created locally, or when a new plan does not contain it. A new
 *   epoch keeps them waiting and puts their objects first in the new plan.
 * - A transient failure puts the object back, due after retryDelayMs; "absent" finishes it.
 * - Completion: when every planned object is finished, next() says "notify", once per epoch.
 * - Refusal (avoid-diskfull): a plan may be refused instead of set; nothing starts, nothing
 *   waits, and no completion is reported until the next epoch.
 */
export class NodeRecovery {
  #epoch = 0;
  #phase: Phase = "idle";
  #throttle: Throttle;
  readonly #maxInFlight: number;
  readonly #busyMaxInFlight: number;
  readonly #busyMs: number;
  #lastClientIo = -Infinity;
  /** The last client op that was not a create (latency-bound I/O). */
  #lastLatencyIo = -Infinity;
  readonly #busyPauseRatio: number;
  /** Objects nobody waited for start no earlier than this (pacing). */
  #pausedUntil = -Infinity;
  /** When each object in flight started. */
  readonly #startedAt = new Map<bigint, number>();
  readonly #retryDelayMs: number;

  /** Planned order. */
  #queue: bigint[] = [];
  #head = 0;
  /** Objects to do before the queue, most recently requested first. */
  #urgent: bigint[] = [];
  /** Not yet finished and not in flight (in #queue, #urgent or #delayed). */
  readonly #pending = new Set<bigint>();
  readonly #inFlight = new Set<bigint>();
  /** Due times of objects waiting for a retry. */
  readonly #delayed = new Map<bigint, number>();
  /** Objects requests wait for. */
  readonly #waited = new Set<bigint>();
  /** Objects whose last attempt found the disk full (no request waits for them). */
  readonly #noSpace = new Set<bigint>();
  #finished = 0;
  #total = 0;
  #absent: bigint[] = [];

  #windowStart = 0;
  #windowCount = 0;
  #windowOpen = false;

  constructor(options: NodeRecoveryOptions = {}) {
    const maxInFlight = options.maxInFlight ?? 1;
    const retry = options.retryDelayMs ?? 1000;
    const busyMax = options.busyMaxInFlight ?? Math.min(maxInFlight, CLIENT_BUSY_MAX_IN_FLIGHT);
    const busyMs = options.busyMs ?? CLIENT_BUSY_MS;
    const pause = options.busyPauseRatio ?? CLIENT_BUSY_PAUSE_RATIO;
    assert(Number.isInteger(maxInFlight) && maxInFlight >= 1, "maxInFlight must be ≥ 1");
    assert(
      Number.isInteger(busyMax) && busyMax >= 1 && busyMax <= maxInFlight,
      "busyMaxInFlight must be in 1..maxInFlight",
    );
    assert(Number.isFinite(busyMs) && busyMs >= 0, "busyMs must be ≥ 0");
    assert(Number.isFinite(pause) && pause >= 0, "busyPauseRatio must be ≥ 0");
    assert(Number.isFinite(retry) && retry >= 0, "retryDelayMs must be ≥ 0");
    this.#maxInFlight = maxInFlight;
    this.#busyMaxInFlight = busyMax;
    this.#busyMs = busyMs;
    this.#busyPauseRatio = pause;
    this.#retryDelayMs = retry;
    this.#throttle = checkThrottle(options.throttle ?? NO_THROTTLE);
  }

  /** The epoch being recovered to (0 before the first). */
  get epoch(): number {
    return this.#epoch;
  }

  get phase(): Phase {
    return this.#phase;
  }

  get throttle(): Throttle {
    return this.#throttle;
  }

  /** Objects that ended "absent" in this epoch's plan, in the order they ended. */
  get absent(): readonly bigint[] {
    return this.#absent;
  }

  /** Objects being recovered right now. */
  get inFlight(): ReadonlySet<bigint> {
    return this.#inFlight;
  }

  /** Objects requests are waiting for. */
  get waited(): ReadonlySet<bigint> {
    return this.#waited;
  }

  /** dog node recovery set-throttle: takes effect at the next start, with a new window. */
  setThrottle(t: Throttle): void {
    this.#throttle = checkThrottle(t);
    this.#windowOpen = false;
  }

  /**
   * An epoch change: the running plan (if any) is dropped and the node prepares its list for
   * `epoch`. Fetches in flight may still end; finish() ignores them (their effect on the store is
   * seen by the new plan).
   */
  begin(epoch: number): void {
    assert(Number.isInteger(epoch) && epoch > this.#epoch, `epoch ${epoch} ≤ ${this.#epoch}`);
    this.#epoch = epoch;
    this.#phase = "preparing";
    this.#queue = [];
    this.#head = 0;
    this.#urgent = [];
    this.#pending.clear();
    this.#inFlight.clear();
    this.#startedAt.clear();
    this.#pausedUntil = -Infinity;
    this.#delayed.clear();
    this.#finished = 0;
    this.#total = 0;
    this.#absent = [];
    this.#noSpace.clear();
  }

  /**
   * The plan of `epoch` is ready: its fetches in order. Ignored (accepted false) when another
   * epoch began meanwhile. Waited-for objects go first; those not in the plan are `released`.
   * An empty plan goes straight to completion.
   */
  setPlan(epoch: number, oids: readonly bigint[]): { accepted: boolean; released: bigint[] } {
    if (epoch !== this.#epoch || this.#phase !== "preparing") {
      return { accepted: false, released: [] };
    }
    for (const oid of oids) {
      if (this.#pending.has(oid)) continue;
      this.#pending.add(oid);
      this.#queue.push(oid);
    }
    this.#total = this.#pending.size;
    const released: bigint[] = [];
    for (const oid of this.#waited) {
      if (this.#pending.has(oid)) this.#urgent.unshift(oid);
      else released.push(oid);
    }
    for (const oid of released) this.#waited.delete(oid);
    this.#phase = "recovering";
    return { accepted: true, released };
  }

  /**
   * The plan of `epoch` is not started (avoid-diskfull: it would fill the disk). Nothing is
   * recovered and no completion is reported for this epoch; no request waits any more (the
   * `released` ones look at the store again). Ignored (accepted false) when another epoch began.
   */
  refuse(epoch: number): { accepted: boolean; released: bigint[] } {
    if (epoch !== this.#epoch || this.#phase !== "preparing") {
      return { accepted: false, released: [] };
    }
    this.#phase = "refused";
    const released = [...this.#waited];
    this.#waited.clear();
    return { accepted: true, released };
  }

  /**
   * Whether a request for `oid` must wait for its recovery (`existsLocally`: the store has it
   * live). When it must, the object goes to the front. CREATE and recovery reads never ask.
   */
  mustWait(oid: bigint, existsLocally: boolean): boolean {
    if (existsLocally || this.#noSpace.has(oid)) return false;
    if (this.#phase === "preparing" || this.#inFlight.has(oid)) {
      this.#waited.add(oid);
      return true;
    }
    if (this.#phase !== "recovering" || !this.#pending.has(oid)) return false;
    this.#waited.add(oid);
    this.prioritize(oid);
    return true;
  }

  /**
   * A client op on this node's store at `now`: the node is busy with client I/O for busyMs.
   * `create`: the op creates an object (bulk I/O: the in-flight bound only, no pacing).
   */
  clientIo(now: number, create = false): void {
    this.#lastClientIo = Math.max(this.#lastClientIo, now);
    if (!create) this.#lastLatencyIo = Math.max(this.#lastLatencyIo, now);
  }

  /** Moves a pending object to the front (a retry-delayed one becomes due now). */
  prioritize(oid: bigint): boolean {
    if (!this.#pending.has(oid)) return false;
    this.#delayed.delete(oid);
    const i = this.#urgent.indexOf(oid);
    if (i >= 0) this.#urgent.splice(i, 1);
    this.#urgent.unshift(oid);
    return true;
  }

  /** Whether the last attempt to recover `oid` in the current plan found the disk full. */
  lacksSpace(oid: bigint): boolean {
    return this.#noSpace.has(oid);
  }

  /** Whether `oid` is still to be recovered (pending or in flight) in the current plan. */
  isPending(oid: bigint): boolean {
    return this.#pending.has(oid) || this.#inFlight.has(oid);
  }

  /** Objects not yet finished (pending or in flight). */
  get remaining(): number {
    return this.#pending.size + this.#inFlight.size;
  }

  /**
   * The next step at time `now`. A "start" marks the object in flight. With `urgentOnly`
   * (recovery disabled by `dog cluster recover disable`) only objects that requests wait for
   * are started; the others stay pending.
   */
  next(now: number, options: { readonly urgentOnly?: boolean } = {}): Next {
    if (this.#phase !== "recovering") return { kind: "none" };
    if (this.#pending.size === 0 && this.#inFlight.size === 0) {
      this.#phase = "notifying";
      return { kind: "notify", epoch: this.#epoch };
    }
    if (this.#inFlight.size >= this.#maxInFlight) return { kind: "none" };

    // Requested objects first, throttle or not: the requested ones, then requested retries due.
    while (this.#urgent.length > 0) {
      const oid = this.#urgent.shift()!;
      if (this.#pending.has(oid) && !this.#delayed.has(oid)) return this.#start(oid, now);
    }
    const dueWaited = this.#earliestDelayed(now, true);
    if (dueWaited !== null) return this.#start(dueWaited, now);
    const busy = now - this.#lastClientIo < this.#busyMs;
    if (options.urgentOnly || (busy && this.#inFlight.size >= this.#busyMaxInFlight)) {
      return this.#waitForWaited(Infinity);
    }
    if (now < this.#pausedUntil && now - this.#lastLatencyIo < this.#busyMs) {
      // Pacing; should the client stop, the pause ends as planned.
      return this.#waitForWaited(this.#pausedUntil);
    }

    const t = this.#throttle;
    let throttledUntil = -Infinity;
    if (t.max > 0 && this.#windowOpen) {
      if (now >= this.#windowStart + t.intervalMs) this.#windowOpen = false;
      else if (this.#windowCount >= t.max) throttledUntil = this.#windowStart + t.intervalMs;
    }
    if (throttledUntil <= now) {
      while (this.#head < this.#queue.length) {
        const oid = this.#queue[this.#head++];
        if (this.#pending.has(oid) && !this.#delayed.has(oid)) return this.#start(oid, now);
      }
      const due = this.#earliestDelayed(now, false);
      if (due !== null) return this.#start(due, now);
    }
    let until = this.#pending.size > this.#delayed.size ? throttledUntil : Infinity;
    for (const [oid, at] of this.#delayed) {
      until = Math.min(until, this.#waited.has(oid) ? at : Math.max(at, throttledUntil));
    }
    return until === Infinity || until === -Infinity ? { kind: "none" } : { kind: "wait", until };
  }

  /** Nothing but waited-for objects may start before `until`: when to ask again. */
  #waitForWaited(until: number): Next {
    for (const [oid, at] of this.#delayed) if (this.#waited.has(oid)) until = Math.min(until, at);
    return until === Infinity ? { kind: "none" } : { kind: "wait", until };
  }

  /** The retry-delayed object due first at `now` (lowest oid on ties), waited-for ones only if asked. */
  #earliestDelayed(now: number, waitedOnly: boolean): bigint | null {
    let best: bigint | null = null;
    let bestAt = Infinity;
    for (const [oid, at] of this.#delayed) {
      if (at > now || (waitedOnly && !this.#waited.has(oid))) continue;
      if (at < bestAt || (at === bestAt && best !== null && oid < best)) {
        best = oid;
        bestAt = at;
      }
    }
    return best;
  }

  /**
   * The recovery of `oid`, started by next() for `epoch`, ended. `accepted` is false (nothing
   * changes) when a new epoch began since. `release`: wake the requests waiting for it. A "retry"
   * is due after `retryDelayMs` (default: the options' delay).
   */
  finish(
    epoch: number,
    oid: bigint,
    outcome: Outcome,
    now: number,
    retryDelayMs: number = this.#retryDelayMs,
  ): { accepted: boolean; release: boolean } {
    if (epoch !== this.#epoch || !this.#inFlight.has(oid)) {
      return { accepted: false, release: false };
    }
    this.#inFlight.delete(oid);
    const startedAt = this.#startedAt.get(oid) ?? now;
    this.#startedAt.delete(oid);
    if (!this.#waited.has(oid) && now - this.#lastLatencyIo < this.#busyMs) {
      const until = now + (now - startedAt) * this.#busyPauseRatio;
      this.#pausedUntil = Math.max(this.#pausedUntil, until);
    }
    if (outcome === "retry" || outcome === "noSpace") {
      this.#pending.add(oid);
      this.#delayed.set(oid, now + retryDelayMs);
      if (outcome === "retry") return { accepted: true, release: false };
      this.#noSpace.add(oid);
      return { accepted: true, release: this.#waited.delete(oid) };
    }
    this.#noSpace.delete(oid);
    this.#finished++;
    if (outcome === "absent") this.#absent.push(oid);
    return { accepted: true, release: this.#waited.delete(oid) };
  }

  /**
   * A CREATE made the object locally (its content is newer than any copy recovery could find):
   * a pending object is finished. An in-flight one finishes when its fetch ends (the store's
   * create then answers OID_EXIST, which counts as recovered). Returns whether to wake waiters.
   */
  createdLocally(oid: bigint): boolean {
    if (this.#pending.has(oid)) {
      this.#pending.delete(oid);
      this.#delayed.delete(oid);
      this.#finished++;
    }
    return !this.#inFlight.has(oid) && this.#waited.delete(oid);
  }

  /** COMPLETE_RECOVERY for `epoch` went out: the node is done with it. */
  notified(epoch: number): void {
    if (epoch !== this.#epoch || this.#phase !== "notifying") return;
    this.#phase = "done";
  }

  /** STAT_RECOVERY's recovery_state. */
  state(): RecoveryState {
    const phase = this.#phase;
    return {
      inRecovery: phase === "preparing" || phase === "recovering" || phase === "notifying",
      state: phase === "recovering"
        ? RecoveryPhase.RECOVERING_OBJECTS
        : phase === "notifying"
        ? RecoveryPhase.NOTIFYING_COMPLETION
        : RecoveryPhase.PREPARING_LIST,
      nrFinished: BigInt(this.#finished),
      nrTotal: BigInt(this.#total),
    };
  }

  #start(oid: bigint, now: number): Next {
    this.#pending.delete(oid);
    this.#delayed.delete(oid);
    this.#inFlight.add(oid);
    this.#startedAt.set(oid, now);
    const t = this.#throttle;
    if (t.max > 0) {
      if (!this.#windowOpen) {
        this.#windowOpen = true;
        this.#windowStart = now;
        this.#windowCount = 0;
      }
      this.#windowCount++;
    }
    return { kind: "start", epoch: this.#epoch, oid };
  }
}

/**
 * The cluster-wide view of recovery completion, identical on every node because COMPLETE_RECOVERY
 * messages and membership changes arrive in one total order. Plain data; update it with
 * gatherOnMembership() and gatherOnComplete().
 */
export interface GatherState {
  /** The current epoch. */
  readonly epoch: number;
  /** Keys (nodeKey) of the members of the current epoch, gateways included. */
  readonly members: readonly string[];
  /** Members that reported COMPLETE_RECOVERY for the current epoch. */
  readonly reported: readonly string[];
  /** The last epoch every member finished recovering (0: none known). */
  readonly lastGathered: number;
}

/** The state after start-up (lastGathered unknown: 0 makes planners search the whole history). */
export function gatherInit(
  epoch: number,
  members: readonly string[],
  lastGathered = 0,
): GatherState {
  assert(lastGathered <= epoch, "last gathered epoch after the current one");
  return { epoch, members: [...new Set(members)], reported: [], lastGathered };
}

/**
 * A new epoch with `members`. Reports for older epochs no longer count: a node that finished
 * epoch e says nothing about e+1. The same epoch again (a restart with the same members) keeps
 * the reports.
 */
export function gatherOnMembership(
  s: GatherState,
  epoch: number,
  members: readonly string[],
): GatherState {
  assert(epoch >= s.epoch, `epoch went back from ${s.epoch} to ${epoch}`);
  if (epoch === s.epoch) {
    const m = new Set(members);
    return { ...s, members: [...m], reported: s.reported.filter((k) => m.has(k)) };
  }
  return { epoch, members: [...new Set(members)], reported: [], lastGathered: s.lastGathered };
}

/**
 * COMPLETE_RECOVERY(epoch) from `node`. When it completes the set of the current epoch's members
 * the epoch becomes lastGathered and `purge` is true once: every node may then purge its stale
 * copies, since every object is on all its holders of this epoch. Reports for another epoch, from
 * non-members, or repeated, change nothing; in particular a report for an older epoch never
 * purges: the stale copies it would delete are the sources of the running recovery.
 */
export function gatherOnComplete(
  s: GatherState,
  epoch: number,
  node: string,
): { state: GatherState; purge: boolean } {
  if (epoch !== s.epoch || !s.members.includes(node) || s.reported.includes(node)) {
    return { state: s, purge: false };
  }
  const reported = [...s.reported, node];
  const all = s.members.every((m) => reported.includes(m));
  if (all && s.lastGathered < epoch) {
    return { state: { ...s, reported, lastGathered: epoch }, purge: true };
  }
  return { state: { ...s, reported }, purge: false };
}
