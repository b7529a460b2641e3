/**
 * Real sheep daemons and real dog invocations for integration tests.
 *
 * Every sheep runs in the foreground (`-f`) as a child of the test, bound to 127.0.0.1 on a free
 * port, and is stopped through its own handle. Output goes to `<dir>.log` beside its store
 * directory (and the last 4 MiB stay in memory: `logs()`).
 *
 * @module
 */

import { sheepdogCommand } from "./paths.ts";
import { freePort, isListening } from "./ports.ts";
import { ManagedProcess, run, type RunResult, sleep, waitUntil } from "./process.ts";
import { type TempDir, tempDir } from "./tempdir.ts";

const DEFAULT_READY_DEADLINE_MS = 30_000;
/** Default deadline of SheepProcess.waitListening(). */
const DEFAULT_LISTEN_DEADLINE_MS = 15_000;
const DEFAULT_DOG_DEADLINE_MS = 60_000;

/** Options of {@linkcode startSheep}. */
export interface StartSheepOptions {
  /** Store directory (created by sheep if missing); the last argument of the command line. */
  dir: string;
  /** TCP port; default: a free one. */
  port?: number;
  /** Failure zone (`-z`). */
  zone?: number;
  /** Cluster driver spec (`-c`), e.g. `local:/path` or `zookeeper:127.0.0.1:2181`. */
  cluster?: string;
  /** Bind address (`-b`); default 127.0.0.1. */
  bindAddr?: string;
  /** Pid file (`-P`). */
  pidFile?: string;
  /** More options, placed before DIR (e.g. `["-n"]`, `["-V", "64"]`). */
  extraArgs?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Where its stdout/stderr go; default `<dir>.log`. */
  logFile?: string;
}

/** A running sheep started by {@linkcode startSheep}. */
export class SheepProcess {
  readonly port: number;
  readonly dir: string;
  /** `127.0.0.1:PORT` */
  readonly addr: string;
  readonly logFile: string;
  readonly process: ManagedProcess;

