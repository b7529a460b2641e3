/**
 * Liveness of local driver members without pids: each member listens on a UNIX socket
 * `DIR/<id>.sock` for as long as it lives. Connecting tells the others whether it does: refused
 * (the kernel closed the listening socket when the process died, even by SIGKILL) or missing (the
 * member closed it) means dead; success means alive; anything else (a timeout under load) proves
 * nothing. Member ids are random, never pids, so a reused pid can never be mistaken for a member.
 *
 * A prober also holds a connection open to each member it watches ({@linkcode MemberHold}): the
 * kernel closes it when that process dies, so the prober learns of the death at once and probes
 * then instead of at its next round. The end of a held connection is only a hint: the verdict is
 * still the probe's, so it adds no false positive.
 *
 * @module
 */

import { removeIfPresent } from "../store/durable_files.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { withDeadline } from "./deadline.ts";

/** Longest UNIX socket path (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** What a probe found out. */
export type Liveness = "alive" | "dead" | "unknown";

/** A fresh random member id (16 hex digits; short, to keep socket paths short). */
export function newMemberId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The socket path of member `id` in `dir`. */
export function memberSocketPath(dir: string, id: string): string {
  return `${dir}/${id}.sock`;
}

/** The listening socket a member holds while it lives. */
export class MemberSocket {
  readonly path: string;
  readonly #listener: Deno.Listener;
  /** Accepted connections still open (holds). */
  readonly #conns = new Set<Deno.Conn>();
  readonly #loop: Promise<void>;

  private constructor(path: string, listener: Deno.Listener) {
    this.path = path;
    this.#listener = listener;
    this.#loop = this.#acceptLoop();
  }

  /** Listens at `dir/<id>.sock`. */
  static listen(dir: string, id: string): MemberSocket {
    const path = memberSocketPath(dir, id);
    if (new TextEncoder().encode(path).length > MAX_SOCKET_PATH) {
      throw new SdError(
        Res.INVALID_PARMS,
        `local cluster path too long: socket path ${path} exceeds ${MAX_SOCKET_PATH} bytes`,
      );
    }
    return new MemberSocket(path, Deno.listen({ transport: "unix", path }));
  }

  /** Stops listening and removes the socket file. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#loop;
    await removeIfPresent(this.path);
  }

  async #acceptLoop(): Promise<void> {
    const held = new Set<Promise<void>>();
    try {
      // A probe only needs the connection to be accepted; a hold is kept open until its prober
      // closes it or this process ends.
      for await (const conn of this.#listener) {
        const h = drain(conn, this.#conns).finally(() => held.delete(h));
        held.add(h);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)) throw e;
    } finally {
      for (const c of this.#conns) c.close();
      this.#conns.clear();
      await Promise.all(held);
    }
  }
}

/**
 * Reads `conn` until it ends: its peer closed it or went away (EOF, a reset), or it was closed
 * here. Nothing is ever sent on a hold: the reads only wait for that end.
 */
async function readUntilEnd(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64);
  try {
    while (await conn.read(buf) !== null) {
      // Whatever arrives is ignored.
    }
  } catch (e) {
    // A reset, or a close from here: the end this waits for.
    if (!(e instanceof Error)) throw e;
  }
}

/** Holds an accepted connection until its prober closes it (or it is closed here). */
async function drain(conn: Deno.Conn, open: Set<Deno.Conn>): Promise<void> {
  open.add(conn);
  try {
    await readUntilEnd(conn);
  } finally {
    if (open.delete(conn)) conn.close();
  }
}

/**
 * A connection held open to a watched member. `onEnd` is called once when it ends other than by
 * close(): the member's process died (the kernel closed its end), it closed its socket, or the
 * connection could not be made. The caller then probes; the end itself proves nothing.
 */
export class MemberHold {
  #conn: Deno.Conn | null = null;
  #closed = false;
  #ended = false;
  readonly #run: Promise<void>;

  constructor(path: string, onEnd: () => void) {
    this.#run = this.#hold(path).then(() => {
      if (!this.#closed) onEnd();
    });
  }

  /** Whether the connection ended (not by close()). */
  get ended(): boolean {
    return this.#ended;
  }

  async #hold(path: string): Promise<void> {
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch (e) {
      // Refused, missing, or no room in the backlog: the probe that follows tells which.
      if (!(e instanceof Error)) throw e;
      this.#ended = true;
      return;
    }
    if (this.#closed) {
      conn.close();
      return;
    }
    this.#conn = conn;
    try {
      // Its end is the hint; the probe that follows tells what it means.
      await readUntilEnd(conn);
    } finally {
      if (this.#conn !== null) {
        this.#conn = null;
        conn.close();
      }
    }
    this.#ended = !this.#closed;
  }

  /** Closes the connection; onEnd is not called any more. */
  async close(): Promise<void> {
    this.#closed = true;
    const c = this.#conn;
    this.#conn = null;
    c?.close();
    await this.#run;
  }
}

/** Whether the member listening at `path` lives. */
export async function probe(path: string, timeoutMs: number): Promise<Liveness> {
  const connecting = Deno.connect({ transport: "unix", path });
  try {
    const conn = await withDeadline(
      connecting,
      timeoutMs,
      () => new SdError(Res.NETWORK_ERROR, `probe of ${path} timed out`),
    );
    conn.close();
    return "alive";
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound) {
      return "dead";
    }
    // A connection that completes after the deadline is closed at once; a failed one needs
    // nothing.
    connecting.then((c) => c.close(), () => {});
    return "unknown";
  }
}

export { removeIfPresent };
