/**
 * Always-on assertions for programmer errors (TigerBeetle style). A failed assertion is a bug in
 * this program, never a consequence of bad input: bad input gets an SdError with a result code.
 *
 * @module
 */

/** Thrown when an internal invariant does not hold. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws AssertionError when `cond` is false. */
export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(message);
}
