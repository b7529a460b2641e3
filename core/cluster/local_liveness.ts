/**
 * Liveness of local driver members without pids: each member listens on a UNIX socket
 * `DIR/<id>.sock` for as long as it lives. Connecting tells the others whether it does: refused
 * (the kernel closed the listening socket when the process died, even by SIGKILL) or missing (the
 * member closed it) means dead; success means alive; anything else (a timeout under load) proves
 * nothing. Member ids are random, never pids, so a reused pid can never be mistaken for a member.
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
    try {
      // A probe only needs the connection to be accepted.
      for await (const conn of this.#listener) conn.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted)) throw e;
    }
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
