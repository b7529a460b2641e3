/**
 * A pipelined Sheepdog-protocol client: many requests in flight on one connection, replies matched
 * by id. Used by dog, by the gateway to reach peers, by tests and by benchmarks.
 *
 * @module
 */

import { SD_RSP_SIZE } from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { Res } from "../proto/constants.ts";
import { CONNECT_TIMEOUT_MS, MAX_REQUEST_DATA, REQUEST_TIMEOUT_MS } from "../limits.ts";
import { ExactReader } from "./exact_reader.ts";
import { MessageWriter } from "./message_writer.ts";

/** Where a sheep listens. */
export type SheepAddress = { host: string; port: number } | { path: string };

/** A reply: header and payload. */
export interface Reply {
  rsp: SdRsp;
  data: Uint8Array;
}

interface Pending {
  /** Where the reply payload goes when it fits (else a new buffer). */
  into: Uint8Array | undefined;
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Options of a client connection. */
export interface ClientOptions {
  /** Per-request deadline (ms); 0 disables it. */
  requestTimeoutMs?: number;
  /** Connect deadline (ms). */
  connectTimeoutMs?: number;
}

/** One connection to a sheep. */
export class SheepClient {
  readonly #conn: Deno.Conn;
  readonly #reader: ExactReader;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #closed: Error | null = null;
  readonly #writer: MessageWriter;

  private constructor(conn: Deno.Conn, opts: ClientOptions) {
    this.#conn = conn;
    this.#reader = new ExactReader(conn);
    this.#writer = new MessageWriter(conn, (e) => this.#fail(toError(e)));
    this.#timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.#readLoop();
  }

  /** Connects to a sheep over TCP or its UNIX socket. */
  static async connect(addr: SheepAddress, opts: ClientOptions = {}): Promise<SheepClient> {
    const deadline = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new SdError(Res.NETWORK_ERROR, `connect to ${describe(addr)} timed out`)),
        deadline,
      );
    });
    try {
      const conn = await Promise.race([
        "path" in addr
          ? Deno.connect({ transport: "unix", path: addr.path })
          : Deno.connect({ hostname: addr.host, port: addr.port }),
        timeout,
      ]);
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      return new SheepClient(conn, opts);
    } finally {
      clearTimeout(timer);
    }
  }

  /** True once the connection failed or was closed. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Number of requests waiting for a reply. */
  get inflight(): number {
    return this.#pending.size;
  }

  /**
   * Sends `req` (with `data` as payload when given; CMD_WRITE must then be set and data_length
   * match) and resolves with the reply. The request id is assigned here. With `into`, a reply
   * payload that fits is read into it (the reply's `data` is then a view of `into`), which spares
   * a large read a fresh allocation.
   */
  request(req: SdReq, data?: Uint8Array, into?: Uint8Array): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (data !== undefined && data.length !== req.dataLength) {
      return Promise.reject(new Error("payload length differs from data_length"));
    }
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    req.id = id;
    return new Promise<Reply>((resolve, reject) => {
      const timer = this.#timeoutMs > 0
        ? setTimeout(() => {
          this.#fail(new SdError(Res.NETWORK_ERROR, `request ${id} timed out`));
        }, this.#timeoutMs)
        : undefined;
      this.#pending.set(id, { into, resolve, reject, timer });
      // Requests queued together go out in one write (see MessageWriter).
      if (data !== undefined) this.#writer.send(req.bytes.slice(), data);
      else this.#writer.send(req.bytes.slice());
    });
  }

  /** Closes the connection; pending requests fail with NETWORK_ERROR. */
  close(): void {
    this.#fail(new SdError(Res.NETWORK_ERROR, "connection closed"));
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        const hdr = new Uint8Array(SD_RSP_SIZE);
        if (!(await this.#reader.readFull(hdr))) break;
        const rsp = new SdRsp(hdr);
        if (rsp.dataLength > MAX_REQUEST_DATA) {
          throw new SdError(Res.NETWORK_ERROR, `reply too large (${rsp.dataLength} bytes)`);
        }
        const p = this.#pending.get(rsp.id);
        const data = p?.into !== undefined && p.into.length >= rsp.dataLength
          ? p.into.subarray(0, rsp.dataLength)
          : new Uint8Array(rsp.dataLength);
        if (data.length > 0 && !(await this.#reader.readFull(data))) {
          throw new SdError(Res.NETWORK_ERROR, "connection closed before reply payload");
        }
        if (!p || this.#pending.get(rsp.id) !== p) continue; // its request already timed out
        this.#pending.delete(rsp.id);
        clearTimeout(p.timer);
        p.resolve({ rsp, data });
      }
      this.#fail(new SdError(Res.NETWORK_ERROR, "connection closed by the server"));
    } catch (e) {
      this.#fail(toError(e));
    }
  }

  #fail(err: Error): void {
    if (!this.#closed) {
      this.#closed = err;
      this.#writer.stop();
      try {
        this.#conn.close();
      } catch (_closed) {
        // Already closed by the peer: nothing more to release.
      }
    }
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(id);
    }
  }
}

function toError(e: unknown): Error {
  if (e instanceof SdError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SdError(Res.NETWORK_ERROR, msg, { cause: e });
}

/** Text form of an address for messages. */
export function describe(addr: SheepAddress): string {
  return "path" in addr ? addr.path : `${addr.host}:${addr.port}`;
}
