/**
 * What a simulation run remembers to explain a failure: its coarse events (membership changes,
 * client outcomes, checks) and the recent log lines of every sheep, all stamped with virtual time.
 * Both are bounded; the events also feed the clock's trace hash.
 *
 * @module
 */

import { LOG_LEVEL_NAMES, type LogProps, type SheepLog } from "../sheep/log.ts";
import type { SimClock } from "./sim_clock.ts";

/** Events kept for the report. */
export const MAX_TRACE_EVENTS = 400;
/** Sheep log lines kept for the report. */
export const MAX_TRACE_LOG_LINES = 300;

/** What sendReleases logs for a release it could not deliver (the object is kept). */
export const UNRELEASED_MESSAGE = "cannot release a reference; the object is kept";

/** The trace of one run. */
export class SimTrace {
  readonly #clock: SimClock;
  readonly #logLevel: number;
  readonly #startMs: number;
  readonly events: string[] = [];
  readonly logLines: string[] = [];
  /**
   * Ledgers whose release a sheep gave up after its connection broke (it keeps the object: a
   * leak by design, see core/sheep/ledger.ts sendReleases and Gateway.eachReplicaOnce), as
   * oidToString() gives them: the checks allow their objects to remain after a deletion.
   */
  readonly unreleased = new Set<string>();
  #dropped = 0;

  /** `logLevel`: the sheep's log level (6 info, 7 debug). */
  constructor(clock: SimClock, logLevel: number) {
    this.#clock = clock;
    this.#logLevel = logLevel;
    this.#startMs = clock.now();
  }

  #stamp(): string {
    return `t=${((this.#clock.now() - this.#startMs) / 1000).toFixed(3)}`;
  }

  /** Records a coarse event (also mixed into the trace hash). */
  event(text: string): void {
    this.#clock.note(text);
    this.events.push(`${this.#stamp()} ${text}`);
    if (this.events.length > MAX_TRACE_EVENTS) {
      this.events.shift();
      this.#dropped++;
    }
  }

  /** A sheep log writing into this trace while `alive()` (a dead process logs nothing). */
  logFor(name: string, alive: () => boolean): SheepLog {
    const write = (lvl: number, msg: string, props?: LogProps) => {
      if (!alive()) return;
      // Only a release that may have been applied (its reply lost) may be skipped: one whose
      // connection was refused was never sent and must be retried instead.
      if (
        msg === UNRELEASED_MESSAGE && typeof props?.ledger === "string" &&
        !String(props.error).includes("connection refused")
      ) {
        this.unreleased.add(props.ledger);
      }
      if (lvl > this.#logLevel) return;
      const extra = props && Object.keys(props).length
        ? " " + JSON.stringify(props, (_k, v) => typeof v === "bigint" ? v.toString() : v)
        : "";
      this.logLines.push(`${this.#stamp()} ${name} ${LOG_LEVEL_NAMES[lvl]} ${msg}${extra}`);
      if (this.logLines.length > MAX_TRACE_LOG_LINES) this.logLines.shift();
    };
    return {
      level: this.#logLevel,
      error: (m, p) => write(3, m, p),
      warn: (m, p) => write(4, m, p),
      notice: (m, p) => write(5, m, p),
      info: (m, p) => write(6, m, p),
      debug: (m, p) => write(7, m, p),
    };
  }

  /** The report: the last events, then the last log lines. */
  format(maxEvents = 60, maxLines = 60): string {
    const ev = this.events.slice(-maxEvents);
    const lines = this.logLines.slice(-maxLines);
    const head = this.#dropped > 0 || this.events.length > ev.length
      ? `(${this.#dropped + this.events.length - ev.length} earlier events not shown)\n`
      : "";
    return `${head}events:\n  ${ev.join("\n  ")}\nlast sheep log lines:\n  ${lines.join("\n  ")}`;
  }
}
