/**
 * Which cluster ops this node has applied, so that the node that asked for an op can reply to its
 * client only once every member has applied it (WAIT_APPLIED). Without this barrier a client that
 * creates a VDI through one node and writes through another a millisecond later could meet a node
 * that does not know the VDI yet (wrong copy count), or a format that lands after its write.
 *
 * @module
 */

import type { Timers } from "../cluster/deadline.ts";

/** Applied ops remembered per sender; older ones are forgotten first. */
const MAX_REMEMBERED_PER_SENDER = 4096;

/** The set of applied (sender, seq) pairs, with waiters. */
export class AppliedOps {
  readonly #applied = new Map<string, Set<number>>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #timers: Timers;

  /** `timers` bound the waits (the daemon's, or the simulation's virtual ones). */
  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** Records that the op `seq` of `sender` was applied here. */
  record(sender: string, seq: number): void {
    let set = this.#applied.get(sender);
    if (!set) {
      set = new Set();
      this.#applied.set(sender, set);
    }
    set.add(seq);
    if (set.size > MAX_REMEMBERED_PER_SENDER) {
      set.delete(set.values().next().value!);
    }
    const key = `${sender}#${seq}`;
    for (const wake of this.#waiters.get(key) ?? []) wake();
    this.#waiters.delete(key);
  }

  /** True when the op was applied here. */
  has(sender: string, seq: number): boolean {
    return this.#applied.get(sender)?.has(seq) ?? false;
  }

  /** Resolves true once the op is applied, false after `deadlineMs`. */
  waitFor(sender: string, seq: number, deadlineMs: number): Promise<boolean> {
    if (this.has(sender, seq)) return Promise.resolve(true);
    const key = `${sender}#${seq}`;
    return new Promise((resolve) => {
      const wake = () => {
        this.#timers.clearTimeout(timer);
        resolve(true);
      };
      const timer = this.#timers.setTimeout(() => {
        this.#waiters.get(key)?.delete(wake);
        resolve(false);
      }, deadlineMs);
      let set = this.#waiters.get(key);
      if (!set) {
        set = new Set();
        this.#waiters.set(key, set);
      }
      set.add(wake);
    });
  }
}
