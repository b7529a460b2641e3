/**
 * Contract members in child processes, so that a driver's abrupt death can be a real SIGKILL.
 * The parent side (`ProcessMember`) spawns `deno run --allow-all SCRIPT PORT ARGS…` and talks to
 * it over JSON lines; the child side (`serveContractMember`, called by the script) runs a driver
 * with the recording handlers of contract_member.ts.
 *
 * Protocol: parent → child `{"id":N,"op":"join"|"leave"|"notify"|"block"|"unblock"|"update"|
 * "close","arg":…}`; child → parent `{"ready":PID}`, `{"event":ContractEvent}`,
 * `{"reply":N}` or `{"reply":N,"error":{"result":R,"message":M}}`. Closing stdin closes the
 * driver and ends the child.
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { makeNode, nodeAddrString, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { type ContractEvent, type ContractMember, recordingHandlers } from "./contract_member.ts";
import type { ClusterDriver } from "./driver.ts";

/** How long a child may take to start, and any request to be answered. */
const CHILD_TIMEOUT_MS = 40_000;
/** How long an orderly close may take before the child is killed. */
const CLOSE_TIMEOUT_MS = 15_000;

const te = new TextEncoder();

interface Pending {
  resolve(): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A contract member running in its own process. */
export class ProcessMember implements ContractMember {
  readonly node: SdNode;
  readonly label: string;
  readonly events: ContractEvent[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, Pending>();
  readonly #readers: Promise<void>;
  #stderr = "";
  #nextId = 1;
  #pid = 0;
  #exited = false;
  #ready: { resolve(): void; reject(e: Error): void } | null = null;

  private constructor(child: Deno.ChildProcess, port: number) {
    this.node = makeNode("127.0.0.1", port);
    this.label = nodeAddrString(this.node);
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#readers = Promise.all([this.#readStdout(), this.#readStderr()]).then(() => {});
  }

  /**
   * Spawns `script` for port `port` and waits until its driver is initialized. `opts.wrap` is a
   * command prefix (e.g. `ip netns exec NS`, which execs Deno under the same pid); `opts.flags`
   * are more Deno flags (e.g. `--v8-flags=--stack-size=4096` for the corosync driver).
   */
  static async spawn(
    script: string,
    port: number,
    args: string[] = [],
    opts: { wrap?: string[]; flags?: string[] } = {},
  ): Promise<ProcessMember> {
    const argv = [
      ...(opts.wrap ?? []),
      Deno.execPath(),
      "run",
      "--allow-all",
      ...(opts.flags ?? []),
      script,
      String(port),
      ...args,
    ];
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const m = new ProcessMember(child, port);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        m.#ready = { resolve, reject };
        timer = setTimeout(
          () => reject(new Error(`member ${m.label} not ready after ${CHILD_TIMEOUT_MS} ms`)),
          CHILD_TIMEOUT_MS,
        );
      });
    } catch (e) {
      clearTimeout(timer);
      await m.kill();
      throw new Error(`${(e as Error).message}\n${m.#stderr}`);
    }
    clearTimeout(timer);
    return m;
  }

  /** The child's pid (for reports). */
  get pid(): number {
    return this.#pid;
  }

  /** What the child wrote on stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  join(opaque: string): Promise<void> {
    return this.#call("join", opaque);
  }
  leave(): Promise<void> {
    return this.#call("leave");
  }
  notify(msg: string): Promise<void> {
    return this.#call("notify", msg);
  }
  block(): Promise<void> {
    return this.#call("block");
  }
  unblock(msg: string): Promise<void> {
    return this.#call("unblock", msg);
  }
  updateNode(nrVnodes: number): Promise<void> {
    return this.#call("update", nrVnodes);
  }

  /** SIGKILL, then waits for the process to be reaped. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch (e) {
        // It exited on its own between the check and the kill.
        if (!(e instanceof TypeError)) throw e;
      }
    }
    await this.#reap();
  }

  /** Orderly close (the driver's close() in the child), SIGKILL if it takes too long. */
  async close(): Promise<void> {
    if (!this.#exited) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killLater = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          if (!this.#exited) this.#child.kill("SIGKILL");
          resolve();
        }, CLOSE_TIMEOUT_MS);
      });
      await Promise.race([this.#call("close").catch(() => {}), killLater]);
      clearTimeout(timer);
    }
    await this.#reap();
  }

  async #reap(): Promise<void> {
    await this.#stdin.close().catch(() => {}); // already closed when the child died
    await this.#child.status;
    this.#exited = true;
    await this.#readers;
    const err = new SdError(Res.NETWORK_ERROR, `member ${this.label} exited`);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  #call(op: string, arg?: string | number): Promise<void> {
    if (this.#exited) {
      return Promise.reject(new SdError(Res.NETWORK_ERROR, `member ${this.label} exited`));
    }
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${op} on ${this.label} not answered in ${CHILD_TIMEOUT_MS} ms`));
      }, CHILD_TIMEOUT_MS);
      this.#pending.set(id, { resolve, reject, timer });
      this.#stdin.write(te.encode(JSON.stringify({ id, op, arg }) + "\n")).catch((e) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(e);
      });
    });
  }

  #onLine(line: string): void {
    const msg = JSON.parse(line);
    if ("ready" in msg) {
      this.#pid = msg.ready;
      this.#ready?.resolve();
    } else if ("event" in msg) {
      this.events.push(msg.event as ContractEvent);
    } else if ("reply" in msg) {
      const p = this.#pending.get(msg.reply);
      if (p === undefined) return;
      this.#pending.delete(msg.reply);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new SdError(msg.error.result, msg.error.message));
      else p.resolve();
    }
  }

  async #readStdout(): Promise<void> {
    let buf = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        this.#onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    this.#ready?.reject(new Error(`member ${this.label} exited before it was ready`));
  }

  async #readStderr(): Promise<void> {
    for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      this.#stderr = (this.#stderr + chunk).slice(-16384);
    }
  }
}

/**
 * The child side: initializes `driver` with the recording handlers, reports events and answers
 * requests on stdout, and returns once stdin ends or "close" was handled (the driver is closed).
 */
export async function serveContractMember(driver: ClusterDriver, port: number): Promise<void> {
  let node = makeNode("127.0.0.1", port);
  let out = Promise.resolve();
  const send = (msg: unknown) => {
    const line = te.encode(JSON.stringify(msg) + "\n");
    out = out.then(() => writeAllStdout(line));
  };
  const abort = new AbortController();
  await driver.init(recordingHandlers((event) => send({ event }), abort.signal));
  send({ ready: Deno.pid });
  const run = (op: string, arg: unknown): Promise<void> => {
    switch (op) {
      case "join":
        return driver.join(node, te.encode(String(arg)));
      case "leave":
        return driver.leave();
      case "notify":
        return driver.notify(te.encode(String(arg)));
      case "block":
        return driver.block();
      case "unblock":
        return driver.unblock(te.encode(String(arg)));
      case "update":
        node = { ...node, nrVnodes: Number(arg) };
        return driver.updateNode(node);
      default:
        return Promise.reject(new SdError(Res.INVALID_PARMS, `unknown op ${op}`));
    }
  };
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const { id, op, arg } = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (op === "close") {
        abort.abort();
        await driver.close();
        send({ reply: id });
        await out;
        return;
      }
      // Requests run concurrently (a block() waits while an unblock() comes in).
      Promise.resolve().then(() => run(op, arg)).then(
        () => send({ reply: id }),
        (e) =>
          send({
            reply: id,
            error: {
              result: e instanceof SdError ? e.result : Res.SYSTEM_ERROR,
              message: e instanceof Error ? e.message : String(e),
            },
          }),
      );
    }
  }
  abort.abort();
  await driver.close();
  await out;
}

async function writeAllStdout(data: Uint8Array): Promise<void> {
  let o = 0;
  while (o < data.length) o += await Deno.stdout.write(data.subarray(o));
}
