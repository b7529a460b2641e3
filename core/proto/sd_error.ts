/**
 * Errors that carry a Sheepdog result code, so that every layer can turn a failure into the right
 * wire result (sheep) or exit code (dog) without string matching.
 *
 * @module
 */

import { resultText } from "./constants.ts";

/** An error with its SD_RES_* result code. */
export class SdError extends Error {
  override name = "SdError";
  /** The wire result code (SD_RES_*). */
  readonly result: number;

  constructor(result: number, message?: string, options?: ErrorOptions) {
    super(message ?? resultText(result), options);
    this.result = result;
  }
}

/** The result code of any thrown value: SdError's own, else `fallback`. */
export function resultOf(err: unknown, fallback: number): number {
  return err instanceof SdError ? err.result : fallback;
}
