/**
 * dog's exit codes (v1.0's EXIT_*) and the error that carries one. Commands throw DogError with
 * the lines v1.0 prints; the entry point prints them and returns the code.
 *
 * @module
 */

import { Res } from "../../core/proto/constants.ts";
import { SdError } from "../../core/proto/sd_error.ts";

/** Exit codes of v1.0 dog. */
export const Exit = {
  SUCCESS: 0,
  FAILURE: 1,
  /** System or cluster failure, including "cannot connect". */
  SYSFAIL: 2,
  EXISTS: 3,
  FULL: 4,
  MISSING: 5,
  USAGE: 64,
  /** What `return -1` from a command becomes (some node subcommands). */
  MINUS_ONE: 255,
} as const;

/** A failure with the exit code dog ends with and the lines it prints on stderr. */
export class DogError extends SdError {
  override name = "DogError";
  /** The process exit code. */
  readonly exitCode: number;
  /** Lines printed on stderr (may be empty when they were printed already). */
  readonly lines: readonly string[];
  /** When true the subcommand's usage follows the lines. */
  readonly showUsage: boolean;

  constructor(
    exitCode: number,
    lines: readonly string[],
    opts: { result?: number; showUsage?: boolean; cause?: unknown } = {},
  ) {
    super(opts.result ?? resultForExit(exitCode), lines.join("\n") || `exit ${exitCode}`, {
      cause: opts.cause,
    });
    this.exitCode = exitCode;
    this.lines = lines;
    this.showUsage = opts.showUsage ?? false;
  }
}

function resultForExit(code: number): number {
  switch (code) {
    case Exit.EXISTS:
      return Res.VDI_EXIST;
    case Exit.MISSING:
      return Res.NO_VDI;
    case Exit.USAGE:
      return Res.INVALID_PARMS;
    case Exit.SYSFAIL:
      return Res.SYSTEM_ERROR;
    default:
      return Res.UNKNOWN;
  }
}

/** A usage error: the lines, then the subcommand usage, exit 64. */
export function usageError(...lines: string[]): DogError {
  return new DogError(Exit.USAGE, lines, { showUsage: true });
}

/** A failure whose message is already on stderr (v1.0 printed it where it happened). */
export class ReportedError extends SdError {
  override name = "ReportedError";
}
