/**
 * Bounded concurrency over the pipelined client: keep a window of requests in flight and consume
 * their results in the original order, so output stays as v1.0's sequential loops print it.
 *
 * @module
 */

import { assert } from "../../core/assert.ts";

type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Runs `work` on every item with at most `limit` in flight and hands each result to `consume` in
 * item order. Items are pulled from the iterable only as the window has room, so a generator of
 * millions of pieces costs no memory up front. The first failure (of `work` or `consume`) stops launching new work and is thrown
 * once reached in order.
 */
export async function mapBounded<T, R>(
  items: Iterable<T>,
  limit: number,
  work: (item: T, index: number) => Promise<R>,
  consume: (result: R, index: number) => Promise<void> | void,
): Promise<void> {
  assert(Number.isInteger(limit) && limit > 0, "mapBounded needs a positive limit");
  const window: Promise<Settled<R>>[] = [];
  const source = items[Symbol.iterator]();
  let next = 0;
  let exhausted = false;
  const launch = () => {
    while (!exhausted && window.length < limit) {
      const item = source.next();
      if (item.done) {
        exhausted = true;
        break;
      }
      const i = next++;
      // Settled wrappers: a later item failing while an earlier one is awaited must not become
      // an unhandled rejection; its error is rethrown when its turn comes.
      window.push(
        work(item.value, i).then(
          (value): Settled<R> => ({ ok: true, value }),
          (error: unknown): Settled<R> => ({ ok: false, error }),
        ),
      );
    }
  };
  launch();
  let index = 0;
  while (window.length > 0) {
    const settled = await window.shift()!;
    if (!settled.ok) throw settled.error;
    await consume(settled.value, index++);
    launch();
  }
}
