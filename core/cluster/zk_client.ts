/**
 * A small promise-based layer over `npm:node-zookeeper-client` (pure JavaScript, through Deno's
 * Node compatibility): typed calls that resolve or reject with `ZkError` (the ZooKeeper error
 * code), one-shot watches as callbacks, and the session states the driver cares about.
 *
 * The library queues requests while it reconnects and fails requests in flight with
 * CONNECTION_LOSS when a connection drops (the caller decides whether a retry is safe); its own
 * retries are turned off.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import zookeeper from "node-zookeeper-client";

/** ZooKeeper error codes the driver handles. */
export const ZkCode = {
  CONNECTION_LOSS: -4,
  OPERATION_TIMEOUT: -7,
  NO_NODE: -101,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
} as const;

/** A failed ZooKeeper call. */
export class ZkError extends Error {
  override name = "ZkError";
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** The session events of a client. */
export type ZkSessionEvent = "connected" | "disconnected" | "expired" | "closed";

/** Node modes. */
export const ZkMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;

interface RawStat {
  version: number;
}

interface RawException {
  getCode(): number;
  toString(): string;
}

interface RawClient {
  connect(): void;
  close(): void;
  on(event: string, fn: (arg?: unknown) => void): void;
  once(event: string, fn: (arg?: unknown) => void): void;
  removeListener(event: string, fn: (arg?: unknown) => void): void;
  getSessionTimeout(): number;
  getSessionId(): Uint8Array;
  create(
    path: string,
    data: Uint8Array | null,
    mode: number,
    cb: (e: RawException | null, path: string) => void,
  ): void;
  remove(path: string, version: number, cb: (e: RawException | null) => void): void;
  getData(
    path: string,
    watcher: ((ev: unknown) => void) | undefined,
    cb: (e: RawException | null, data: Uint8Array | null, stat: RawStat) => void,
  ): void;
  setData(
    path: string,
    data: Uint8Array,
    version: number,
    cb: (e: RawException | null, stat: RawStat) => void,
  ): void;
  getChildren(
    path: string,
    watcher: ((ev: unknown) => void) | undefined,
    cb: (e: RawException | null, children: string[], stat: RawStat) => void,
  ): void;
  exists(
    path: string,
    watcher: ((ev: unknown) => void) | undefined,
    cb: (e: RawException | null, stat: RawStat | null) => void,
  ): void;
}

function wrapError(e: RawException, what: string): ZkError {
  return new ZkError(e.getCode(), `${what}: ${e.toString()}`);
}

/** A ZooKeeper client with promise-returning calls. */
export class ZkClient {
  readonly #c: RawClient;
  readonly #listeners = new Set<(ev: ZkSessionEvent) => void>();
  #state: ZkSessionEvent | "connecting" = "connecting";
  #watchdog: ReturnType<typeof setInterval> | undefined;

  /** Creates the client and starts connecting to `servers` ("h:p,h:p"). */
  constructor(servers: string, sessionTimeoutMs: number) {
    this.#c = zookeeper.createClient(servers, {
      sessionTimeout: sessionTimeoutMs,
      spinDelay: 200,
      retries: 0,
    }) as unknown as RawClient;
    const set = (ev: ZkSessionEvent) => () => {
      if (this.#state === "closed" || this.#state === "expired") return;
      this.#state = ev;
      if (ev === "disconnected") this.#startWatchdog(sessionTimeoutMs);
      else this.#stopWatchdog();
      for (const l of [...this.#listeners]) l(ev);
    };
    this.#c.on("connected", set("connected"));
    this.#c.on("connectedReadOnly", set("connected"));
    this.#c.on("disconnected", set("disconnected"));
    this.#c.on("expired", set("expired"));
    this.#c.connect();
  }

  /**
   * The library clears its connect timeout as soon as the TCP connection is up, so a server that
   * accepts connections but does not answer the handshake (one that is still starting) would hold
   * the client forever. While disconnected, the socket is reset every so often, which makes the
   * library try again (the next server, for an ensemble).
   */
  #startWatchdog(sessionTimeoutMs: number): void {
    if (this.#watchdog !== undefined) return;
    const every = Math.max(300, Math.min(1000, Math.floor(sessionTimeoutMs / 4)));
    this.#watchdog = setInterval(() => {
      if (this.#state !== "disconnected") return this.#stopWatchdog();
      const cm = (this.#c as unknown as { connectionManager?: { socket?: { destroy(): void } } })
        .connectionManager;
      cm?.socket?.destroy();
    }, every);
  }

  #stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** The current session state. */
  get state(): ZkSessionEvent | "connecting" {
    return this.#state;
  }

  /** The negotiated session timeout (the requested one until connected). */
  get sessionTimeoutMs(): number {
    return this.#c.getSessionTimeout();
  }

  /** The session id as hex (for logs). */
  get sessionId(): string {
    return Array.from(this.#c.getSessionId(), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Calls `fn` on every session state change; returns the unsubscribe function. */
  onSession(fn: (ev: ZkSessionEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Resolves once connected; rejects after `ms` or when the session expired. */
  waitConnected(ms: number, what: string): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ZkError(ZkCode.CONNECTION_LOSS, `${what}: no connection within ${ms} ms`));
      }, ms);
      const off = this.onSession((ev) => {
        if (ev === "connected") {
          clearTimeout(timer);
          off();
          resolve();
        } else if (ev === "expired" || ev === "closed") {
          clearTimeout(timer);
          off();
          reject(new ZkError(ZkCode.SESSION_EXPIRED, `${what}: session ${ev}`));
        }
      });
    });
  }

