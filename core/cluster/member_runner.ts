/**
 * One member's side of a cluster driver, independent of the transport: it feeds the event log
 * state machine with the raw events the transport delivers in log order, runs the resulting
 * handler calls one at a time (awaiting each), acts on the machine's requests (join checks, block
 * grants) and implements join/leave/notify/block/unblock/update_node on top of a `post` function
 * that appends a raw event to the transport's total order.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { MAX_EVENT_SIZE } from "../limits.ts";
import { Res } from "../proto/constants.ts";
import type { SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { systemTimers, type Timers, type Waiter, waiter } from "./deadline.ts";
import type { ClusterHandlers, JoinDecision } from "./driver.ts";
import {
  EventLog,
  type EventLogSnapshot,
  type MemberId,
  type Output,
  type RawEvent,
} from "./event_log.ts";

/** How long join() waits for this node's accept (the master's check included). */
export const JOIN_TIMEOUT_MS = 30_000;
/** How long block() waits for the exclusive section (earlier blocks and joins included). */
export const BLOCK_TIMEOUT_MS = 60_000;
/** How long leave() waits for its own leave to come back through the log. */
export const LEAVE_TIMEOUT_MS = 10_000;

/** Options of a member runner. */
export interface RunnerOptions {
  /** This incarnation's id in the log. */
  me: MemberId;
  /** Appends a raw event to the transport's total order. */
  post(ev: RawEvent): Promise<void>;
  /** The log state to start from (an empty cluster by default). */
  snapshot?: EventLogSnapshot;
  timers?: Timers;
  joinTimeoutMs?: number;
  blockTimeoutMs?: number;
  leaveTimeoutMs?: number;
}

/** Where a member is in its life. */
export type Phase = "init" | "joining" | "member" | "leaving" | "gone";

interface BlockRequest {
  waiter: Waiter<void>;
  held: boolean;
  /** Lets the next queued block() of this member proceed. */
  release(): void;
}

/** Runs one member: log machine, handler calls, driver operations. */
export class MemberRunner {
  readonly me: MemberId;
  readonly #log: EventLog;
  readonly #handlers: ClusterHandlers;
  readonly #post: (ev: RawEvent) => Promise<void>;
  readonly #timers: Timers;
  readonly #joinTimeoutMs: number;
  readonly #blockTimeoutMs: number;
  readonly #leaveTimeoutMs: number;
  #outputs: Output[] = [];
  #pumping = false;
  #phase: Phase = "init";
  #stopped = false;
  #joinWait: Waiter<void> | null = null;
  #leaveWait: Waiter<void> | null = null;
  #leaving: Promise<void> | null = null;
  #blockChain: Promise<void> = Promise.resolve();
  #block: BlockRequest | null = null;
  #blockWaiters = new Set<Waiter<void>>();

  constructor(handlers: ClusterHandlers, opts: RunnerOptions) {
    this.me = opts.me;
    this.#handlers = handlers;
    this.#post = opts.post;
    this.#log = new EventLog(opts.me, opts.snapshot);
    this.#timers = opts.timers ?? systemTimers;
    this.#joinTimeoutMs = opts.joinTimeoutMs ?? JOIN_TIMEOUT_MS;
    this.#blockTimeoutMs = opts.blockTimeoutMs ?? BLOCK_TIMEOUT_MS;
    this.#leaveTimeoutMs = opts.leaveTimeoutMs ?? LEAVE_TIMEOUT_MS;
  }

  /** The member's phase. */
  get phase(): Phase {
    return this.#phase;
  }

  /** The state machine (read it, never apply to it directly). */
  get eventLog(): EventLog {
    return this.#log;
  }

