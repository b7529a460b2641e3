/**
 * Turns failures of file system calls into SdErrors with the result code a sheep replies with, so
 * that callers never match on errno strings.
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

/** The errno name (`ENOENT`, …) of a failed `node:fs` call, or undefined. */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The SdError for a failed file system call on an object: ENOENT → NO_OBJ, ENOSPC/EDQUOT →
 * NO_SPACE, anything else → EIO. SdErrors pass through unchanged.
 */
export function ioError(err: unknown, what: string): SdError {
  if (err instanceof SdError) return err;
  const code = errnoOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === "ENOENT") return new SdError(Res.NO_OBJ, `${what}: no such object`, { cause: err });
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new SdError(Res.NO_SPACE, `${what}: ${detail}`, { cause: err });
  }
  return new SdError(Res.EIO, `${what}: ${detail}`, { cause: err });
}

/**
 * The SdError for a failed file system call on the store itself (directories, metadata files):
 * ENOSPC/EDQUOT → NO_SPACE, anything else → EIO. SdErrors pass through unchanged.
 */
export function storeError(err: unknown, what: string): SdError {
  if (err instanceof SdError) return err;
  const code = errnoOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  const result = code === "ENOSPC" || code === "EDQUOT" ? Res.NO_SPACE : Res.EIO;
  return new SdError(result, `${what}: ${detail}`, { cause: err });
}

/**
 * Runs `cleanup` after `err` and returns the error to throw: `err` itself when the cleanup
 * succeeds, otherwise an SdError with the same result carrying both, so neither is lost.
 */
export async function afterCleanup(
  err: SdError,
  cleanup: () => Promise<void>,
): Promise<SdError> {
  try {
    await cleanup();
    return err;
  } catch (cleanupErr) {
    const detail = cleanupErr instanceof Error ? cleanupErr.message : String(cleanupErr);
    return new SdError(err.result, `${err.message}; cleanup failed too: ${detail}`, {
      cause: new AggregateError([err, cleanupErr]),
    });
  }
}
