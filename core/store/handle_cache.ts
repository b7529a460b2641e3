/**
 * A bounded LRU cache of open object files, so that the hot path (many small writes to the same
 * objects) does not pay an open and a close per request. Entries are reference counted: one that
 * is evicted or invalidated while requests still use it is closed by the last of them.
 *
 * @module
 */

import { assert } from "../assert.ts";

/** An object borrowed from the cache; `release()` exactly once when the I/O is done. */
export interface HandleLease<T> {
  readonly value: T;
  release(): void;
}

interface Entry<T> {
  readonly opening: Promise<T>;
  opened: T | null;
  refs: number;
  /** Out of the map: closed as soon as refs drops to 0. */
  detached: boolean;
}

/** LRU of open files (whatever `open` makes of them) keyed by oid. */
export class HandleCache<T> {
  readonly #capacity: number;
  readonly #open: (oid: bigint) => Promise<T>;
  readonly #close: (value: T) => Promise<void>;
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<bigint, Entry<T>>();
  readonly #closing = new Set<Promise<void>>();
  #closeError: unknown = null;

  /**
   * `open` opens the object's file or throws (e.g. NO_OBJ); it is called once per cache miss.
   * `close` closes what `open` made, once no request uses it.
   */
  constructor(
    capacity: number,
    open: (oid: bigint) => Promise<T>,
    close: (value: T) => Promise<void>,
  ) {
    assert(Number.isInteger(capacity) && capacity >= 1, `bad handle cache capacity ${capacity}`);
    this.#capacity = capacity;
    this.#open = open;
    this.#close = close;
  }

  /** Number of cached entries (in use or idle). */
  get size(): number {
    return this.#entries.size;
  }

  /** Borrows the open handle of `oid`, opening the file on a miss. */
  async acquire(oid: bigint): Promise<HandleLease<T>> {
    let entry: Entry<T> | undefined = this.#entries.get(oid);
    if (entry !== undefined) {
      this.#entries.delete(oid);
      this.#entries.set(oid, entry);
    } else {
      entry = { opening: this.#open(oid), opened: null, refs: 0, detached: false };
      this.#entries.set(oid, entry);
    }
    entry.refs++;
    this.#evictIdle();
    let opened: T;
    try {
      opened = await entry.opening;
    } catch (err) {
      entry.refs--;
      if (this.#entries.get(oid) === entry) this.#entries.delete(oid);
      entry.detached = true;
      throw err;
    }
    entry.opened = opened;
    const held = entry;
    let released = false;
    return {
      value: opened,
      release: () => {
        assert(!released, "handle lease released twice");
        released = true;
        held.refs--;
        if (held.detached) this.#closeIfIdle(held);
        else this.#evictIdle();
      },
    };
  }

  /**
   * Drops the cached handle of `oid` (the object was removed, renamed or replaced): later
   * acquires open the file again. Requests still holding the old handle finish on it.
   */
  invalidate(oid: bigint): void {
    const entry = this.#entries.get(oid);
    if (entry === undefined) return;
    this.#entries.delete(oid);
    entry.detached = true;
    this.#closeIfIdle(entry);
  }

  /** Drops every cached handle. */
  invalidateAll(): void {
    for (const oid of [...this.#entries.keys()]) this.invalidate(oid);
  }

  /**
   * Drops every handle and waits for the closes; throws the first close failure seen since the
   * cache was made (closes of evicted handles run in the background and report here).
   */
  async close(): Promise<void> {
    this.invalidateAll();
    while (this.#closing.size > 0) await Promise.all(this.#closing);
    if (this.#closeError !== null) throw this.#closeError;
  }

  #evictIdle(): void {
    if (this.#entries.size <= this.#capacity) return;
    for (const [oid, entry] of this.#entries) {
      if (this.#entries.size <= this.#capacity) break;
      if (entry.refs > 0) continue;
      this.#entries.delete(oid);
      entry.detached = true;
      this.#closeIfIdle(entry);
    }
  }

  #closeIfIdle(entry: Entry<T>): void {
    if (entry.refs > 0 || entry.opened === null) return;
    const value = entry.opened;
    entry.opened = null;
    const closing: Promise<void> = this.#close(value).then(
      () => {
        this.#closing.delete(closing);
      },
      (err) => {
        this.#closing.delete(closing);
        if (this.#closeError === null) this.#closeError = err;
      },
    );
    this.#closing.add(closing);
  }
}