  /** Feeds the next raw event of the log (in log order, each exactly once). */
  feed(ev: RawEvent): void {
    if (this.#stopped) return;
    this.#outputs.push(...this.#log.apply(ev));
    this.#kick();
  }

  /** Posts this node's join and waits for its own accept (see ClusterDriver.join). */
  async join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    assert(this.#phase === "init" && !this.#stopped, "join() is called once, after init()");
    this.#phase = "joining";
    const w = waiter<void>(
      this.#timers,
      this.#joinTimeoutMs,
      () => new SdError(Res.JOIN_FAILED, `no answer to the join within ${this.#joinTimeoutMs} ms`),
    );
    this.#joinWait = w;
    try {
      await this.#post({ type: "join", id: this.me, node: myself, opaque });
      await w.promise;
    } catch (e) {
      w.reject(asError(e));
      if (this.#phase === "joining") {
        // Withdraw the join so a late accept cannot make us a member behind the caller's back.
        this.#phase = "gone";
        await this.#postQuietly({ type: "leave", id: this.me });
      }
      throw e instanceof SdError
        ? e
        : new SdError(Res.JOIN_FAILED, asError(e).message, { cause: e });
    }
  }

  /** Posts this node's leave and waits until it is read; no events are delivered afterwards. */
  leave(): Promise<void> {
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  async #leave(): Promise<void> {
    if (this.#phase === "gone" || this.#stopped) return;
    if (this.#phase === "init") {
      this.#phase = "gone";
      return;
    }
    if (this.#phase === "joining") {
      this.#phase = "gone";
      this.#joinWait?.reject(new SdError(Res.JOIN_FAILED, "left before the join completed"));
      await this.#post({ type: "leave", id: this.me });
      return;
    }
    assert(this.#phase === "member", `leave() while ${this.#phase}`);
    this.#phase = "leaving";
    const w = waiter<void>(
      this.#timers,
      this.#leaveTimeoutMs,
      () => new SdError(Res.CLUSTER_ERROR, `own leave not seen within ${this.#leaveTimeoutMs} ms`),
    );
    this.#leaveWait = w;
    try {
      await this.#post({ type: "leave", id: this.me });
      await w.promise;
    } finally {
      w.reject(new SdError(Res.CLUSTER_ERROR, "leave aborted"));
      this.#gone(new SdError(Res.CLUSTER_ERROR, "this node left the cluster"));
    }
  }

  /** Broadcasts `msg` in total order (resolves once it is in the log). */
  async notify(msg: Uint8Array): Promise<void> {
    this.#requireMember("notify");
    checkSize(msg);
    await this.#post({ type: "notify", id: this.me, msg });
  }

  /** Replaces this node's record everywhere (resolves once it is in the log). */
  async updateNode(node: SdNode): Promise<void> {
    this.#requireMember("updateNode");
    await this.#post({ type: "update_node", id: this.me, node });
  }

  /** Waits for the exclusive section; calls from this member are served one after another. */
  async block(): Promise<void> {
    this.#requireMember("block");
    const w = waiter<void>(
      this.#timers,
      this.#blockTimeoutMs,
      () => new SdError(Res.CLUSTER_ERROR, `block not granted within ${this.#blockTimeoutMs} ms`),
    );
    this.#blockWaiters.add(w);
    let release!: () => void;
    const prev = this.#blockChain;
    this.#blockChain = new Promise<void>((r) => release = r);
    const req: BlockRequest = { waiter: w, held: false, release };
    prev.then(async () => {
      if (w.settled || this.#stopped || this.#phase !== "member") {
        w.reject(new SdError(Res.CLUSTER_ERROR, "not a member any more"));
        release();
        return;
      }
      this.#block = req;
      try {
        await this.#post({ type: "block", id: this.me });
      } catch (e) {
        w.reject(asError(e));
        this.#block = null;
        release();
      }
    });
    try {
      await w.promise;
    } finally {
      this.#blockWaiters.delete(w);
    }
  }

  /** Leaves the exclusive section and delivers `msg` to every member through onNotify. */
  async unblock(msg: Uint8Array): Promise<void> {
    this.#requireMember("unblock");
    const b = this.#block;
    assert(b !== null && b.held, "unblock() without a held block");
    checkSize(msg);
    this.#block = null;
    try {
      await this.#post({ type: "unblock", id: this.me, msg });
    } finally {
      b.release();
    }
  }

  /**
   * The transport lost this member (connection gone, session expired): onLost is delivered after
   * the events already read, then nothing more.
   */
  lose(reason: string): void {
    if (this.#stopped || this.#phase === "gone") return;
    this.#outputs.push({ type: "removed", reason });
    this.#stopped = true;
    this.#kick();
  }

  /** Stops at once (close or death): pending operations fail, no handler is called any more. */
  stop(reason: string): void {
    this.#stopped = true;
    this.#outputs = [];
    this.#gone(new SdError(Res.CLUSTER_ERROR, reason));
  }

  #requireMember(op: string): void {
    if (this.#phase !== "member" || this.#stopped) {
      throw new SdError(Res.CLUSTER_ERROR, `${op}(): this node is not a cluster member`);
    }
  }

  #kick(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump();
  }

  async #pump(): Promise<void> {
    while (this.#outputs.length > 0) {
      const o = this.#outputs.shift()!;
      try {
        await this.#handle(o);
      } catch (e) {
        await this.#handlerFailed(e);
      }
    }
    this.#pumping = false;
  }

  async #handle(o: Output): Promise<void> {
    const deliver = this.#phase === "member" || this.#phase === "leaving" ||
      (this.#phase === "joining" && o.type === "accept");
    switch (o.type) {
      case "accept":
        if (deliver) await this.#handlers.onAccept(o.joined, o.members, o.opaque);
        return;
      case "leave":
        if (deliver) await this.#handlers.onLeave(o.left, o.members);
        return;
      case "notify":
        if (deliver) await this.#handlers.onNotify(o.sender, o.msg);
        return;
      case "update_node":
        if (deliver) await this.#handlers.onUpdateNode(o.node, o.members);
        return;
      case "joined":
        if (this.#phase === "joining") {
          this.#phase = "member";
          this.#joinWait?.resolve();
        }
        return;
      case "join_failed":
        this.#joinWait?.reject(new SdError(Res.JOIN_FAILED, o.reason));
        if (this.#phase === "joining") this.#gone(new SdError(Res.JOIN_FAILED, o.reason));
        return;
      case "check":
        return await this.#check(o);
      case "block_granted": {
        const b = this.#block;
        if (b === null || b.held || b.waiter.settled) {
          // block() gave up (deadline) after posting: release the section silently.
          // (Or a grant nobody waits for: a BLOCK whose post reported a failure yet landed.)
          if (b !== null && !b.held) this.#block = null;
          try {
            await this.#post({ type: "unblock", id: this.me, msg: null });
          } finally {
            if (b !== null && !b.held) b.release();
          }
          return;
        }
        b.held = true;
        b.waiter.resolve();
        return;
      }
      case "removed": {
        const was = this.#phase;
        if (was === "leaving") this.#leaveWait?.resolve();
        this.#gone(new SdError(Res.CLUSTER_ERROR, `no longer a cluster member: ${o.reason}`));
        if (was === "member") await this.#handlers.onLost(o.reason);
        return;
      }
    }
  }

  async #check(o: Extract<Output, { type: "check" }>): Promise<void> {
    let d: JoinDecision;
    try {
      d = await this.#handlers.onJoinCheck(o.joining, o.members, o.opaque);
    } catch (e) {
      // A check that throws refuses the joiner (with the reason) rather than stall the cluster.
      d = { accept: false, opaque: o.opaque, reason: `join check failed: ${asError(e).message}` };
    }
    if (this.#stopped || this.#phase !== "member") return;
    await this.#post(
      d.accept
        ? { type: "accept", id: o.joiner, by: this.me, opaque: d.opaque }
        : { type: "refuse", id: o.joiner, by: this.me, reason: d.reason ?? "refused" },
    );
  }

  /** A handler threw: this node's state can no longer be trusted, so it leaves the cluster. */
  async #handlerFailed(e: unknown): Promise<void> {
    const reason = `cluster event handler failed: ${asError(e).message}`;
    const was = this.#phase;
    this.#stopped = true;
    this.#outputs = [];
    this.#gone(new SdError(Res.CLUSTER_ERROR, reason, { cause: e }));
    if (was !== "gone") await this.#postQuietly({ type: "leave", id: this.me });
    if (was === "member" || was === "leaving") await this.#handlers.onLost(reason);
  }

  /** Marks this member gone and fails every pending operation with `err`. */
  #gone(err: SdError): void {
    this.#phase = "gone";
    this.#joinWait?.reject(err);
    this.#leaveWait?.reject(err);
    for (const w of this.#blockWaiters) w.reject(err);
    const b = this.#block;
    if (b !== null) {
      this.#block = null;
      b.release();
    }
  }

  /**
   * Posts the leave of a member that is already gone locally. A failure is ignored on purpose:
   * the transport is then broken and the others see this member die through it instead.
   */
  async #postQuietly(ev: RawEvent): Promise<void> {
    await this.#post(ev).catch(() => {});
  }
}

function checkSize(msg: Uint8Array): void {
  if (msg.length > MAX_EVENT_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `cluster message of ${msg.length} bytes exceeds ${MAX_EVENT_SIZE}`,
    );
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
