/**
 * Per-object locks of a VDI volume, so that many requests in flight on one VDI (NBD queues, several
 * connections) never race on one data object: two creates of the same object, a copy-on-write
 * create beside an in-place write, an inode entry update beside a discard.
 *
 * Each data object index has a queue. A holder takes a byte range of the object in one of three
 * modes: `read` (shares with other reads), `write` (in-place overwrite of an object this VDI owns:
 * excludes overlapping reads and writes) and `exclusive` (create, copy-on-write, discard: the whole
 * object). A request is granted when it conflicts with nothing queued before it (granted or not),
 * so conflicting requests keep their arrival order and a stream of reads cannot starve a create;
 * disjoint writes to one object run side by side.
 *
 * Pure bookkeeping: no I/O, no timers.
 *
 * @module
 */

import { assert } from "../assert.ts";

/** How a holder uses its range. */
export type LockMode = "read" | "write" | "exclusive";

interface Holder {
  readonly mode: LockMode;
  readonly start: number;
  readonly end: number;
  granted: boolean;
  wake: () => void;
}

function conflicts(a: Holder, b: Holder): boolean {
  if (a.mode === "exclusive" || b.mode === "exclusive") return true;
  if (a.mode === "read" && b.mode === "read") return false;
  return a.start < b.end && b.start < a.end;
}

/** Range locks keyed by data object index. */
export class ObjectLocks {
  readonly #queues = new Map<number, Holder[]>();

  /**
   * Waits until `[start, end)` of object `key` is held in `mode`; resolves with the release
   * function (call it exactly once). `exclusive` ignores the range.
   */
  acquire(
    key: number,
    mode: LockMode,
    start = 0,
    end = Number.MAX_SAFE_INTEGER,
  ): Promise<() => void> {
    assert(start <= end, `bad lock range ${start}-${end}`);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(key, queue);
    }
    const holder: Holder = { mode, start, end, granted: false, wake: () => {} };
    const blocked = queue.some((h) => conflicts(h, holder));
    queue.push(holder);
    let released = false;
    const release = () => {
      assert(!released, "lock released twice");
      released = true;
      this.#release(key, holder);
    };
    if (!blocked) {
      holder.granted = true;
      return Promise.resolve(release);
    }
    return new Promise((resolve) => {
      holder.wake = () => resolve(release);
    });
  }

  /** Number of objects with holders or waiters (for tests and metrics). */
  get busyObjects(): number {
    return this.#queues.size;
  }

  #release(key: number, holder: Holder): void {
    const queue = this.#queues.get(key);
    assert(queue !== undefined, `no lock queue for object ${key}`);
    const at = queue.indexOf(holder);
    assert(at >= 0 && holder.granted, "releasing a lock that is not held");
    queue.splice(at, 1);
    if (queue.length === 0) {
      this.#queues.delete(key);
      return;
    }
    for (let i = 0; i < queue.length; i++) {
      const h = queue[i];
      if (h.granted) continue;
      let free = true;
      for (let j = 0; j < i; j++) {
        if (conflicts(queue[j], h)) {
          free = false;
          break;
        }
      }
      if (free) {
        h.granted = true;
        h.wake();
      }
    }
  }
}
