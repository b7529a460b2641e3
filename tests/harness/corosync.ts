/**
 * Private corosync instances for tests, each in network namespaces the test creates (root needed).
 *
 * Why namespaces even for one node: corosync's client IPC endpoints are abstract UNIX sockets with
 * fixed names and it binds a fixed UDP port, so two instances (two test files, two test runs) on
 * one network namespace would collide. In its own namespace each instance is private, and the
 * sheep and driver processes that should talk to it run there too (`wrap(argv)`: `ip netns exec`
 * execs the command, so its pid is the process's own and is what we stop).
 *
 * - `startCorosync()` — one node on the namespace's loopback (127.0.0.1).
 * - `startCorosync({ nodes: 3 })` — a real three-node ring: one namespace per node, veth pairs to
 *   a bridge in one more namespace, addresses 10.99.0.1-3/24 that exist only inside them;
 *   `partition(i)` / `heal(i)` take node i's link down and up on the bridge side.
 *
 * Each corosync runs as `unshare -m` with a private /run (its lock file is the hard-coded
 * /var/run/corosync.pid) and its own state_dir. A corosync killed with SIGKILL leaves
 * /dev/shm/qb-* files: those named with its pid are removed after it exits. Everything is
 * bounded by deadlines and stopped by pid; `stop()` removes the namespaces.
 *
 * @module
 */

import { ManagedProcess, run, runOk, sleep } from "./process.ts";
import { type TempDir, tempDir } from "./tempdir.ts";

const READY_DEADLINE_MS = 30_000;
const STOP_DEADLINE_MS = 10_000;

/** Options of {@linkcode startCorosync}. */
export interface CorosyncOptions {
  /** Number of corosync nodes (default 1, on loopback). */
  nodes?: number;
  /** totem token timeout in ms (default 1000: partitions are seen within a few seconds). */
  tokenMs?: number;
  /**
   * Run the (single) node in the caller's own network namespace instead of a new one: for a
   * test process that already runs in a private namespace (see netns.ts).
   */
  here?: boolean;
}

/** One corosync node: its namespace, address and process. */
export interface CorosyncNode {
  readonly index: number;
  readonly nodeid: number;
  readonly ns: string;
  /** The address sheep on this node bind to. */
  readonly addr: string;
  readonly conf: string;
  process: ManagedProcess | null;
}

/** True when this machine lets the tests create network namespaces (root, iproute2). */
export async function canUseNetns(): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const r = await run("ip", ["netns", "list"], { deadlineMs: 10_000 }).catch(() => null);
  return r !== null && r.success;
}

