/**
 * A minimal Deno FFI binding to corosync's closed process group library (libcpg.so.4) and the
 * few libc calls its event loop needs. Nothing is loaded at import: `Cpg.open()` dlopens the
 * libraries, so that only a sheep started with `-c corosync` needs libcpg.
 *
 * Event loop (never blocks the JavaScript thread):
 * - `wait()` calls libc poll() on the CPG fd and on an eventfd, as an FFI symbol declared
 *   `nonblocking` (it runs on a helper thread and returns a Promise); `wake()` writes the eventfd
 *   so that close() need not wait for a timeout;
 * - when the CPG fd is readable, `dispatch()` calls cpg_dispatch(CS_DISPATCH_ALL) on the main
 *   thread. libcpg then calls the deliver and confchg callbacks synchronously; they only copy
 *   their arguments into `CpgEvent`s, which dispatch() returns in delivery order. cpg_dispatch
 *   keeps a 1 MiB buffer on the C stack below the callbacks, so V8 needs
 *   `--v8-flags=--stack-size=4096` (the launcher, compile.sh and the tests pass it); without it a
 *   callback fails with a RangeError, reported as a CpgError that names the flag.
 * - `mcast()` calls cpg_mcast_joined(CPG_TYPE_AGREED) as a nonblocking symbol too (an IPC round
 *   trip to corosync that would otherwise stall the daemon while corosync is stopped), one at a
 *   time, retrying CS_ERR_TRY_AGAIN (flow control) with a growing pause up to a deadline.
 *
 * @module
 */

/** cs_error_t values (corotypes.h). */
export const CsError = {
  OK: 1,
  LIBRARY: 2,
  VERSION: 3,
  INIT: 4,
  TIMEOUT: 5,
  TRY_AGAIN: 6,
  INVALID_PARAM: 7,
  NO_MEMORY: 8,
  BAD_HANDLE: 9,
  BUSY: 10,
  ACCESS: 11,
  NOT_EXIST: 12,
  NAME_TOO_LONG: 13,
  EXIST: 14,
  NO_SPACE: 15,
  INTERRUPT: 16,
  NAME_NOT_FOUND: 17,
  NO_RESOURCES: 18,
  NOT_SUPPORTED: 19,
  BAD_OPERATION: 20,
  FAILED_OPERATION: 21,
  MESSAGE_ERROR: 22,
  QUEUE_FULL: 23,
  QUEUE_NOT_AVAILABLE: 24,
  BAD_FLAGS: 25,
  TOO_BIG: 26,
  NO_SECTIONS: 27,
  CONTEXT_NOT_FOUND: 28,
  TOO_MANY_GROUPS: 30,
  SECURITY: 100,
} as const;

const CS_NAMES = new Map<number, string>(
  Object.entries(CsError).map(([k, v]) => [v, `CS_ERR_${k}`]),
);

/** "CS_ERR_LIBRARY (2)". */
export function csErrorName(code: number): string {
  return `${code === CsError.OK ? "CS_OK" : CS_NAMES.get(code) ?? "CS_ERR_?"} (${code})`;
}

/** cpg_reason_t values: why a process is in a confchg list. */
export const CpgReason = { JOIN: 1, LEAVE: 2, NODEDOWN: 3, NODEUP: 4, PROCDOWN: 5 } as const;

const CPG_TYPE_AGREED = 2;
const CS_DISPATCH_ALL = 2;
const CPG_MAX_NAME_LENGTH = 128;
const CPG_NAME_SIZE = 4 + CPG_MAX_NAME_LENGTH;
const CPG_ADDRESS_SIZE = 12;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/** One member of a CPG group as libcpg names it. */
export interface CpgAddress {
  nodeid: number;
  pid: number;
  /** A CpgReason value (in left and joined lists). */
  reason: number;
}

/** What one cpg_dispatch delivered, in order. */
export type CpgEvent =
  | { type: "deliver"; nodeid: number; pid: number; msg: Uint8Array }
  | { type: "confchg"; members: CpgAddress[]; left: CpgAddress[]; joined: CpgAddress[] };

