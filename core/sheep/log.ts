/**
 * The sheep's log: v1.0's numeric levels (0 emerg … 7 debug, default 6 info) over LogTape
 * structured records, written to DIR/sheep.log (or stdout) as text or JSON lines. The level can be
 * changed at run time (SET_LOGLEVEL) through the filter, which reads the live level.
 *
 * @module
 */

import {
  configure,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";

/** v1.0's log level names, index = level number. */
export const LOG_LEVEL_NAMES = [
  "emerg",
  "alert",
  "crit",
  "err",
  "warning",
  "notice",
  "info",
  "debug",
] as const;

/** Default level: info. */
export const DEFAULT_LOG_LEVEL = 6;

/** Properties attached to a log record. */
export type LogProps = Record<string, unknown>;

/** A leveled logger. */
export interface SheepLog {
  /** Current level, 0-7. */
  level: number;
  error(msg: string, props?: LogProps): void;
  warn(msg: string, props?: LogProps): void;
  notice(msg: string, props?: LogProps): void;
  info(msg: string, props?: LogProps): void;
  debug(msg: string, props?: LogProps): void;
}

/** Where and how to log (`sheep -l level=…,dir=…,format=…,dst=…`). */
export interface LogOptions {
  level: number;
  dir: string;
  format: "default" | "server" | "json";
  dst: "default" | "stdout";
}

/** The level number of a name or number text, or null when it is neither. */
export function parseLogLevel(text: string): number | null {
  if (/^[0-7]$/.test(text)) return Number(text);
  const i = (LOG_LEVEL_NAMES as readonly string[]).indexOf(text);
  return i >= 0 ? i : null;
}

class Leveled implements SheepLog {
  level: number;
  readonly #emit: (lvl: number, msg: string, props: LogProps) => void;
  constructor(level: number, emit: (lvl: number, msg: string, props: LogProps) => void) {
    this.level = level;
    this.#emit = emit;
  }
  #log(lvl: number, msg: string, props: LogProps = {}): void {
    if (lvl <= this.level) this.#emit(lvl, msg, props);
  }
  error(msg: string, props?: LogProps): void {
    this.#log(3, msg, props);
  }
  warn(msg: string, props?: LogProps): void {
    this.#log(4, msg, props);
  }
  notice(msg: string, props?: LogProps): void {
    this.#log(5, msg, props);
  }
  info(msg: string, props?: LogProps): void {
    this.#log(6, msg, props);
  }
  debug(msg: string, props?: LogProps): void {
    this.#log(7, msg, props);
  }
}

/** A log that keeps lines in memory (unit tests, simulation). */
export function memoryLog(level = DEFAULT_LOG_LEVEL): SheepLog & { lines: string[] } {
  const lines: string[] = [];
  const log = new Leveled(level, (lvl, msg, props) => {
    const extra = Object.keys(props).length ? " " + JSON.stringify(props, bigintSafe) : "";
    lines.push(`${LOG_LEVEL_NAMES[lvl]} ${msg}${extra}`);
  });
  return Object.assign(log, { lines });
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

/**
 * Configures LogTape for the daemon process and returns its log. Called once at daemon start
 * (LogTape's configuration is per process).
 */
export async function openDaemonLog(opts: LogOptions): Promise<SheepLog & { close(): void }> {
  const formatter = opts.format === "json"
    ? getJsonLinesFormatter()
    : getTextFormatter({ timestamp: "date-time-timezone", category: "." });
  let file: Deno.FsFile | null = null;
  const enc = new TextEncoder();
  let sink: Sink;
  if (opts.dst === "stdout") {
    sink = (r: LogRecord) => {
      Deno.stdout.writeSync(enc.encode(formatter(r)));
    };
  } else {
    await Deno.mkdir(opts.dir, { recursive: true });
    file = await Deno.open(`${opts.dir}/sheep.log`, { append: true, create: true });
    const f = file;
    sink = (r: LogRecord) => {
      f.writeSync(enc.encode(formatter(r)));
    };
  }
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["sheep"], lowestLevel: "debug", sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
  const logger = getLogger(["sheep"]);
  const log = new Leveled(opts.level, (lvl, msg, props) => {
    const p = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v]),
    );
    // LogTape reads braces as placeholders: escape them. Text logs carry the properties inline,
    // JSON lines carry them as fields.
    const text = opts.format !== "json" && Object.keys(p).length
      ? `${msg} ${JSON.stringify(p)}`
      : msg;
    const tmpl = text.replaceAll("{", "{{").replaceAll("}", "}}");
    if (lvl <= 3) logger.error(tmpl, p);
    else if (lvl === 4) logger.warn(tmpl, p);
    else if (lvl <= 6) logger.info(tmpl, p);
    else logger.debug(tmpl, p);
  });
  return Object.assign(log, {
    close(): void {
      file?.close();
      file = null;
    },
  });
}