function uniq(): string {
  return `${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

function conf(opts: {
  name: string;
  stateDir: string;
  addrs: string[];
  tokenMs: number;
}): string {
  const nodes = opts.addrs.map((a, i) =>
    [
      "    node {",
      `        ring0_addr: ${a}`,
      `        nodeid: ${i + 1}`,
      "    }",
    ].join("\n")
  ).join("\n");
  return [
    "totem {",
    "    version: 2",
    `    cluster_name: ${opts.name}`,
    "    transport: knet",
    "    crypto_cipher: none",
    "    crypto_hash: none",
    `    token: ${opts.tokenMs}`,
    "}",
    "nodelist {",
    nodes,
    "}",
    "quorum {",
    "    provider: corosync_votequorum",
    "}",
    "logging {",
    "    to_stderr: yes",
    "    to_syslog: no",
    "    to_logfile: no",
    "    timestamp: on",
    "}",
    "system {",
    `    state_dir: ${opts.stateDir}`,
    "}",
    "",
  ].join("\n");
}

/** One or more private corosync nodes; see the module doc. */
export class Corosync {
  readonly nodes: CorosyncNode[];
  readonly dir: TempDir;
  readonly #bridgeNs: string | null;
  readonly #namespaces: string[];
  #stopped = false;

  private constructor(
    nodes: CorosyncNode[],
    dir: TempDir,
    bridgeNs: string | null,
    namespaces: string[],
  ) {
    this.nodes = nodes;
    this.dir = dir;
    this.#bridgeNs = bridgeNs;
    this.#namespaces = namespaces;
  }

  /** Creates the namespaces and starts every node; resolves once the ring has all of them. */
  static async start(opts: CorosyncOptions = {}): Promise<Corosync> {
    const n = opts.nodes ?? 1;
    const id = uniq();
    const dir = await tempDir("corosync");
    const namespaces: string[] = [];
    const nodes: CorosyncNode[] = [];
    const bridgeNs = n > 1 ? `sdcs${id}br` : null;
    const c = new Corosync(nodes, dir, bridgeNs, namespaces);
    try {
      const ip = (args: string[]) => runOk("ip", args, { deadlineMs: 10_000 });
      if (bridgeNs !== null) {
        await ip(["netns", "add", bridgeNs]);
        namespaces.push(bridgeNs);
        await ip(["-n", bridgeNs, "link", "add", "br0", "type", "bridge"]);
        await ip(["-n", bridgeNs, "link", "set", "br0", "up"]);
      }
      const addrs = Array.from({ length: n }, (_, i) => n === 1 ? "127.0.0.1" : `10.99.0.${i + 1}`);
      if (opts.here && n !== 1) {
        throw new Error("only a single node runs in the caller's namespace");
      }
      for (let i = 0; i < n; i++) {
        const ns = opts.here ? "" : `sdcs${id}n${i + 1}`;
        if (!opts.here) {
          await ip(["netns", "add", ns]);
          namespaces.push(ns);
          await ip(["-n", ns, "link", "set", "lo", "up"]);
        }
        if (bridgeNs !== null) {
          await ip([
            "-n",
            bridgeNs,
            "link",
            "add",
            `b${i + 1}`,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
          ]);
          await ip(["-n", bridgeNs, "link", "set", `b${i + 1}`, "master", "br0"]);
          await ip(["-n", bridgeNs, "link", "set", `b${i + 1}`, "up"]);
          await ip(["-n", ns, "addr", "add", `${addrs[i]}/24`, "dev", "eth0"]);
          await ip(["-n", ns, "link", "set", "eth0", "up"]);
        }
        const stateDir = `${dir.path}/state${i + 1}`;
        await Deno.mkdir(stateDir, { recursive: true });
        const confPath = `${dir.path}/corosync${i + 1}.conf`;
        await Deno.writeTextFile(
          confPath,
          conf({ name: `sd${id}`, stateDir, addrs, tokenMs: opts.tokenMs ?? 1000 }),
        );
        nodes.push({ index: i, nodeid: i + 1, ns, addr: addrs[i], conf: confPath, process: null });
      }
      for (let i = 0; i < n; i++) c.startNode(i);
      await c.waitMembers(n);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  /** `argv` run inside node i's namespace. */
  wrap(argv: string[], i = 0): string[] {
    return [...this.prefix(i), ...argv];
  }

  /** The command prefix that runs a command inside node i's namespace (none for `here`). */
  prefix(i = 0): string[] {
    const ns = this.nodes[i].ns;
    return ns === "" ? [] : ["ip", "netns", "exec", ns];
  }

  /** Starts node i's corosync (again). Does not wait: see waitMembers(). */
  startNode(i: number): void {
    const node = this.nodes[i];
    if (node.process?.running) throw new Error(`corosync ${i + 1} is running`);
    node.process = new ManagedProcess(
      [
        ...this.prefix(i),
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs tmpfs /run && exec corosync -f -c "$0"',
        node.conf,
      ],
      { logFile: `${this.dir.path}/corosync${i + 1}.log` },
    );
  }

  /** Waits until every running node's corosync sees `n` nodes (and answers its tools). */
  async waitMembers(n: number, deadlineMs = READY_DEADLINE_MS): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (const [i, node] of this.nodes.entries()) {
      if (!node.process?.running) continue;
      for (;;) {
        if (!node.process.running) {
          throw new Error(`corosync ${i + 1} exited:\n${node.process.logTail()}`);
        }
        const [cmd, ...args] = this.wrap(["corosync-quorumtool", "-s"], i);
        const r = await run(cmd, args, { deadlineMs: 5000 });
        const m = /^Nodes:\s+(\d+)/m.exec(r.stdoutText);
        if (m && Number(m[1]) === n) break;
        if (Date.now() > end) {
          throw new Error(
            `corosync ${i + 1} does not see ${n} nodes after ${deadlineMs} ms:\n${r.stdoutText}` +
              `${r.stderrText}\n${node.process.logTail()}`,
          );
        }
        await sleep(100);
      }
    }
  }

  /** SIGKILL node i's corosync, then removes the /dev/shm files it left. */
  async killNode(i: number): Promise<void> {
    const p = this.nodes[i].process;
    if (p === null) return;
    await p.kill();
    await removeShm(p.pid);
  }

  /** Stops node i's corosync (SIGTERM, then SIGKILL) and cleans its /dev/shm files. */
  async stopNode(i: number): Promise<void> {
    const p = this.nodes[i].process;
    if (p === null) return;
    await p.stop(STOP_DEADLINE_MS);
    await removeShm(p.pid);
  }

  /** Cuts node i off the others (its bridge port down). */
  async partition(i: number): Promise<void> {
    if (this.#bridgeNs === null) throw new Error("a single node cannot be partitioned");
    await runOk("ip", ["-n", this.#bridgeNs, "link", "set", `b${i + 1}`, "down"]);
  }

  /** Reconnects node i. */
  async heal(i: number): Promise<void> {
    if (this.#bridgeNs === null) throw new Error("a single node cannot be partitioned");
    await runOk("ip", ["-n", this.#bridgeNs, "link", "set", `b${i + 1}`, "up"]);
  }

  /** Stops every corosync, removes the namespaces and the scratch directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.nodes.map((_, i) => this.stopNode(i)));
    for (const ns of this.#namespaces.reverse()) {
      await run("ip", ["netns", "delete", ns], { deadlineMs: 10_000 });
    }
    await this.dir.cleanup();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts private corosync node(s): see {@linkcode Corosync}. */
export function startCorosync(opts: CorosyncOptions = {}): Promise<Corosync> {
  return Corosync.start(opts);
}

/** Removes the libqb shared memory files of corosync `pid` (its own and its clients'). */
async function removeShm(pid: number): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/dev/shm")];
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name.startsWith(`qb-corosync-${pid}-`) || e.name.startsWith(`qb-${pid}-`)) {
      await Deno.remove(`/dev/shm/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
}