  constructor(
    process: ManagedProcess,
    port: number,
    dir: string,
    bindAddr: string,
    logFile: string,
  ) {
    this.process = process;
    this.port = port;
    this.dir = dir;
    this.addr = `${bindAddr === "0.0.0.0" ? "127.0.0.1" : bindAddr}:${port}`;
    this.logFile = logFile;
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Resolves with its exit status once it has exited. */
  get exited(): Promise<Deno.CommandStatus> {
    return this.process.exited;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** Its output so far (stdout and stderr, last 4 MiB). */
  logs(): string {
    return this.process.logs();
  }

  /**
   * Waits until another port the sheep serves (its NBD listener) accepts connections on
   * 127.0.0.1. Throws (with the tail of its output) when it exits first or the deadline runs out.
   */
  async waitListening(port: number, deadlineMs = DEFAULT_LISTEN_DEADLINE_MS): Promise<void> {
    await waitUntil(
      async () => {
        if (!this.process.running) throw new Error(`sheep exited\n${this.logs().slice(-4000)}`);
        return await isListening(port);
      },
      deadlineMs,
      `sheep on port ${this.port}: port ${port} listening`,
    );
  }

  /**
   * Waits until a TCP connection to its port succeeds. Throws (with the tail of its output) when
   * it exits first or the deadline runs out.
   */
  async waitReady(deadlineMs = DEFAULT_READY_DEADLINE_MS): Promise<void> {
    const end = Date.now() + deadlineMs;
    const host = this.addr.slice(0, this.addr.lastIndexOf(":"));
    for (;;) {
      if (!this.process.running) {
        throw new Error(
          `sheep on port ${this.port} exited (${describe(this.process.status!)}) before it ` +
            `accepted connections\n--- output ---\n${this.process.logTail()}`,
        );
      }
      try {
        const c = await Deno.connect({ hostname: host, port: this.port });
        c.close();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() >= end) {
        throw new Error(
          `sheep on port ${this.port} not accepting connections after ${deadlineMs} ms\n` +
            `--- output ---\n${this.process.logTail()}`,
        );
      }
      await sleep(50);
    }
  }

  /** SIGTERM, wait up to `deadlineMs`, then SIGKILL. Idempotent. */
  stop(deadlineMs = 15_000): Promise<Deno.CommandStatus> {
    return this.process.stop(deadlineMs);
  }

  /** SIGKILL (a crash, as far as the cluster can tell). */
  kill(): Promise<Deno.CommandStatus> {
    return this.process.kill();
  }

  /** Sends any signal (e.g. SIGSTOP/SIGCONT to freeze it). */
  signal(sig: Deno.Signal): boolean {
    return this.process.signal(sig);
  }

  /** Runs dog against this sheep. */
  dog(args: string[], opts: Omit<DogOptions, "port"> = {}): Promise<DogResult> {
    return runDog(args, { ...opts, port: this.port });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function describe(s: Deno.CommandStatus): string {
  return s.signal ? `signal ${s.signal}` : `exit ${s.code}`;
}

/** The sheep command line that {@linkcode startSheep} runs (without the executable). */
export function sheepArgs(opts: StartSheepOptions & { port: number }): string[] {
  const args = ["sheep", "-f", "-p", String(opts.port), "-b", opts.bindAddr ?? "127.0.0.1"];
  if (opts.zone !== undefined) args.push("-z", String(opts.zone));
  if (opts.cluster !== undefined) args.push("-c", opts.cluster);
  if (opts.pidFile !== undefined) args.push("-P", opts.pidFile);
  args.push(...(opts.extraArgs ?? []), opts.dir);
  return args;
}

/** Starts one sheep in the foreground. Does not wait for it: call `waitReady()`. */
export function startSheep(opts: StartSheepOptions): SheepProcess {
  const port = opts.port ?? freePort();
  const logFile = opts.logFile ?? `${opts.dir.replace(/\/+$/, "")}.log`;
  const argv = [...sheepdogCommand(), ...sheepArgs({ ...opts, port })];
  const p = new ManagedProcess(argv, { env: opts.env, logFile });
  return new SheepProcess(p, port, opts.dir, opts.bindAddr ?? "127.0.0.1", logFile);
}

/** Options of {@linkcode runDog}. */
export interface DogOptions {
  /** Port of the sheep to talk to (`-p`). */
  port: number;
  /** Address (`-a`); dog's default when omitted. */
  addr?: string;
  /** Bytes for dog's stdin (e.g. `vdi write`). */
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  /** Default 60 s. */
  deadlineMs?: number;
}

/** What a dog run left: exit code, raw stdout and both outputs as text. */
export type DogResult = RunResult;

/** Runs `sheepdog dog ARGS… -p PORT [-a ADDR]` with a deadline. Never throws for a failing dog. */
export function runDog(args: string[], opts: DogOptions): Promise<DogResult> {
  const [cmd, ...pre] = sheepdogCommand();
  const target = ["-p", String(opts.port)];
  if (opts.addr !== undefined) target.push("-a", opts.addr);
  return run(cmd, [...pre, "dog", ...args, ...target], {
    stdin: opts.stdin,
    env: opts.env,
    deadlineMs: opts.deadlineMs ?? DEFAULT_DOG_DEADLINE_MS,
  });
}

/** Like {@linkcode runDog}, but throws with dog's output unless it exits 0. */
export async function runDogOk(args: string[], opts: DogOptions): Promise<DogResult> {
  const r = await runDog(args, opts);
  if (!r.success) {
    throw new Error(
      `dog ${args.join(" ")} (port ${opts.port}) ${
        r.timedOut ? "timed out" : `exited ${r.code}`
      }\n--- stderr ---\n${r.stderrText}--- stdout ---\n${r.stdoutText.slice(0, 4096)}`,
    );
  }
  return r;
}

/**
 * Environment variable holding the `-c` template {@linkcode startCluster} uses by default, e.g.
 * `corosync:{id}` or `zookeeper:127.0.0.1:2181/{id},timeout=2000` (unset: the local driver).
 */
export const CLUSTER_ENV = "SHEEPDOG_TEST_CLUSTER";

/** The local driver on a path inside the cluster's scratch directory. */
export const LOCAL_TEMPLATE = "local:{root}/cluster";

let clusterIds = 0;

/**
 * The `-c` spec of one cluster from a template: `{root}` becomes the cluster's scratch directory
 * and `{id}` an id unique to this cluster (so clusters of one test run, or of two runs sharing a
 * corosync or a ZooKeeper, never meet: a CPG group name, a ZooKeeper cluster id).
 */
export function expandClusterSpec(template: string, root: string): string {
  const id = `t${Deno.pid.toString(36)}x${(++clusterIds).toString(36)}` +
    Math.floor(Math.random() * 36 ** 3).toString(36);
  return template.replaceAll("{root}", root.replace(/\/+$/, "")).replaceAll("{id}", id);
}

/** `$SHEEPDOG_TEST_CLUSTER`, else the local driver ({@linkcode LOCAL_TEMPLATE}). */
export function defaultClusterTemplate(): string {
  return Deno.env.get(CLUSTER_ENV) || LOCAL_TEMPLATE;
}

/** Options of {@linkcode startCluster}. */
export interface StartClusterOptions {
  /** Format the cluster with `dog cluster format -c COPIES` once every sheep is up. */
  copies?: number;
  /** Zone of each sheep; default 0..n-1. */
  zones?: number[];
  /** Path for the local driver (`-c local:PATH`); default `<root>/cluster`. */
  driverPath?: string;
  /** Full `-c` spec instead of the local driver (e.g. a ZooKeeper address). */
  cluster?: string;
  /**
   * A `-c` template (see {@linkcode expandClusterSpec}: `{root}` and `{id}` are replaced), used
   * when `cluster` is not given. Default: {@linkcode defaultClusterTemplate}.
   */
  clusterTemplate?: string;
  /** Ports; default free ones. */
  ports?: number[];
  /** Options added to every sheep. */
  extraArgs?: string[];
  /** More options for sheep i only (after `extraArgs`), e.g. `[["-V", "64"], ["-V", "256"]]`. */
  nodeArgs?: string[][];
  env?: Record<string, string>;
  /** Per-sheep readiness deadline; default 30 s. */
  readyDeadlineMs?: number;
  /** Runs before any sheep starts, once per store directory (e.g. to seed `DIR/config`). */
  prepare?: (dir: string, index: number) => void | Promise<void>;
}

/** n sheep started by {@linkcode startCluster}; `stopAll()` (or `await using`) ends them. */
export interface Cluster {
  readonly sheep: SheepProcess[];
  readonly ports: number[];
  /** Scratch directory holding `sheepN/` stores, their `sheepN.log`, and the driver path. */
  readonly root: string;
  /** The `-c` spec every sheep got. */
  readonly clusterSpec: string;
  /** Runs dog against sheep `node` (default 0). */
  dog(args: string[], opts?: Omit<DogOptions, "port"> & { node?: number }): Promise<DogResult>;
  /** Starts one more sheep on the same driver (zone = index unless given). */
  addSheep(opts?: Partial<StartSheepOptions>): Promise<SheepProcess>;
  /** Stops every sheep (SIGTERM, then SIGKILL after the deadline) and removes the scratch dir. */
  stopAll(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts n sheep at once (zones 0..n-1, by default on one private local-driver path; see
 * `clusterTemplate` and {@linkcode CLUSTER_ENV} for the other drivers), waits until every one
 * accepts connections, and formats the cluster when `copies` is given. On any failure it stops
 * what it started before rethrowing.
 */
export async function startCluster(n: number, opts: StartClusterOptions = {}): Promise<Cluster> {
  const tmp: TempDir = await tempDir("cluster");
  const root = tmp.path;
  const spec = opts.cluster ??
    (opts.driverPath !== undefined
      ? `local:${opts.driverPath}`
      : expandClusterSpec(opts.clusterTemplate ?? defaultClusterTemplate(), root));
  const sheep: SheepProcess[] = [];
  const ports: number[] = [];

  const start = (i: number, extra: Partial<StartSheepOptions> = {}): SheepProcess => {
    const s = startSheep({
      dir: `${root}/sheep${i}`,
      port: opts.ports?.[i],
      zone: opts.zones?.[i] ?? i,
      cluster: spec,
      extraArgs: [...(opts.extraArgs ?? []), ...(opts.nodeArgs?.[i] ?? [])],
      env: opts.env,
      ...extra,
    });
    sheep.push(s);
    ports.push(s.port);
    return s;
  };

  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(sheep.map((s) => s.stop()));
    await tmp.cleanup();
  };

  try {
    if (opts.prepare) {
      for (let i = 0; i < n; i++) {
        await Deno.mkdir(`${root}/sheep${i}`, { recursive: true });
        await opts.prepare(`${root}/sheep${i}`, i);
      }
    }
    for (let i = 0; i < n; i++) start(i);
    await Promise.all(sheep.map((s) => s.waitReady(opts.readyDeadlineMs)));
    if (opts.copies !== undefined) {
      await runDogOk(["cluster", "format", "-c", String(opts.copies)], { port: ports[0] });
    }
  } catch (e) {
    await stopAll();
    throw e;
  }

  return {
    sheep,
    ports,
    root,
    clusterSpec: spec,
    dog: (args, o = {}) => runDog(args, { ...o, port: ports[o.node ?? 0] }),
    addSheep: async (extra = {}) => {
      const s = start(sheep.length, extra);
      await s.waitReady(opts.readyDeadlineMs);
      return s;
    },
    stopAll,
    [Symbol.asyncDispose]: stopAll,
  };
}
