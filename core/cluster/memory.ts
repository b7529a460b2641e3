/**
 * The in-process cluster driver: several drivers share one `MemoryHub`, which keeps the totally
 * ordered raw event log and hands each member its events through an injectable scheduler. Used by
 * unit tests and by the seeded simulation (which passes a scheduler that interleaves deliveries
 * deterministically). `kill()` makes a member vanish as if its process died: the hub posts its
 * LEAVE, as corosync's membership layer or a ZooKeeper session expiry would.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { ipv4ToAddr, type SdNode } from "../proto/node.ts";
import type { Timers } from "./deadline.ts";
import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import {
  EventLog,
  type EventLogSnapshot,
  type Member,
  type MemberId,
  type RawEvent,
} from "./event_log.ts";
import { MemberRunner } from "./member_runner.ts";

/** Options of a hub. */
export interface MemoryHubOptions {
  /**
   * Runs `fn` later. Default: a microtask. A simulation passes its own to decide when each member
   * reads the log; every member still reads it in order.
   */
  schedule?: (fn: () => void) => void;
}

interface Endpoint {
  /** Log position of the next event this member reads. */
  cursor: number;
  feed(ev: RawEvent): void;
}

/** The shared log of the in-process members. */
export class MemoryHub {
  readonly #schedule: (fn: () => void) => void;
  /** Events from position `#base` on (older ones were read by every member and dropped). */
  #log: RawEvent[] = [];
  #base = 0;
  readonly #observer = new EventLog(null);
  readonly #endpoints = new Map<MemberId, Endpoint>();
  #nextId = 1;

  constructor(opts: MemoryHubOptions = {}) {
    this.#schedule = opts.schedule ?? queueMicrotask;
  }

  /** Number of raw events posted so far. */
  get seq(): number {
    return this.#base + this.#log.length;
  }

  /** The members as every reader will see them once it has read the whole log. */
  get members(): readonly Member[] {
    return this.#observer.members;
  }

  /** Raw events not yet read by every attached member (for tests). */
  get retained(): number {
    return this.#log.length;
  }

  /** A fresh member id (hub-unique, deterministic). */
  newId(): MemberId {
    return `m${this.#nextId++}`;
  }

  /** Starts handing events to `runner` from the current end of the log. */
  attach(runner: MemberRunner): void {
    assert(!this.#endpoints.has(runner.me), "a member attaches once");
    assert(runner.eventLog.seq === this.seq, "a runner starts from the hub's current snapshot");
    this.#endpoints.set(runner.me, { cursor: this.seq, feed: (ev) => runner.feed(ev) });
  }

  /** The state a member attaching now starts from. */
  snapshot(): EventLogSnapshot {
    return this.#observer.snapshot();
  }

  /** Stops handing events to `id`. */
  detach(id: MemberId): void {
    this.#endpoints.delete(id);
    this.#trim();
  }

  /** Appends `ev` to the total order; members read it later, through the scheduler. */
  post(ev: RawEvent): void {
    this.#log.push(ev);
    this.#observer.apply(ev);
    for (const [id, ep] of this.#endpoints) this.#schedule(() => this.#pull(id, ep));
  }

  #pull(id: MemberId, ep: Endpoint): void {
    if (this.#endpoints.get(id) !== ep) return;
    while (ep.cursor < this.seq && this.#endpoints.get(id) === ep) {
      const ev = this.#log[ep.cursor - this.#base];
      ep.cursor++;
      ep.feed(ev);
    }
    this.#trim();
  }

  #trim(): void {
    let min = this.seq;
    for (const ep of this.#endpoints.values()) min = Math.min(min, ep.cursor);
    if (min > this.#base) {
      this.#log = this.#log.slice(min - this.#base);
      this.#base = min;
    }
  }
}

/** Options of a memory driver. */
export interface MemoryDriverOptions {
  timers?: Timers;
  joinTimeoutMs?: number;
  blockTimeoutMs?: number;
  leaveTimeoutMs?: number;
}

/** One in-process member of a `MemoryHub`. */
export class MemoryDriver implements ClusterDriver {
  readonly name = "memory";
  readonly #hub: MemoryHub;
  readonly #opts: MemoryDriverOptions;
  #runner: MemberRunner | null = null;
  #dead = false;

  constructor(hub: MemoryHub, opts: MemoryDriverOptions = {}) {
    this.#hub = hub;
    this.#opts = opts;
  }

  /** This member's id in the hub (after init). */
  get id(): MemberId | null {
    return this.#runner?.me ?? null;
  }

  localAddr(): Uint8Array {
    return ipv4ToAddr("127.0.0.1");
  }

  init(handlers: ClusterHandlers): Promise<void> {
    assert(this.#runner === null && !this.#dead, "init() is called once");
    const hub = this.#hub;
    const runner = new MemberRunner(handlers, {
      ...this.#opts,
      me: hub.newId(),
      snapshot: hub.snapshot(),
      post: (ev) => {
        // A dead process posts nothing.
        if (!this.#dead) hub.post(ev);
        return Promise.resolve();
      },
    });
    hub.attach(runner);
    this.#runner = runner;
    return Promise.resolve();
  }

  join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    return this.#live().join(myself, opaque);
  }

  leave(): Promise<void> {
    return this.#live().leave();
  }

  notify(msg: Uint8Array): Promise<void> {
    return this.#live().notify(msg);
  }

  block(): Promise<void> {
    return this.#live().block();
  }

  unblock(msg: Uint8Array): Promise<void> {
    return this.#live().unblock(msg);
  }

  updateNode(node: SdNode): Promise<void> {
    return this.#live().updateNode(node);
  }

  /** Leaves the cluster if still in it, then detaches from the hub. */
  async close(): Promise<void> {
    const r = this.#runner;
    if (r === null || this.#dead) return;
    try {
      if (r.phase === "member" || r.phase === "joining") await r.leave();
    } finally {
      this.#dead = true;
      r.stop("driver closed");
      this.#hub.detach(r.me);
    }
  }

  /**
   * Abrupt death, as if the process was killed: nothing more is delivered or posted, pending
   * operations fail, and the hub posts this member's LEAVE.
   */
  kill(): void {
    const r = this.#runner;
    assert(r !== null, "kill() after init()");
    if (this.#dead) return;
    this.#dead = true;
    r.stop("killed");
    this.#hub.detach(r.me);
    this.#hub.post({ type: "leave", id: r.me });
  }

  #live(): MemberRunner {
    assert(this.#runner !== null, "init() first");
    return this.#runner;
  }
}
