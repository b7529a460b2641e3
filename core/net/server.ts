/**
 * The Sheepdog-protocol server: accepts TCP and UNIX-socket connections, reads 48-byte request
 * headers (+ payload when CMD_WRITE), hands each request to the handler and writes replies in
 * completion order. Limits are enforced before anything is allocated: a data_length above
 * MAX_REQUEST_DATA closes the connection.
 *
 * @module
 */

import { Flag, Op, SD_REQ_SIZE } from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { MAX_CONNECTIONS, MAX_INFLIGHT_PER_CONNECTION, MAX_REQUEST_DATA } from "../limits.ts";
import { ExactReader, UnexpectedEofError } from "./exact_reader.ts";
import { MessageWriter } from "./message_writer.ts";
import { BufferPool } from "../buffer_pool.ts";

/** A reply to one request. */
export interface ServerReply {
  rsp: SdRsp;
  /** Payload; its length must equal rsp.dataLength. */
  data?: Uint8Array;
}

/** Facts about the connection a request came in on. */
export interface ConnectionInfo {
  /** "tcp" or "unix". */
  transport: "tcp" | "unix";
  /** Remote address text, for logs. */
  remote: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Handles one request. Must not throw for bad input: return an error reply instead. */
export type RequestHandler = (
  req: SdReq,
  data: Uint8Array | undefined,
  conn: ConnectionInfo,
) => Promise<ServerReply>;

/** Callbacks for events the server cannot resolve by itself. */
export interface ServerEvents {
  /** A connection was dropped because of a protocol violation. */
  onProtocolError?(remote: string, message: string): void;
  /** A handler threw (a bug): the connection is closed. */
  onHandlerError?(remote: string, err: unknown): void;
}

/** Where to listen. */
export interface ListenSpec {
  tcp?: { hostname: string; port: number };
  unixPath?: string;
}

/** Options of {@linkcode SheepServer.listen}. */
export interface ServerOptions {
  /**
   * The pool object-write payloads are taken from and pooled reply data is given back to
   * (core/buffer_pool.ts); default: a pool of the server's own. The daemon shares one with its
   * store, so the buffers of whole-object reads come back to it once their reply is written.
   */
  buffers?: BufferPool;
}

/** A running server. */
export class SheepServer {
  readonly #listeners: Deno.Listener[] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #handler: RequestHandler;
  readonly #events: ServerEvents;
  readonly #buffers: BufferPool;
  readonly #inflight = new Set<Promise<unknown>>();
  #stopped = false;

  private constructor(handler: RequestHandler, events: ServerEvents, options: ServerOptions) {
    this.#handler = handler;
    this.#events = events;
    this.#buffers = options.buffers ?? new BufferPool();
  }

