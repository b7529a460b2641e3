/**
 * The member side of the driver contract suite: what a test can do with one member (the
 * `ContractMember` handle, in-process or in a child process), the handlers that record every
 * delivered event as JSON-friendly data, and the fixed join-check rule every member applies, so
 * that a member in another process behaves exactly like one in the test process.
 *
 * Join-check rule: a payload starting with "refuse" is refused; one starting with "slow" is
 * accepted after SLOW_CHECK_MS; any other is accepted; accepted payloads get "|ok" appended.
 *
 * @module
 */

import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import { makeNode, nodeAddrString, type SdNode } from "../proto/node.ts";

/** How long the join check of a "slow…" payload takes. */
export const SLOW_CHECK_MS = 1500;

/** One recorded event (t: wall-clock milliseconds, comparable across processes of one host). */
export type ContractEvent =
  | { kind: "accept"; node: string; members: string[]; opaque: string; t: number }
  | { kind: "leave"; node: string; members: string[]; t: number }
  | { kind: "notify"; sender: string; msg: string; t: number }
  | { kind: "update_node"; node: string; members: string[]; t: number }
  | { kind: "check"; joining: string; members: string[]; opaque: string; t: number }
  | { kind: "lost"; reason: string; t: number };

/** A test's handle on one member. All operations are asynchronous and bounded. */
export interface ContractMember {
  /** The node it joins as (127.0.0.1 and its port). */
  readonly node: SdNode;
  /** "127.0.0.1:PORT". */
  readonly label: string;
  /** Everything recorded so far, in delivery order (a live array). */
  readonly events: readonly ContractEvent[];
  join(opaque: string): Promise<void>;
  leave(): Promise<void>;
  notify(msg: string): Promise<void>;
  block(): Promise<void>;
  unblock(msg: string): Promise<void>;
  /** updateNode() with the same node and `nrVnodes` vnodes. */
  updateNode(nrVnodes: number): Promise<void>;
  /** Abrupt death (SIGKILL for a process): no leave is posted by the member itself. */
  kill(): Promise<void>;
  /** Orderly close (the driver's close()). */
  close(): Promise<void>;
}

/** Makes the members of one fresh cluster. */
export interface DriverFactory {
  /** Starts a new member (driver initialized, not joined) that will join as 127.0.0.1:port. */
  start(port: number): Promise<ContractMember>;
  /** Stops every member still running and removes whatever the cluster left behind. */
  close(): Promise<void>;
}

const te = new TextEncoder();
const td = new TextDecoder();

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** "ADDR:PORT/VNODES", the form of a node in recorded member lists. */
export function nodeLabel(n: SdNode): string {
  return `${nodeAddrString(n)}/${n.nrVnodes}`;
}

/**
 * Handlers that record every event through `record` and apply the contract's join-check rule.
 * Aborting `signal` cuts a slow check short (so that a killed in-process member leaves no timer).
 */
export function recordingHandlers(
  record: (e: ContractEvent) => void,
  signal: AbortSignal,
): ClusterHandlers {
  const list = (ns: readonly SdNode[]) => ns.map(nodeLabel);
  return {
    async onJoinCheck(joining, members, opaque) {
      const text = td.decode(opaque);
      record({
        kind: "check",
        joining: nodeAddrString(joining),
        members: list(members),
        opaque: text,
        t: wallMs(),
      });
      if (text.startsWith("refuse")) {
        return { accept: false, opaque, reason: `refused by the contract rule (${text})` };
      }
      if (text.startsWith("slow")) await abortableSleep(SLOW_CHECK_MS, signal);
      return { accept: true, opaque: te.encode(`${text}|ok`) };
    },
    async onAccept(joined, members, opaque) {
      record({
        kind: "accept",
        node: nodeAddrString(joined),
        members: list(members),
        opaque: td.decode(opaque),
        t: wallMs(),
      });
      // Handlers may be asynchronous: the driver must wait for them.
      await Promise.resolve();
    },
    onLeave(left, members) {
      record({ kind: "leave", node: nodeAddrString(left), members: list(members), t: wallMs() });
    },
    async onNotify(sender, msg) {
      await Promise.resolve();
      record({ kind: "notify", sender: nodeAddrString(sender), msg: td.decode(msg), t: wallMs() });
    },
    onUpdateNode(node, members) {
      record({ kind: "update_node", node: nodeLabel(node), members: list(members), t: wallMs() });
    },
    onLost(reason) {
      record({ kind: "lost", reason, t: wallMs() });
    },
  };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** A member whose driver runs in the test process. */
export class InProcessMember implements ContractMember {
  readonly node: SdNode;
  readonly label: string;
  readonly events: ContractEvent[] = [];
  readonly #driver: ClusterDriver;
  readonly #kill: () => void | Promise<void>;
  readonly #abort = new AbortController();
  #closed = false;

  private constructor(driver: ClusterDriver, port: number, kill: () => void | Promise<void>) {
    this.#driver = driver;
    this.#kill = kill;
    this.node = makeNode("127.0.0.1", port);
    this.label = nodeAddrString(this.node);
  }

  /** Initializes `driver` with recording handlers; `kill` makes it die abruptly. */
  static async start(
    driver: ClusterDriver,
    port: number,
    kill: () => void | Promise<void>,
  ): Promise<InProcessMember> {
    const m = new InProcessMember(driver, port, kill);
    await driver.init(recordingHandlers((e) => m.events.push(e), m.#abort.signal));
    return m;
  }

  /** The driver under test. */
  get driver(): ClusterDriver {
    return this.#driver;
  }

  join(opaque: string): Promise<void> {
    return this.#driver.join(this.node, te.encode(opaque));
  }
  leave(): Promise<void> {
    return this.#driver.leave();
  }
  notify(msg: string): Promise<void> {
    return this.#driver.notify(te.encode(msg));
  }
  block(): Promise<void> {
    return this.#driver.block();
  }
  unblock(msg: string): Promise<void> {
    return this.#driver.unblock(te.encode(msg));
  }
  updateNode(nrVnodes: number): Promise<void> {
    return this.#driver.updateNode({ ...this.node, nrVnodes });
  }
  async kill(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await this.#kill();
  }
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    await this.#driver.close();
  }
}
