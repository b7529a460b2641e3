/**
 * Injectable timers and a promise with a deadline, so that every wait of the cluster drivers is
 * bounded and a simulation can drive time itself.
 *
 * @module
 */

/** The timer functions a driver uses (the global ones by default). */
export interface Timers {
  /** Returns a handle for clearTimeout. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The global timers. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A promise settled from outside, rejected by itself when its deadline passes. */
export interface Waiter<T> {
  readonly promise: Promise<T>;
  /** True once resolved, rejected or timed out. */
  readonly settled: boolean;
  /** True when the deadline passed first. */
  readonly timedOut: boolean;
  resolve(v: T): void;
  reject(e: Error): void;
}

/**
 * A waiter that rejects with `onTimeout()` after `ms` unless settled before. The timer is cleared
 * on settlement, so nothing keeps the process alive afterwards.
 */
export function waiter<T>(timers: Timers, ms: number, onTimeout: () => Error): Waiter<T> {
  let resolveP!: (v: T) => void;
  let rejectP!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolveP = res;
    rejectP = rej;
  });
  // The owner awaits `promise` later (possibly after it was rejected); marking it handled here
  // keeps an early rejection from being reported as unhandled. The owner still sees the error.
  promise.catch(() => {});
  let settled = false;
  let timedOut = false;
  const timer = timers.setTimeout(() => {
    if (settled) return;
    settled = true;
    timedOut = true;
    rejectP(onTimeout());
  }, ms);
  return {
    promise,
    get settled() {
      return settled;
    },
    get timedOut() {
      return timedOut;
    },
    resolve(v: T) {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      resolveP(v);
    },
    reject(e: Error) {
      if (settled) return;
      settled = true;
      timers.clearTimeout(timer);
      rejectP(e);
    },
  };
}

/** Resolves like `p`, or rejects with `onTimeout()` after `ms`. */
export async function withDeadline<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  timers: Timers = systemTimers,
): Promise<T> {
  const w = waiter<T>(timers, ms, onTimeout);
  p.then((v) => w.resolve(v), (e) => w.reject(e instanceof Error ? e : new Error(String(e))));
  return await w.promise;
}

/** Sleeps `ms` (always bounded by construction). */
export function sleep(ms: number, timers: Timers = systemTimers): Promise<void> {
  return new Promise((resolve) => timers.setTimeout(resolve, ms));
}