  /** Starts listening; throws if an address is taken. */
  static listen(
    spec: ListenSpec,
    handler: RequestHandler,
    events: ServerEvents = {},
    options: ServerOptions = {},
  ): SheepServer {
    const s = new SheepServer(handler, events, options);
    try {
      if (spec.tcp) {
        s.#listeners.push(Deno.listen({ hostname: spec.tcp.hostname, port: spec.tcp.port }));
      }
      if (spec.unixPath) {
        s.#listeners.push(Deno.listen({ transport: "unix", path: spec.unixPath }));
      }
    } catch (e) {
      for (const l of s.#listeners) l.close();
      throw e;
    }
    for (const l of s.#listeners) s.#acceptLoop(l);
    return s;
  }

  /** The TCP port actually bound (useful with port 0). */
  get tcpPort(): number | undefined {
    for (const l of this.#listeners) {
      if (l.addr.transport === "tcp") return (l.addr as Deno.NetAddr).port;
    }
    return undefined;
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Stops accepting new connections; existing ones keep being served. */
  stopListening(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const l of this.#listeners) {
      try {
        l.close();
      } catch (_alreadyClosed) {
        // closing twice is harmless
      }
    }
  }

  /**
   * Waits for in-flight requests and the writing of their replies (bounded by `deadlineMs`), then
   * closes every connection.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.stopListening();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inflight]),
      new Promise((r) => timer = setTimeout(r, deadlineMs)),
    ]);
    clearTimeout(timer);
    for (const c of this.#conns) closeQuietly(c);
    this.#conns.clear();
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    while (!this.#stopped) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (_closed) {
        // accept() fails once the listener is closed: that ends the loop.
        return;
      }
      if (this.#conns.size >= MAX_CONNECTIONS) {
        this.#events.onProtocolError?.(remoteOf(conn), "too many connections");
        closeQuietly(conn);
        continue;
      }
      if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
      this.#conns.add(conn);
      this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        closeQuietly(conn);
      });
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const remote = remoteOf(conn);
    const abort = new AbortController();
    const info: ConnectionInfo = {
      transport: conn.remoteAddr.transport === "unix" ? "unix" : "tcp",
      remote,
      signal: abort.signal,
    };
    const reader = new ExactReader(conn);
    let broken = false;
    let inflight = 0;
    let slotFreed: (() => void) | null = null;

    // Requests of this connection whose reply is not written yet (handler and write).
    const pending = new Set<Promise<void>>();

    // Replies go out in completion order; replies that complete together share one write, and
    // a small payload shares its header's (MessageWriter).
    const writer = new MessageWriter(conn, () => {
      // The client went away while we were replying; reading will notice and stop.
      broken = true;
      abort.abort();
      closeQuietly(conn);
    });

    const send = async (reply: ServerReply): Promise<void> => {
      const data = reply.data;
      if (!broken) {
        reply.rsp.dataLength = data?.length ?? 0;
        if (data !== undefined && data.length > 0) await writer.sendAndWait(reply.rsp.bytes, data);
        else await writer.sendAndWait(reply.rsp.bytes);
      }
      // A pooled buffer (a whole object read by the store) belongs to its reply: written, it
      // goes back to the pool (see core/buffer_pool.ts).
      if (data !== undefined && this.#buffers.owns(data)) this.#buffers.give(data);
    };

    try {
      while (!broken) {
        if (inflight >= MAX_INFLIGHT_PER_CONNECTION) {
          await new Promise<void>((r) => slotFreed = r);
          continue;
        }
        const hdr = new Uint8Array(SD_REQ_SIZE);
        if (!(await reader.readFull(hdr))) break;
        const req = new SdReq(hdr);
        if (req.dataLength > MAX_REQUEST_DATA) {
          this.#events.onProtocolError?.(
            remote,
            `data_length ${req.dataLength} above the limit of ${MAX_REQUEST_DATA} (opcode 0x${
              req.opcode.toString(16)
            })`,
          );
          break;
        }
        let data: Uint8Array | undefined;
        // The payload of an object write is lent to its handler: its buffer goes back to the
        // pool once the request is answered (see LENT_PAYLOAD_OPS).
        let lent = false;
        if (req.flags & Flag.CMD_WRITE) {
          lent = LENT_PAYLOAD_OPS.has(req.opcode);
          data = lent ? this.#buffers.take(req.dataLength) : new Uint8Array(req.dataLength);
          if (data.length > 0 && !(await reader.readFull(data))) {
            throw new UnexpectedEofError(0);
          }
        }
        const payload = data;
        inflight++;
        // p settles once the reply is written (or the connection is gone), so close() and the
        // end of this connection wait for replies, not just for handlers.
        const p: Promise<void> = this.#handler(req, data, info).then(send, (err) => {
          this.#events.onHandlerError?.(remote, err);
          broken = true;
          closeQuietly(conn);
        }).finally(() => {
          if (lent) this.#buffers.give(payload!);
          inflight--;
          this.#inflight.delete(p);
          pending.delete(p);
          const wake = slotFreed;
          slotFreed = null;
          wake?.();
        });
        this.#inflight.add(p);
        pending.add(p);
      }
    } catch (e) {
      if (!(e instanceof UnexpectedEofError) && !isConnectionGone(e)) {
        this.#events.onProtocolError?.(remote, e instanceof Error ? e.message : String(e));
      }
    } finally {
      abort.abort();
    }
    // Let handlers already running finish and write their replies (or fail quietly): a client
    // that half-closes after its last request still gets every reply.
    await Promise.allSettled([...pending]);
    await writer.drain();
  }
}

/**
 * Object writes (client and peer): their handlers store the payload or forward it to peers and
 * are done with it when they answer, so the buffer (4 MiB for a whole object) is reused for a
 * later request instead of being allocated and faulted in anew each time. A handler of these ops
 * must not keep the payload beyond its answer (copy it if it must).
 */
const LENT_PAYLOAD_OPS: ReadonlySet<number> = new Set<number>([
  Op.CREATE_AND_WRITE_OBJ,
  Op.WRITE_OBJ,
  Op.CREATE_AND_WRITE_PEER,
  Op.WRITE_PEER,
]);

function remoteOf(conn: Deno.Conn): string {
  const a = conn.remoteAddr;
  return a.transport === "tcp" || a.transport === "udp"
    ? `${(a as Deno.NetAddr).hostname}:${(a as Deno.NetAddr).port}`
    : "unix";
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (_alreadyClosed) {
    // Closing an already closed connection is not an error worth reporting.
  }
}

function isConnectionGone(e: unknown): boolean {
  return e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted ||
    e instanceof Deno.errors.NotConnected;
}
