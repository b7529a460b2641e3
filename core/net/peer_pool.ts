/**
 * Pooled, pipelined connections to other sheep. Each remote gets up to PEER_POOL_SIZE connections;
 * a request goes to the connection with the fewest requests in flight, so one slow 4 MiB transfer
 * does not hold up small requests behind it for long.
 *
 * @module
 */

import { PEER_POOL_SIZE } from "../limits.ts";
import { Res } from "../proto/constants.ts";
import type { SdReq } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { type Reply, SheepClient } from "./client.ts";

/** What the pool needs of one connection (SheepClient over TCP; the simulation's own). */
export interface PeerConnection {
  /** True once the connection failed or was closed. */
  readonly closed: boolean;
  /** Requests waiting for a reply. */
  readonly inflight: number;
  /** Sends `req` (payload `data`) and resolves with the reply; rejects when the connection fails. */
  request(req: SdReq, data?: Uint8Array): Promise<Reply>;
  /** Closes the connection; pending requests fail. */
  close(): void;
}

/**
 * A request that failed before any byte of it was sent (no connection could be opened): the peer
 * certainly did not apply it, so even an op that is not idempotent may be sent again. A
 * NETWORK_ERROR like any other for everyone else.
 */
export class NotSentError extends SdError {
  override name = "NotSentError";

  constructor(message: string, options?: ErrorOptions) {
    super(Res.NETWORK_ERROR, message, options);
  }
}

/** Opens a connection to the sheep at host:port. */
export type PeerConnect = (host: string, port: number) => Promise<PeerConnection>;

/** The real network: a TCP connection with SheepClient. */
export const tcpPeerConnect: PeerConnect = (host, port) => SheepClient.connect({ host, port });

/** Connections to other sheep, keyed by "host:port". */
export class PeerPool {
  readonly #conns = new Map<string, PeerConnection[]>();
  readonly #connecting = new Map<string, Promise<PeerConnection>>();
  readonly #connect: PeerConnect;
  #closed = false;

  /** `connect` opens each new connection (TCP by default). */
  constructor(connect: PeerConnect = tcpPeerConnect) {
    this.#connect = connect;
  }

  /**
   * Sends `req` to host:port over a pooled connection. When no connection can be had the request
   * was not sent: NotSentError.
   */
  async request(host: string, port: number, req: SdReq, data?: Uint8Array): Promise<Reply> {
    let client: PeerConnection;
    try {
      client = await this.#pick(host, port);
    } catch (e) {
      const text = e instanceof SdError ? e.message : `${host}:${port}: ${String(e)}`;
      throw new NotSentError(text, { cause: e });
    }
    return client.request(req, data);
  }

  async #pick(host: string, port: number): Promise<PeerConnection> {
    const key = `${host}:${port}`;
    let list = this.#conns.get(key);
    if (!list) {
      list = [];
      this.#conns.set(key, list);
    }
    for (let i = list.length - 1; i >= 0; i--) if (list[i].closed) list.splice(i, 1);
    let best: PeerConnection | undefined;
    for (const c of list) if (!best || c.inflight < best.inflight) best = c;
    if (best && (best.inflight === 0 || list.length >= PEER_POOL_SIZE)) return best;
    const pending = this.#connecting.get(key);
    if (pending) return best ?? await pending;
    if (this.#closed) throw new Error("peer pool closed");
    const p = this.#connect(host, port);
    this.#connecting.set(key, p);
    try {
      const c = await p;
      if (this.#closed) {
        c.close();
        throw new Error("peer pool closed");
      }
      list.push(c);
      return c;
    } catch (e) {
      if (best) return best;
      throw e;
    } finally {
      this.#connecting.delete(key);
    }
  }

  /** Drops every connection to host:port (the node left). */
  forget(host: string, port: number): void {
    const key = `${host}:${port}`;
    for (const c of this.#conns.get(key) ?? []) c.close();
    this.#conns.delete(key);
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const list of this.#conns.values()) for (const c of list) c.close();
    this.#conns.clear();
  }
}