/** A libcpg call failed. `code` is the cs_error_t (0 when the failure is not libcpg's). */
export class CpgError extends Error {
  override name = "CpgError";
  readonly code: number;
  /** What cpg_dispatch delivered before it failed (dispatch() only). */
  delivered: CpgEvent[] = [];
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

const CPG_SYMBOLS = {
  cpg_initialize: { parameters: ["buffer", "buffer"], result: "i32" },
  cpg_finalize: { parameters: ["u64"], result: "i32" },
  cpg_fd_get: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_local_get: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_join: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_leave: { parameters: ["u64", "buffer"], result: "i32" },
  cpg_dispatch: { parameters: ["u64", "i32"], result: "i32" },
  cpg_mcast_joined: {
    parameters: ["u64", "i32", "buffer", "u32"],
    result: "i32",
    nonblocking: true,
  },
  cpg_max_atomic_msgsize_get: { parameters: ["u64", "buffer"], result: "i32" },
} as const;

const LIBC_SYMBOLS = {
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

type CpgLib = Deno.DynamicLibrary<typeof CPG_SYMBOLS>;
type LibC = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;

const DELIVER_DEF = {
  parameters: ["u64", "pointer", "u32", "u32", "pointer", "usize"],
  result: "void",
} as const;
const CONFCHG_DEF = {
  parameters: ["u64", "pointer", "pointer", "usize", "pointer", "usize", "pointer", "usize"],
  result: "void",
} as const;

/** Default library names (overridable for tests of the error path). */
export const LIBCPG = "libcpg.so.4";
const LIBC = "libc.so.6";

function loadLibrary<S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
  hint: string,
): Deno.DynamicLibrary<S> {
  try {
    return Deno.dlopen(name, symbols);
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new CpgError(0, `cannot load ${name} (${hint}): ${why}`, { cause: e });
  }
}

function groupName(group: string): Uint8Array {
  const bytes = new TextEncoder().encode(group);
  if (bytes.length === 0 || bytes.length > CPG_MAX_NAME_LENGTH) {
    throw new CpgError(
      CsError.INVALID_PARAM,
      `CPG group name must be 1-${CPG_MAX_NAME_LENGTH} bytes`,
    );
  }
  const out = new Uint8Array(CPG_NAME_SIZE);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  out.set(bytes, 4);
  return out;
}

function addresses(p: Deno.PointerValue, n: number | bigint): CpgAddress[] {
  const count = Number(n);
  if (p === null || count === 0) return [];
  const v = new DataView(Deno.UnsafePointerView.getArrayBuffer(p, count * CPG_ADDRESS_SIZE));
  const out: CpgAddress[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * CPG_ADDRESS_SIZE;
    out.push({
      nodeid: v.getUint32(o, true),
      pid: v.getUint32(o + 4, true),
      reason: v.getUint32(o + 8, true),
    });
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One CPG connection joined to one group. */
export class Cpg {
  /** This corosync node's id. */
  readonly nodeid: number;
  /** The group name. */
  readonly group: string;
  readonly #lib: CpgLib;
  readonly #libc: LibC;
  readonly #handle: bigint;
  readonly #fd: number;
  readonly #wakeFd: number;
  readonly #name: Uint8Array;
  readonly #deliver: Deno.UnsafeCallback<typeof DELIVER_DEF>;
  readonly #confchg: Deno.UnsafeCallback<typeof CONFCHG_DEF>;
  readonly #pollfds = new Uint8Array(16);
  #events: CpgEvent[] = [];
  #callbackError: unknown = null;
  #mcastChain: Promise<void> = Promise.resolve();
  #polling: Promise<unknown> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  #joined = false;

  private constructor(
    lib: CpgLib,
    libc: LibC,
    group: string,
    init: (
      deliver: Deno.UnsafeCallback<typeof DELIVER_DEF>,
      confchg: Deno.UnsafeCallback<typeof CONFCHG_DEF>,
    ) => { handle: bigint; fd: number; nodeid: number; wakeFd: number },
  ) {
    this.#lib = lib;
    this.#libc = libc;
    this.group = group;
    this.#name = groupName(group);
    this.#deliver = new Deno.UnsafeCallback(DELIVER_DEF, (_h, _g, nodeid, pid, msg, len) => {
      try {
        const n = Number(len);
        const copy = n === 0 || msg === null
          ? new Uint8Array(0)
          : new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(msg, n).slice(0));
        this.#events.push({ type: "deliver", nodeid, pid, msg: copy });
      } catch (e) {
        this.#callbackError ??= e;
      }
    });
    this.#confchg = new Deno.UnsafeCallback(
      CONFCHG_DEF,
      (_h, _g, mp, mn, lp, ln, jp, jn) => {
        try {
          this.#events.push({
            type: "confchg",
            members: addresses(mp, mn),
            left: addresses(lp, ln),
            joined: addresses(jp, jn),
          });
        } catch (e) {
          this.#callbackError ??= e;
        }
      },
    );
    try {
      const r = init(this.#deliver, this.#confchg);
      this.#handle = r.handle;
      this.#fd = r.fd;
      this.nodeid = r.nodeid;
      this.#wakeFd = r.wakeFd;
    } catch (e) {
      this.#deliver.close();
      this.#confchg.close();
      throw e;
    }
    const v = new DataView(this.#pollfds.buffer);
    v.setInt32(0, this.#fd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt32(8, this.#wakeFd, true);
    v.setInt16(12, POLLIN, true);
  }

  /**
   * Loads libcpg (and libc), connects to corosync and joins `group`. Throws CpgError with a
   * one-line message when the library is missing or corosync does not answer.
   */
  static open(group: string, libName = LIBCPG): Cpg {
    const lib = loadLibrary(libName, CPG_SYMBOLS, "install corosync's libcpg4 package");
    let libc: LibC;
    try {
      libc = loadLibrary(LIBC, LIBC_SYMBOLS, "the C library");
    } catch (e) {
      lib.close();
      throw e;
    }
    try {
      const cpg = new Cpg(lib, libc, group, (deliver, confchg) => {
        const callbacks = new BigUint64Array([
          BigInt(Deno.UnsafePointer.value(deliver.pointer)),
          BigInt(Deno.UnsafePointer.value(confchg.pointer)),
        ]);
        const h = new BigUint64Array(1);
        const rc = lib.symbols.cpg_initialize(h, callbacks);
        if (rc !== CsError.OK) {
          throw new CpgError(
            rc,
            rc === CsError.LIBRARY
              ? "cannot connect to corosync (is corosync running?): cpg_initialize returned " +
                csErrorName(rc)
              : `cpg_initialize failed: ${csErrorName(rc)}`,
          );
        }
        const handle = h[0];
        const fail = (what: string, code: number): never => {
          lib.symbols.cpg_finalize(handle);
          throw new CpgError(code, `${what} failed: ${csErrorName(code)}`);
        };
        const fdBuf = new Int32Array(1);
        let rc2 = lib.symbols.cpg_fd_get(handle, fdBuf);
        if (rc2 !== CsError.OK) fail("cpg_fd_get", rc2);
        const nodeBuf = new Uint32Array(1);
        rc2 = lib.symbols.cpg_local_get(handle, nodeBuf);
        if (rc2 !== CsError.OK) fail("cpg_local_get", rc2);
        const wakeFd = libc.symbols.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wakeFd < 0) fail("eventfd", 0);
        return { handle, fd: fdBuf[0], nodeid: nodeBuf[0], wakeFd };
      });
      return cpg;
    } catch (e) {
      lib.close();
      libc.close();
      throw e;
    }
  }

  /** Joins the group (retrying CS_ERR_TRY_AGAIN until `deadlineMs`). */
  async join(deadlineMs = 10_000): Promise<void> {
    await this.#retry(
      "cpg_join",
      deadlineMs,
      () => this.#lib.symbols.cpg_join(this.#handle, this.#name),
    );
    this.#joined = true;
  }

  /** The largest message corosync sends without fragmenting it (for reports). */
  maxAtomicMessageSize(): number {
    const b = new Uint32Array(1);
    const rc = this.#lib.symbols.cpg_max_atomic_msgsize_get(this.#handle, b);
    return rc === CsError.OK ? b[0] : 0;
  }

  /**
   * Multicasts `msg` to the group in agreed (total) order. Calls are serialized; flow control
   * (CS_ERR_TRY_AGAIN) is retried until `deadlineMs`.
   */
  mcast(msg: Uint8Array, deadlineMs = 30_000): Promise<void> {
    const run = this.#mcastChain.then(() => this.#mcastNow(msg, deadlineMs));
    this.#mcastChain = run.catch(() => {});
    return run;
  }

  async #mcastNow(msg: Uint8Array, deadlineMs: number): Promise<void> {
    if (this.#closed) throw new CpgError(CsError.BAD_HANDLE, "CPG connection closed");
    // The message must stay where it is while the helper thread sends it: keep our own copy.
    const data = msg.slice();
    const iov = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data))),
      BigInt(data.length),
    ]);
    await this.#retry(
      "cpg_mcast_joined",
      deadlineMs,
      () => this.#lib.symbols.cpg_mcast_joined(this.#handle, CPG_TYPE_AGREED, iov, 1),
    );
    // Keep `data` reachable until the call returned.
    void data.length;
  }

  async #retry(
    what: string,
    deadlineMs: number,
    call: () => number | Promise<number>,
  ): Promise<void> {
    const end = Date.now() + deadlineMs;
    let pause = 1;
    for (;;) {
      if (this.#closed) throw new CpgError(CsError.BAD_HANDLE, "CPG connection closed");
      const rc = await call();
      if (rc === CsError.OK) return;
      if (rc !== CsError.TRY_AGAIN) throw new CpgError(rc, `${what} failed: ${csErrorName(rc)}`);
      if (Date.now() >= end) {
        throw new CpgError(
          rc,
          `${what}: corosync still busy after ${deadlineMs} ms (flow control)`,
        );
      }
      await sleep(pause);
      pause = Math.min(pause * 2, 100);
    }
  }

  /**
   * Waits (on a helper thread) until the CPG fd is readable or broken, or wake() was called.
   * "ready": call dispatch(); "woken": wake() was called; "closed": the connection is closed.
   */
  async wait(timeoutMs = -1): Promise<"ready" | "woken" | "timeout" | "closed"> {
    if (this.#closed) return "closed";
    const p = this.#libc.symbols.poll(this.#pollfds, 2n, timeoutMs);
    this.#polling = p;
    let n: number;
    try {
      n = await p;
    } finally {
      this.#polling = null;
    }
    if (this.#closed) return "closed";
    if (n < 0) return "ready"; // EINTR: let dispatch() tell
    if (n === 0) return "timeout";
    const v = new DataView(this.#pollfds.buffer);
    const cpgRevents = v.getInt16(6, true);
    const wakeRevents = v.getInt16(14, true);
    if (wakeRevents & POLLIN) {
      this.#libc.symbols.read(this.#wakeFd, new Uint8Array(8), 8n);
      if (!(cpgRevents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))) return "woken";
    }
    return "ready";
  }

  /** Makes a pending wait() return "woken". */
  wake(): void {
    if (this.#closed) return;
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#libc.symbols.write(this.#wakeFd, one, 8n);
  }

  /**
   * Runs cpg_dispatch(CS_DISPATCH_ALL) and returns what it delivered. Throws CpgError with
   * CS_ERR_LIBRARY when corosync is gone (what came before is in the error's `delivered`).
   */
  dispatch(): CpgEvent[] {
    if (this.#closed) throw new CpgError(CsError.BAD_HANDLE, "CPG connection closed");
    this.#events = [];
    let rc: number;
    try {
      rc = this.#lib.symbols.cpg_dispatch(this.#handle, CS_DISPATCH_ALL);
    } catch (e) {
      // V8 refuses to enter a callback this deep below its stack limit.
      this.#callbackError ??= e;
      rc = CsError.OK;
    }
    const events = this.#events;
    this.#events = [];
    if (this.#callbackError !== null) {
      const e = this.#callbackError;
      this.#callbackError = null;
      const stack = e instanceof RangeError
        ? " (run Deno with --v8-flags=--stack-size=4096: cpg_dispatch needs a deep C stack)"
        : "";
      const err = new CpgError(0, `a CPG callback failed: ${String(e)}${stack}`, { cause: e });
      err.delivered = events;
      throw err;
    }
    if (rc !== CsError.OK && rc !== CsError.TRY_AGAIN) {
      const err = new CpgError(
        rc,
        rc === CsError.LIBRARY
          ? `lost the connection to corosync: cpg_dispatch returned ${csErrorName(rc)}`
          : `cpg_dispatch failed: ${csErrorName(rc)}`,
      );
      err.delivered = events;
      throw err;
    }
    return events;
  }

  /**
   * Leaves the group (when joined and `leave`), finalizes the handle and unloads the libraries.
   * Waits for a pending wait() and mcast() to return first. Idempotent.
   */
  close(leave = true): Promise<void> {
    this.#closing ??= this.#close(leave);
    return this.#closing;
  }

  async #close(leave: boolean): Promise<void> {
    // Let queued multicasts finish (or fail) before the handle goes away.
    const mcasts = this.#mcastChain;
    this.#closed = true;
    this.#wakeNow();
    await mcasts;
    await this.#polling?.catch(() => {});
    if (leave && this.#joined) this.#lib.symbols.cpg_leave(this.#handle, this.#name);
    this.#lib.symbols.cpg_finalize(this.#handle);
    this.#libc.symbols.close(this.#wakeFd);
    this.#deliver.close();
    this.#confchg.close();
    this.#lib.close();
    this.#libc.close();
  }

  /** wake() even after #closed was set. */
  #wakeNow(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#libc.symbols.write(this.#wakeFd, one, 8n);
  }
}