  create(path: string, data: Uint8Array | null, mode: number): Promise<string> {
    return new Promise((resolve, reject) =>
      this.#c.create(
        path,
        data === null ? null : Buffer.from(data),
        mode,
        (e, p) => e ? reject(wrapError(e, `create ${path}`)) : resolve(p),
      )
    );
  }

  /** Creates `path` and its missing parents as persistent nodes; an existing node is fine. */
  async mkdirs(path: string): Promise<void> {
    let at = "";
    for (const part of path.split("/").filter((p) => p !== "")) {
      at += `/${part}`;
      try {
        await this.create(at, null, ZkMode.PERSISTENT);
      } catch (e) {
        if (!(e instanceof ZkError && e.code === ZkCode.NODE_EXISTS)) throw e;
      }
    }
  }

  remove(path: string, version = -1): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#c.remove(path, version, (e) => e ? reject(wrapError(e, `remove ${path}`)) : resolve())
    );
  }

  getData(
    path: string,
    watch?: () => void,
  ): Promise<{ data: Uint8Array; version: number }> {
    return new Promise((resolve, reject) =>
      this.#c.getData(
        path,
        watch ? () => watch() : undefined,
        (e, data, stat) =>
          e ? reject(wrapError(e, `getData ${path}`)) : resolve({
            data: data === null ? new Uint8Array(0) : new Uint8Array(data),
            version: stat.version,
          }),
      )
    );
  }

  setData(path: string, data: Uint8Array, version = -1): Promise<number> {
    return new Promise((resolve, reject) =>
      this.#c.setData(
        path,
        Buffer.from(data),
        version,
        (e, stat) => e ? reject(wrapError(e, `setData ${path}`)) : resolve(stat.version),
      )
    );
  }

  getChildren(path: string, watch?: () => void): Promise<string[]> {
    return new Promise((resolve, reject) =>
      this.#c.getChildren(
        path,
        watch ? () => watch() : undefined,
        (e, children) => e ? reject(wrapError(e, `getChildren ${path}`)) : resolve(children),
      )
    );
  }

  /**
   * Closes the session (its ephemeral nodes go away) and waits, at most `ms`, until the
   * connection is closed.
   */
  async close(ms = 5000): Promise<void> {
    if (this.#state === "closed") return;
    const was = this.#state;
    this.#state = "closed";
    this.#stopWatchdog();
    for (const l of [...this.#listeners]) l("closed");
    this.#listeners.clear();
    if (was === "expired") {
      this.#c.close();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.#c.on("state", onState);
      function onState(s: unknown) {
        if (String(s).startsWith("DISCONNECTED") || String(s).startsWith("CLOSED")) done();
      }
      const c = this.#c;
      function done() {
        clearTimeout(timer);
        c.removeListener("state", onState);
        resolve();
      }
      this.#c.close();
    });
  }
}
