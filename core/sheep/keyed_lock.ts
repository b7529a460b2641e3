/**
 * Mutual exclusion per key (an oid, a vid) inside one sheep, and one set of such locks per sheep
 * context, so that modules can share them without a field on the Sheep class.
 *
 * @module
 */

/** FIFO locks by key; a key's entry lives only while someone holds or waits for it. */
export class KeyedMutex<K> {
  readonly #tails = new Map<K, Promise<void>>();

  /** Waits for `key`; resolves with the release function. */
  async acquire(key: K): Promise<() => void> {
    const prev = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    const tail = prev ? prev.then(() => mine) : mine;
    this.#tails.set(key, tail);
    if (prev) await prev;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /** Runs `fn` holding `key`. */
  async with<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Runs `fn` holding every key of `keys` (taken in ascending order, without duplicates). */
  async withAll<T>(keys: K[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const releases: (() => void)[] = [];
    try {
      for (const k of sorted) releases.push(await this.acquire(k));
      return await fn();
    } finally {
      for (const r of releases.reverse()) r();
    }
  }
}

const registry = new WeakMap<object, Map<string, KeyedMutex<unknown>>>();

/** The named lock set of a sheep context (created on first use). */
export function contextLocks<K>(ctx: object, name: string): KeyedMutex<K> {
  let m = registry.get(ctx);
  if (!m) {
    m = new Map();
    registry.set(ctx, m);
  }
  let l = m.get(name);
  if (!l) {
    l = new KeyedMutex<unknown>();
    m.set(name, l);
  }
  return l as KeyedMutex<K>;
}

/** Inode index updates and reference copies of one VDI (keyed by vid). */
export const INODE_LOCKS = "inode-refs";
/** Ledger read-modify-writes (keyed by ledger oid). */
export const LEDGER_LOCKS = "ledger";
