/**
 * Virtual time for the cluster simulation: one queue of timed events (timers of every sheep,
 * network deliveries, cluster-driver deliveries, the workload's steps), run one at a time. Before
 * each event every pending microtask runs to completion, so each event is a "run to completion"
 * step of the whole cluster. Among events due at the same virtual time the next one is chosen by
 * the seeded PRNG, which is what explores the interleavings.
 *
 * Determinism: the only real asynchrony is the macrotask boundary used to let microtasks drain
 * (node:timers setImmediate). Nothing else real is pending while the simulation runs (memory
 * stores, memory metadata, in-process driver and network all settle through promises or through
 * this queue), so the order of everything is a function of the seed.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { setImmediate } from "node:timers";
import { assert } from "../assert.ts";
import type { Timers } from "../cluster/deadline.ts";
import type { Prng } from "../recovery/prng.ts";

/** Who scheduled an event: 0 is the simulation itself, others are sheep incarnations. */
export type Owner = number;

/** The simulation's own owner id (never cancelled). */
export const SIM_OWNER: Owner = 0;

/** Largest number of events allowed in the queue at once (a runaway loop is a bug). */
export const MAX_QUEUED_EVENTS = 200_000;

interface SimEvent {
  at: number;
  seq: number;
  owner: Owner;
  label: string;
  fn: () => void;
  cancelled: boolean;
}

/** An opaque handle of a scheduled event. */
export type EventHandle = object;

/** The virtual clock and its event queue. */
export class SimClock {
  readonly #prng: Prng;
  #now: number;
  #seq = 0;
  #nextOwner = 1;
  #events: SimEvent[] = [];
  readonly #hash: Hash = createHash("sha256");
  #steps = 0;

  /** `startMs` is the virtual wall-clock time at the start (ms since the epoch). */
  constructor(prng: Prng, startMs: number) {
    this.#prng = prng;
    this.#now = startMs;
  }

  /** Virtual time in ms. */
  now(): number {
    return this.#now;
  }

  /** Events run so far. */
  get steps(): number {
    return this.#steps;
  }

  /** A hash of every event run so far (time, label, owner): equal for equal seeds. */
  traceHash(): string {
    return this.#hash.copy().digest("hex").slice(0, 16);
  }

  /** Mixes `text` into the trace hash (for facts the events themselves do not carry). */
  note(text: string): void {
    this.#hash.update(`${this.#now} ${text}\n`);
  }

  /** A fresh owner id, for one incarnation of a sheep. */
  newOwner(): Owner {
    return this.#nextOwner++;
  }

  /** Runs `fn` `delayMs` from now (rounded to whole ms). */
  schedule(delayMs: number, fn: () => void, owner: Owner, label: string): EventHandle {
    assert(Number.isFinite(delayMs), `bad delay ${delayMs}`);
    assert(this.#events.length < MAX_QUEUED_EVENTS, "too many queued events");
    const ev: SimEvent = {
      at: this.#now + Math.max(0, Math.round(delayMs)),
      seq: this.#seq++,
      owner,
      label,
      fn,
      cancelled: false,
    };
    this.#events.push(ev);
    return ev;
  }

  /** Cancels a scheduled event (no effect if it ran already). */
  cancel(handle: EventHandle): void {
    (handle as SimEvent).cancelled = true;
  }

  /** Cancels every pending event of `owner` (its process died). */
  cancelOwner(owner: Owner): void {
    assert(owner !== SIM_OWNER, "the simulation's own events are never cancelled");
    this.#events = this.#events.filter((e) => e.owner !== owner);
  }

  /** The Timers view of `owner`, for its sheep and its cluster driver. */
  timersFor(owner: Owner, what: string): Timers {
    return {
      setTimeout: (fn, ms) => this.schedule(ms, fn, owner, `${what} timer`),
      clearTimeout: (h) => {
        if (h !== undefined && h !== null) this.cancel(h as EventHandle);
      },
    };
  }

  /** Sleeps `ms` of virtual time (for the simulation's own processes). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(ms, resolve, SIM_OWNER, "sleep"));
  }

  /** Lets every pending microtask run (one real macrotask turn). */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Settles, then runs the next event: the earliest, a seeded choice among those due at the same
   * time. False when nothing is queued.
   */
  async step(): Promise<boolean> {
    await this.settle();
    this.#events = this.#events.filter((e) => !e.cancelled);
    if (this.#events.length === 0) return false;
    let at = Infinity;
    for (const e of this.#events) if (e.at < at) at = e.at;
    const due: number[] = [];
    for (let i = 0; i < this.#events.length; i++) if (this.#events[i].at === at) due.push(i);
    const idx = due.length === 1 ? due[0] : due[this.#prng.int(due.length)];
    const ev = this.#events[idx];
    this.#events[idx] = this.#events[this.#events.length - 1];
    this.#events.pop();
    assert(ev.at >= this.#now, "time never goes back");
    this.#now = ev.at;
    this.#steps++;
    this.#hash.update(`${ev.at} ${ev.owner} ${ev.label}\n`);
    ev.fn();
    return true;
  }

  /**
   * Runs events until `done()` holds (checked after every event) or virtual time passes
   * `untilMs`. True when `done()` held.
   */
  async runUntil(done: () => boolean, untilMs: number): Promise<boolean> {
    for (;;) {
      await this.settle();
      if (done()) return true;
      const next = this.#nextAt();
      if (next === null || next > untilMs) {
        this.#now = Math.max(this.#now, untilMs);
        return done();
      }
      await this.step();
    }
  }

  #nextAt(): number | null {
    let at: number | null = null;
    for (const e of this.#events) if (!e.cancelled && (at === null || e.at < at)) at = e.at;
    return at;
  }
}
