/**
 * Child processes for integration tests: one-shot commands with a deadline (`run`), and
 * long-running processes (`spawnManaged`) whose output is captured and which are always stopped by
 * their own handle, never by name. A handle keeps its pid reserved until Deno reaps the child, so
 * signalling it can never hit an unrelated process that reused the pid.
 *
 * @module
 */

const DEFAULT_RUN_DEADLINE_MS = 60_000;
const DEFAULT_STOP_DEADLINE_MS = 10_000;
/** How long to wait for a dead child's pipes to drain (a grandchild may hold them open). */
const PIPE_DRAIN_MS = 2_000;
/** Output kept in memory per managed process (the tail; the log file has everything). */
const LOG_TAIL_BYTES = 4 * 1024 * 1024;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Races `p` against a timer: resolves to `{ ok: true, value }`, or `{ ok: false }` after `ms`.
 * The timer is always cleared, so no test leaks it.
 */
export async function withDeadline<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ ok: true; value: T } | { ok: false }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<{ ok: false }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false }), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ ok: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `intervalMs` until it returns true; throws `what` after `deadlineMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  deadlineMs: number,
  what: string,
  intervalMs = 50,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Kill the command (SIGKILL) when it has not exited after this long. Default 60 s. */
  deadlineMs?: number;
  /** Bytes (or text) written to its stdin, which is then closed. Default: no stdin (/dev/null). */
  stdin?: Uint8Array | string;
  /** Extra environment variables (added to this process's environment). */
  env?: Record<string, string>;
  cwd?: string;
}

/** What a finished command left. */
export interface RunResult {
  /** Exit code; 128+signal when killed by a signal (as a shell reports it). */
  code: number;
  signal: Deno.Signal | null;
  success: boolean;
  /** True when the deadline ran out and the command was killed. */
  timedOut: boolean;
  stdout: Uint8Array;
  stderr: Uint8Array;
  stdoutText: string;
  stderrText: string;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Reads a stream to its end, handing every chunk to `sink`; resolves when it ends or fails. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  sink: (chunk: Uint8Array) => void,
): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      sink(value);
    }
  } catch {
    // The stream was cancelled after its process died: the output so far is what we have.
  } finally {
    reader.releaseLock();
  }
}

/** Waits for pipe readers to finish, bounded; cancels what is still open after the bound. */
async function drain(
  readers: Promise<void>[],
  streams: ReadableStream<Uint8Array>[],
): Promise<void> {
  const all = Promise.all(readers);
  const r = await withDeadline(all, PIPE_DRAIN_MS);
  if (!r.ok) {
    for (const s of streams) await s.cancel().catch(() => {});
    await all;
  }
}

function spawnError(cmd: string, e: unknown): Error {
  if (e instanceof Deno.errors.NotFound) return new Error(`cannot run ${cmd}: command not found`);
  return new Error(`cannot run ${cmd}: ${e instanceof Error ? e.message : String(e)}`);
}

function exitCode(status: Deno.CommandStatus): number {
  if (status.signal === null) return status.code;
  return status.code !== 0 ? status.code : 128 + signalNumber(status.signal);
}

function signalNumber(sig: Deno.Signal): number {
  const n: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return n[sig] ?? 0;
}

/**
 * Runs `cmd args` to completion with a deadline and returns its exit status and output. It never
 * throws for a failing or timed-out command (see {@linkcode runOk}); only when it cannot start.
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const deadlineMs = opts.deadlineMs ?? DEFAULT_RUN_DEADLINE_MS;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: opts.env,
      cwd: opts.cwd,
    }).spawn();
  } catch (e) {
    throw spawnError(cmd, e);
  }
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const readers = [pump(child.stdout, (c) => out.push(c)), pump(child.stderr, (c) => err.push(c))];
  const writer = opts.stdin === undefined ? Promise.resolve() : feed(child, opts.stdin);

  let timedOut = false;
  const r = await withDeadline(child.status, deadlineMs);
  let status: Deno.CommandStatus;
  if (r.ok) {
    status = r.value;
  } else {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // It exited between the deadline and the kill.
    }
    status = await child.status;
  }
  await writer;
  await drain(readers, [child.stdout, child.stderr]);
  const stdout = concat(out);
  const stderr = concat(err);
  const dec = new TextDecoder();
  return {
    code: exitCode(status),
    signal: status.signal,
    success: status.success && !timedOut,
    timedOut,
    stdout,
    stderr,
    stdoutText: dec.decode(stdout),
    stderrText: dec.decode(stderr),
  };
}

async function feed(child: Deno.ChildProcess, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const w = child.stdin.getWriter();
  try {
    await w.write(bytes);
    await w.close();
  } catch {
    // The command exited without reading all of its input (EPIPE): its status tells the rest.
    await w.abort().catch(() => {});
  }
}

/** Like {@linkcode run}, but throws (with the command's stderr) unless it exits 0 in time. */
export async function runOk(
  cmd: string,
  args: string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (!r.success) {
    const why = r.timedOut
      ? `did not finish within ${opts.deadlineMs ?? DEFAULT_RUN_DEADLINE_MS} ms`
      : `exited ${r.code}`;
    throw new Error(
      `${cmd} ${args.join(" ")} ${why}\n--- stderr ---\n${r.stderrText}--- stdout ---\n${
        r.stdoutText.slice(0, 4096)
      }`,
    );
  }
  return r;
}

/** Options of {@linkcode spawnManaged}. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Append stdout and stderr here too (the in-memory log keeps only the tail). */
  logFile?: string;
}

/** Every managed process of this isolate that has not been reaped yet. */
const live = new Set<ManagedProcess>();

/**
 * A long-running child process whose stdout and stderr are captured (interleaved, as received).
 * Stop it with {@linkcode ManagedProcess.stop} in a `finally`.
 */
export class ManagedProcess {
  /** Pid of the process (reserved for it until it is reaped). */
  readonly pid: number;
  /** The command line, for messages. */
  readonly argv: readonly string[];
  /** Resolves with the exit status once the process has exited and been reaped. */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #readers: Promise<void>[];
  #log: Uint8Array[] = [];
  #logBytes = 0;
  #file: Deno.FsFile | null;
  #status: Deno.CommandStatus | null = null;

  constructor(argv: string[], opts: SpawnOptions = {}) {
    this.argv = argv;
    try {
      this.#child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: opts.env,
        cwd: opts.cwd,
      }).spawn();
    } catch (e) {
      throw spawnError(argv[0], e);
    }
    this.pid = this.#child.pid;
    this.#file = opts.logFile
      ? Deno.openSync(opts.logFile, { write: true, create: true, append: true })
      : null;
    const sink = (c: Uint8Array) => this.#append(c);
    this.#readers = [pump(this.#child.stdout, sink), pump(this.#child.stderr, sink)];
    live.add(this);
    this.exited = this.#child.status.then((s) => {
      this.#status = s;
      live.delete(this);
      return s;
    });
  }

  #append(c: Uint8Array): void {
    this.#log.push(c);
    this.#logBytes += c.length;
    while (this.#logBytes > LOG_TAIL_BYTES && this.#log.length > 1) {
      this.#logBytes -= this.#log.shift()!.length;
    }
    try {
      this.#file?.writeSync(c);
    } catch {
      // A full disk must not kill the test runner: the in-memory tail still has the output.
    }
  }

  /** The exit status, or null while it runs. */
  get status(): Deno.CommandStatus | null {
    return this.#status;
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#status === null;
  }

  /** What it printed so far (stdout and stderr interleaved; the last 4 MiB). */
  logs(): string {
    return new TextDecoder().decode(concat(this.#log));
  }

  /** The last `lines` lines of {@linkcode logs}. */
  logTail(lines = 40): string {
    return this.logs().split("\n").slice(-lines - 1).join("\n");
  }

  /** Sends a signal if it still runs; returns whether it was sent. */
  signal(sig: Deno.Signal): boolean {
    if (this.#status !== null) return false;
    try {
      this.#child.kill(sig);
      return true;
    } catch {
      return false; // exited in the meantime
    }
  }

  /** SIGKILL now, then waits for it to be reaped. */
  async kill(): Promise<Deno.CommandStatus> {
    this.signal("SIGKILL");
    const s = await this.exited;
    await this.#close();
    return s;
  }

  /**
   * Graceful stop: SIGTERM (or `sig`), wait up to `deadlineMs`, then SIGKILL. Idempotent; also
   * fine on a process that already exited.
   */
  async stop(
    deadlineMs = DEFAULT_STOP_DEADLINE_MS,
    sig: Deno.Signal = "SIGTERM",
  ): Promise<Deno.CommandStatus> {
    if (this.signal(sig)) {
      const r = await withDeadline(this.exited, deadlineMs);
      if (!r.ok) this.signal("SIGKILL");
    }
    const s = await this.exited;
    await this.#close();
    return s;
  }

  async #close(): Promise<void> {
    await drain(this.#readers, [this.#child.stdout, this.#child.stderr]);
    if (this.#file) {
      const f = this.#file;
      this.#file = null;
      f.close();
    }
  }

  /** `await using p = spawnManaged(…)` stops it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts a managed long-running process (see {@linkcode ManagedProcess}). */
export function spawnManaged(argv: string[], opts: SpawnOptions = {}): ManagedProcess {
  return new ManagedProcess(argv, opts);
}

/** Pids of the managed processes of this isolate that still run (for leak checks). */
export function liveManagedPids(): number[] {
  return [...live].map((p) => p.pid);
}

// Last resort when a test module ends with processes still running (a test forgot its finally,
// or the runner is shutting down): kill them by their own pids, which are still reserved.
globalThis.addEventListener("unload", () => {
  for (const p of live) p.signal("SIGKILL");
});
