/**
 * The simulated network between the sheep (and the simulated clients): connections that carry
 * request and reply headers as bytes (copied, so nobody shares buffers across the wire), with
 * seeded delays, FIFO order within one connection and any order across connections, seeded
 * connection resets, and the failures a dead process causes:
 *
 * - a request to a node that does not listen is refused (connect) or lost (its connection then
 *   fails, as TCP reports a reset);
 * - when a node crashes, what it already sent is still delivered (it was on the wire), and the
 *   other ends learn that their connections to it failed one maximum delay later;
 * - a reset drops what was not yet delivered on the connection; requests already delivered are
 *   still served, their replies are lost.
 *
 * Requests go straight to the target's request handler, as net/server.ts would hand them.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { REQUEST_TIMEOUT_MS } from "../limits.ts";
import type { PeerConnection } from "../net/peer_pool.ts";
import type { Reply } from "../net/client.ts";
import type { ConnectionInfo, RequestHandler } from "../net/server.ts";
import type { Prng } from "../recovery/prng.ts";
import { type EventHandle, SIM_OWNER, type SimClock } from "./sim_clock.ts";

/** Shape of the simulated network. */
export interface SimNetworkOptions {
  /** One-way delay range of a message (ms). */
  readonly delayMs: readonly [number, number];
  /** Probability that a request's connection is reset while it is in flight. */
  readonly resetChance: number;
}

interface Listener {
  handler: RequestHandler;
  /** Changes at every restart, so a connection is bound to one incarnation. */
  incarnation: number;
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer: EventHandle;
}

/** The network: who listens where, and every open connection. */
export class SimNetwork {
  readonly #clock: SimClock;
  readonly #prng: Prng;
  readonly #opts: SimNetworkOptions;
  /** Resets happen only while enabled (the setup of a run is not what a run tests). */
  resetsEnabled = true;
  readonly #listeners = new Map<string, Listener>();
  readonly #conns = new Set<SimConnection>();
  #nextIncarnation = 1;
  /** Messages handed over (requests and replies), for the report. */
  delivered = 0;

  constructor(clock: SimClock, prng: Prng, opts: SimNetworkOptions) {
    assert(opts.delayMs[0] >= 0 && opts.delayMs[1] >= opts.delayMs[0], "bad delay range");
    this.#clock = clock;
    this.#prng = prng;
    this.#opts = opts;
  }

  /** A seeded one-way delay. */
  delay(): number {
    return this.#prng.between(this.#opts.delayMs[0], this.#opts.delayMs[1]);
  }

  /** The longest one-way delay. */
  get maxDelay(): number {
    return this.#opts.delayMs[1];
  }

  /** `name` ("host:port") starts accepting connections, served by `handler`. */
  listen(name: string, handler: RequestHandler): void {
    assert(!this.#listeners.has(name), `${name} listens already`);
    this.#listeners.set(name, { handler, incarnation: this.#nextIncarnation++ });
  }

  /** `name` stops accepting new connections (open ones stay, as with a closed listener). */
  stopListening(name: string): void {
    this.#listeners.delete(name);
  }

  /** True when `name` accepts connections. */
  listening(name: string): boolean {
    return this.#listeners.has(name);
  }

  /**
   * `name` died: it stops listening, its connections are cut. The other ends see the failure one
   * maximum delay later (what `name` sent before is delivered first).
   */
  crash(name: string): void {
    this.#listeners.delete(name);
    for (const c of [...this.#conns]) {
      if (c.from !== name && c.to !== name) continue;
      c.deadEnd = true;
      this.#clock.schedule(
        this.maxDelay + 1,
        () => c.fail(new SdError(Res.NETWORK_ERROR, `connection to ${c.to} reset`)),
        SIM_OWNER,
        `net reset ${c.from}>${c.to}`,
      );
    }
  }

  /** Opens a connection from `from` to `to`; refused after a delay when `to` does not listen. */
  connect(from: string, to: string): Promise<PeerConnection> {
    return new Promise((resolve, reject) => {
      this.#clock.schedule(
        this.delay(),
        () => {
          const l = this.#listeners.get(to);
          if (!l) {
            reject(new SdError(Res.NETWORK_ERROR, `${to}: connection refused`));
            return;
          }
          const c = new SimConnection(this, this.#clock, from, to, l);
          this.#conns.add(c);
          resolve(c);
        },
        SIM_OWNER,
        `net connect ${from}>${to}`,
      );
    });
  }

  /** Forgets a closed connection. */
  dropConnection(c: SimConnection): void {
    this.#conns.delete(c);
  }

  /** The listener of `to` if it is still the incarnation `incarnation`. */
  listenerOf(to: string, incarnation: number): Listener | null {
    const l = this.#listeners.get(to);
    return l && l.incarnation === incarnation ? l : null;
  }

  /** True when this request's connection should be reset while it is in flight. */
  drawReset(): boolean {
    return this.resetsEnabled && this.#opts.resetChance > 0 &&
      this.#prng.chance(this.#opts.resetChance);
  }
}

/** One simulated connection (a PeerConnection for the PeerPool, or a client's connection). */
export class SimConnection implements PeerConnection {
  readonly from: string;
  readonly to: string;
  /** Set when one end died: nothing more is handed to the server. */
  deadEnd = false;
  readonly #net: SimNetwork;
  readonly #clock: SimClock;
  readonly #incarnation: number;
  readonly #pending = new Map<number, Pending>();
  readonly #abort = new AbortController();
  readonly #info: ConnectionInfo;
  #closed: Error | null = null;
  #nextId = 1;
  /** Virtual times of the last message each way (FIFO within the connection). */
  #lastRequestAt = 0;
  #lastReplyAt = 0;

  constructor(net: SimNetwork, clock: SimClock, from: string, to: string, l: Listener) {
    this.#net = net;
    this.#clock = clock;
    this.from = from;
    this.to = to;
    this.#incarnation = l.incarnation;
    this.#info = { transport: "tcp", remote: from, signal: this.#abort.signal };
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  get inflight(): number {
    return this.#pending.size;
  }

  request(req: SdReq, data?: Uint8Array): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.deadEnd) {
      // One end died: a dead sender sends nothing, a live one writes into a reset connection.
      this.fail(new SdError(Res.NETWORK_ERROR, `connection to ${this.to} reset`));
      return Promise.reject(this.#closed);
    }
    if (data !== undefined && data.length !== req.dataLength) {
      return Promise.reject(new Error("payload length differs from data_length"));
    }
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    req.id = id;
    // What goes on the wire: the header bytes and the payload, copied.
    const hdr = req.bytes.slice();
    const payload = data?.slice();
    return new Promise<Reply>((resolve, reject) => {
      const timer = this.#clock.schedule(
        REQUEST_TIMEOUT_MS,
        () => {
          this.fail(new SdError(Res.NETWORK_ERROR, `request ${id} timed out`));
        },
        SIM_OWNER,
        `net timeout ${this.from}>${this.to}`,
      );
      this.#pending.set(id, { resolve, reject, timer });
      const at = this.#fifo("request");
      if (this.#net.drawReset()) {
        // The reset hits at a seeded moment: before or after the request is served.
        const resetIn = this.#net.delay() * 3;
        this.#clock.schedule(
          resetIn,
          () => {
            this.fail(new SdError(Res.NETWORK_ERROR, `connection to ${this.to} reset`));
          },
          SIM_OWNER,
          `net reset ${this.from}>${this.to}`,
        );
      }
      this.#clock.schedule(
        at,
        () => this.#deliver(hdr, payload),
        SIM_OWNER,
        `net req ${this.from}>${this.to} op ${hdr[1]}`,
      );
    });
  }

  close(): void {
    this.fail(new SdError(Res.NETWORK_ERROR, "connection closed"));
  }

  /** The connection failed: pending requests reject with `err`, nothing more is delivered. */
  fail(err: Error): void {
    if (!this.#closed) {
      this.#closed = err;
      this.#abort.abort();
      this.#net.dropConnection(this);
    }
    for (const [id, p] of this.#pending) {
      this.#clock.cancel(p.timer);
      this.#pending.delete(id);
      p.reject(err);
    }
  }

  /** Delay of the next message in one direction, never before the previous one (FIFO). */
  #fifo(dir: "request" | "reply"): number {
    const now = this.#clock.now();
    const last = dir === "request" ? this.#lastRequestAt : this.#lastReplyAt;
    const at = Math.max(now + this.#net.delay(), last);
    if (dir === "request") this.#lastRequestAt = at;
    else this.#lastReplyAt = at;
    return at - now;
  }

  #deliver(hdr: Uint8Array, payload: Uint8Array | undefined): void {
    if (this.#closed) return;
    const l = this.#net.listenerOf(this.to, this.#incarnation);
    if (l === null || (this.deadEnd && !this.#net.listening(this.to))) {
      // The server is gone: the request is lost and the connection reported as reset.
      this.fail(new SdError(Res.NETWORK_ERROR, `${this.to}: connection reset`));
      return;
    }
    this.#net.delivered++;
    const req = new SdReq(hdr);
    l.handler(req, payload, this.#info).then((reply) => {
      if (this.#closed || this.#net.listenerOf(this.to, this.#incarnation) === null) return;
      const data = reply.data ?? new Uint8Array(0);
      reply.rsp.dataLength = data.length;
      const rspBytes = reply.rsp.bytes.slice();
      const out = data.slice();
      this.#clock.schedule(
        this.#fifo("reply"),
        () => this.#reply(new SdRsp(rspBytes), out),
        SIM_OWNER,
        `net rsp ${this.to}>${this.from} op ${hdr[1]}`,
      );
    }, (e) => {
      // A handler must not throw (it answers errors); a throw is a bug, as the server treats it.
      this.fail(new SdError(Res.NETWORK_ERROR, `handler of ${this.to} threw: ${String(e)}`));
      throw e;
    });
  }

  #reply(rsp: SdRsp, data: Uint8Array): void {
    if (this.#closed) return;
    this.#net.delivered++;
    const p = this.#pending.get(rsp.id);
    if (!p) return;
    this.#pending.delete(rsp.id);
    this.#clock.cancel(p.timer);
    p.resolve({ rsp, data });
  }
}
