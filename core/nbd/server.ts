/**
 * An NBD server (newstyle, fixed handshake) over any set of exports.
 *
 * Handshake: NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT,
 * NBD_OPT_STRUCTURED_REPLY, and NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT with the one
 * context "base:allocation"; any other option gets NBD_REP_ERR_UNSUP (TLS and extended headers
 * are not offered). Transmission: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (FUA on the writing
 * ones, NO_HOLE on WRITE_ZEROES), BLOCK_STATUS (REQ_ONE) and DISC. Many requests run at once on a
 * connection and their replies leave in completion order, matched by handle.
 *
 * Replies are simple until the client asks for structured replies; then a READ is answered with
 * one OFFSET_DATA chunk (or an ERROR chunk), BLOCK_STATUS with one BLOCK_STATUS chunk, and the
 * other commands still with simple replies (the protocol allows both for them). BLOCK_STATUS
 * reports where the export is allocated ({@linkcode NbdExport.extents}: for a VDI, which of its
 * objects exist), so qemu-img, nbdcopy and nbdinfo --map skip what was never written.
 *
 * Bad input never takes the server down and keeps a connection usable whenever the protocol lets
 * it resynchronise:
 * - a request past the end of the export, an unknown command or flag, or a READ above
 *   {@linkcode NBD_MAX_PAYLOAD}: EINVAL, and the connection goes on;
 * - a WRITE above NBD_MAX_PAYLOAD (its payload would have to be read to stay in step), a bad
 *   request or option magic, unknown client flags, a handshake that does not end within
 *   {@linkcode NBD_HANDSHAKE_TIMEOUT_MS}: the connection is closed;
 * - an unknown export: NBD_REP_ERR_UNKNOWN (or, for NBD_OPT_EXPORT_NAME, which has no error
 *   reply, the connection is closed as the protocol requires).
 * A WRITE runs only once its whole payload has arrived: a client that goes away in the middle of a
 * request leaves nothing of it behind. Requests already running when a client goes away finish.
 *
 * @module
 */

import {
  NBD_HANDSHAKE_TIMEOUT_MS,
  NBD_MAX_CONNECTIONS,
  NBD_MAX_EXTENTS,
  NBD_MAX_INFLIGHT_BYTES,
  NBD_MAX_INFLIGHT_PER_CONNECTION,
  NBD_MAX_OPTION_DATA,
  NBD_MAX_PAYLOAD,
} from "../limits.ts";
import { BufferPool } from "../buffer_pool.ts";
import { ExactReader, UnexpectedEofError, writeAll } from "../net/exact_reader.ts";
import {
  BASE_ALLOCATION,
  type BlockExtent,
  ClientFlag,
  Cmd,
  CmdFlag,
  decodeGoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeRequest,
  decodeUtf8,
  encodeBlockStatusChunk,
  encodeChunkHeader,
  encodeErrorChunk,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeMetaContextReplyData,
  encodeOffsetDataHead,
  encodeOptionError,
  encodeOptionReply,
  encodeServerReplyData,
  encodeSimpleReply,
  Errno,
  HandshakeFlag,
  IHAVEOPT,
  Info,
  type NbdRequest,
  Opt,
  OPTION_HEADER_SIZE,
  Rep,
  ReplyFlag,
  ReplyType,
  REQUEST_MAGIC,
  REQUEST_SIZE,
  SIMPLE_REPLY_SIZE,
  TxFlag,
} from "./protocol.ts";

/** One export as the server drives it. Offsets and lengths are checked against `size` first. */
export interface NbdExport {
  /** Size in bytes. */
  readonly size: number;
  /** Writes, trims and write-zeroes get EPERM. */
  readonly readOnly: boolean;
  /** Text for NBD_INFO_DESCRIPTION. */
  readonly description?: string;
  /** Preferred I/O size for NBD_INFO_BLOCK_SIZE (a power of two ≤ NBD_MAX_PAYLOAD). */
  readonly preferredBlockSize?: number;
  /**
   * False when a second connection to the export would be refused (a writer holding a VDI lock),
   * so NBD_FLAG_CAN_MULTI_CONN is not offered; offered when absent.
   */
  readonly multiConn?: boolean;
  /**
   * Reads. The result may be a buffer of the server's pool (core/buffer_pool.ts,
   * {@linkcode NbdServerOptions}): the server gives it back once the reply is sent.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Writes. `data` is lent: it must not be used once the returned promise settles. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes the range read as zeros; `unmap` lets it release storage. */
  zero(offset: number, length: number, unmap: boolean): Promise<void>;
  /** Makes every write that completed before the call durable. */
  flush(): Promise<void>;
  /**
   * Allocation of `length` bytes at `offset` for the "base:allocation" context: extents in order,
   * covering a prefix of the range (at least one byte) with AllocationState flags. Absent: the
   * whole export is reported as data.
   */
  extents?(offset: number, length: number): Promise<BlockExtent[]>;
  /** Releases the export (connection ended, or NBD_OPT_INFO answered). */
  close(): void;
}

/** An export name for NBD_OPT_LIST. */
export interface NbdExportEntry {
  name: string;
  description?: string;
}

/** Where exports come from. */
export interface NbdExportProvider {
  /** Every export, for NBD_OPT_LIST. */
  list(): Promise<NbdExportEntry[]>;
  /**
   * Opens an export; null when there is none of that name. Other failures throw, and their
   * message is sent to the client: NBD_REP_ERR_POLICY for {@linkcode NbdOpenRefused}, else
   * NBD_REP_ERR_SHUTDOWN (the store cannot serve now). `use` is false for NBD_OPT_INFO, which
   * only describes the export (no data is served through it, so nothing needs to be held).
   */
  open(name: string, opts?: { use: boolean }): Promise<NbdExport | null>;
}

/** open() refused the export on purpose (it is in use by another writer, …). */
export class NbdOpenRefused extends Error {
  override name = "NbdOpenRefused";
}

/** A failed command with the errno the client gets (other errors become EIO and are reported). */
export class NbdCommandError extends Error {
  override name = "NbdCommandError";
  readonly errno: number;

  constructor(errno: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.errno = errno;
  }
}

/** Things the server cannot resolve by itself, for the log. */
export interface NbdServerEvents {
  /** A connection was closed because of a protocol violation (or too many connections). */
  onProtocolError?(remote: string, message: string): void;
  /** A command failed with an unexpected error (the client got EIO). */
  onCommandError?(remote: string, err: unknown): void;
}

/** Where the server listens. */
export interface NbdListenSpec {
  hostname: string;
  port: number;
}

/** Options of {@linkcode NbdServer.listen}. */
export interface NbdServerOptions {
  /**
   * The pool write payloads are taken from and read data is given back to (core/buffer_pool.ts);
   * default: a pool of the server's own. Share it with whatever the exports read into, so pooled
   * read buffers come back to it once their reply is sent.
   */
  buffers?: BufferPool;
}

/** A running NBD server. */
export class NbdServer {
  readonly #listener: Deno.Listener;
  readonly #provider: NbdExportProvider;
  readonly #events: NbdServerEvents;
  readonly #buffers: BufferPool;
  readonly #conns = new Set<Deno.Conn>();
  readonly #sessions = new Set<Promise<void>>();
  #stopped = false;

  private constructor(
    listener: Deno.Listener,
    provider: NbdExportProvider,
    events: NbdServerEvents,
    options: NbdServerOptions,
  ) {
    this.#listener = listener;
    this.#provider = provider;
    this.#events = events;
    this.#buffers = options.buffers ?? new BufferPool();
  }

  /** Starts listening; throws if the address is taken. */
  static listen(
    spec: NbdListenSpec,
    provider: NbdExportProvider,
    events: NbdServerEvents = {},
    options: NbdServerOptions = {},
  ): NbdServer {
    const listener = Deno.listen({ hostname: spec.hostname, port: spec.port });
    const s = new NbdServer(listener, provider, events, options);
    s.#acceptLoop();
    return s;
  }

  /** The TCP port bound (useful with port 0). */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Stops accepting connections; existing ones keep being served. */
  stopListening(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#listener.close();
    } catch (_alreadyClosed) {
      // closing twice is harmless
    }
  }

  /**
   * Stops listening, closes every connection (requests already running finish, within
   * `deadlineMs`) and waits for the sessions to end.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.stopListening();
    for (const c of this.#conns) closeQuietly(c);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#sessions]),
      new Promise((r) => timer = setTimeout(r, deadlineMs)),
    ]);
    clearTimeout(timer);
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopped) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (_closed) {
        // accept() fails once the listener is closed: that ends the loop.
        return;
      }
      const remote = remoteOf(conn);
      if (this.#conns.size >= NBD_MAX_CONNECTIONS) {
        this.#events.onProtocolError?.(remote, "too many NBD connections");
        closeQuietly(conn);
        continue;
      }
      (conn as Deno.TcpConn).setNoDelay(true);
      this.#conns.add(conn);
      const session: Promise<void> = new NbdSession(
        conn,
        remote,
        this.#provider,
        this.#events,
        this.#buffers,
      ).run()
        .finally(() => {
          this.#conns.delete(conn);
          this.#sessions.delete(session);
          closeQuietly(conn);
        });
      this.#sessions.add(session);
    }
  }
}

/** Transmission flags of an export. */
export function transmissionFlags(exp: NbdExport): number {
  let flags = TxFlag.HAS_FLAGS | TxFlag.SEND_FLUSH;
  if (exp.multiConn !== false) flags |= TxFlag.CAN_MULTI_CONN;
  if (exp.readOnly) flags |= TxFlag.READ_ONLY;
  else flags |= TxFlag.SEND_FUA | TxFlag.SEND_TRIM | TxFlag.SEND_WRITE_ZEROES;
  return flags;
}

/** Flags each command accepts. */
const ALLOWED_FLAGS: Record<number, number> = {
  [Cmd.READ]: 0,
  [Cmd.WRITE]: CmdFlag.FUA,
  [Cmd.FLUSH]: 0,
  [Cmd.TRIM]: CmdFlag.FUA,
  [Cmd.WRITE_ZEROES]: CmdFlag.FUA | CmdFlag.NO_HOLE,
  [Cmd.DISC]: 0,
  [Cmd.BLOCK_STATUS]: CmdFlag.REQ_ONE,
};

/** The id of "base:allocation", the one metadata context served. */
const ALLOCATION_CONTEXT_ID = 1;

/** What a command answers: read data, block status extents, or nothing. */
type CommandOutput = Uint8Array | { extents: BlockExtent[] } | undefined;

/** Option data we read and throw away before answering NBD_REP_ERR_TOO_BIG (more: disconnect). */
const MAX_SKIPPED_OPTION_DATA = 16 * 1024 * 1024;
/**
 * Replies up to this size are copied behind their header and go out in one write; larger ones go
 * as two writes (the header alone costs a syscall, less than copying a large reply).
 */
const COALESCE_LIMIT = 64 * 1024;

/** Closes the connection (protocol violation). */
class Disconnect extends Error {
  override name = "Disconnect";
}

/** One client connection: handshake, then transmission. */
class NbdSession {
  readonly #conn: Deno.Conn;
  readonly #remote: string;
  readonly #provider: NbdExportProvider;
  readonly #events: NbdServerEvents;
  /** The server's pool: write payloads come from it, read data goes back to it. */
  readonly #buffers: BufferPool;
  readonly #reader: ExactReader;
  #writeChain: Promise<void> = Promise.resolve();
  #broken = false;
  #noZeroes = false;
  /** NBD_OPT_STRUCTURED_REPLY was agreed. */
  #structured = false;
  /** "base:allocation" was selected with NBD_OPT_SET_META_CONTEXT. */
  #allocationContext = false;
  #inflight = 0;
  #inflightBytes = 0;
  #wake: (() => void) | null = null;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    conn: Deno.Conn,
    remote: string,
    provider: NbdExportProvider,
    events: NbdServerEvents,
    buffers: BufferPool,
  ) {
    this.#conn = conn;
    this.#remote = remote;
    this.#provider = provider;
    this.#events = events;
    this.#buffers = buffers;
    this.#reader = new ExactReader(conn);
  }

  async run(): Promise<void> {
    let exp: NbdExport | null = null;
    const timer = setTimeout(() => {
      this.#events.onProtocolError?.(this.#remote, "NBD handshake timed out");
      closeQuietly(this.#conn);
    }, NBD_HANDSHAKE_TIMEOUT_MS);
    try {
      try {
        exp = await this.#handshake();
      } finally {
        clearTimeout(timer);
      }
      if (exp !== null) await this.#transmission(exp);
    } catch (e) {
      if (e instanceof Disconnect) {
        this.#events.onProtocolError?.(this.#remote, e.message);
      } else if (!(e instanceof UnexpectedEofError) && !isConnectionGone(e)) {
        this.#events.onProtocolError?.(this.#remote, e instanceof Error ? e.message : String(e));
      }
    } finally {
      // Requests already running finish and reply (or fail quietly) before the export goes.
      await Promise.allSettled([...this.#pending]);
      await this.#writeChain;
      exp?.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Handshake

  async #handshake(): Promise<NbdExport | null> {
    await this.#send(encodeGreeting(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES));
    const cf = new Uint8Array(4);
    if (!(await this.#reader.readFull(cf))) return null;
    const clientFlags = new DataView(cf.buffer).getUint32(0);
    if ((clientFlags & ~(ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES)) !== 0) {
      throw new Disconnect(`unknown NBD client flags 0x${clientFlags.toString(16)}`);
    }
    this.#noZeroes = (clientFlags & ClientFlag.NO_ZEROES) !== 0;
    for (;;) {
      const hdr = new Uint8Array(OPTION_HEADER_SIZE);
      if (!(await this.#reader.readFull(hdr))) return null;
      const { magic, option, length } = decodeOptionHeader(hdr);
      if (magic !== IHAVEOPT) throw new Disconnect("bad NBD option magic");
      if (length > NBD_MAX_OPTION_DATA) {
        if (option === Opt.EXPORT_NAME || length > MAX_SKIPPED_OPTION_DATA) {
          throw new Disconnect(`NBD option ${option} with ${length} bytes of data`);
        }
        await this.#reader.skip(length);
        await this.#optionError(option, Rep.ERR_TOO_BIG, `option data of ${length} bytes`);
        continue;
      }
      const data = new Uint8Array(length);
      if (length > 0 && !(await this.#reader.readFull(data))) return null;
      switch (option) {
        case Opt.EXPORT_NAME:
          return await this.#exportName(data);
        case Opt.ABORT:
          // The client may close without reading the ACK: a failed send changes nothing.
          await this.#send(encodeOptionReply(option, Rep.ACK)).catch(() => {});
          return null;
        case Opt.LIST:
          await this.#list(data);
          break;
        case Opt.INFO:
        case Opt.GO: {
          const exp = await this.#infoOrGo(option, data);
          if (exp !== null) return exp;
          break;
        }
        case Opt.STRUCTURED_REPLY:
          if (data.length !== 0) {
            await this.#optionError(
              option,
              Rep.ERR_INVALID,
              "NBD_OPT_STRUCTURED_REPLY takes no data",
            );
          } else {
            this.#structured = true;
            await this.#send(encodeOptionReply(option, Rep.ACK));
          }
          break;
        case Opt.LIST_META_CONTEXT:
        case Opt.SET_META_CONTEXT:
          await this.#metaContext(option, data);
          break;
        default:
          await this.#optionError(option, Rep.ERR_UNSUP, `option ${option} is not supported`);
      }
    }
  }

  async #exportName(data: Uint8Array): Promise<NbdExport> {
    const name = decodeUtf8(data);
    // NBD_OPT_EXPORT_NAME has no error reply: the protocol says to close the connection.
    if (name === null) throw new Disconnect("export name is not UTF-8");
    let exp: NbdExport | null;
    try {
      exp = await this.#provider.open(name, { use: true });
    } catch (e) {
      throw new Disconnect(`cannot open export '${name}': ${errText(e)}`);
    }
    if (exp === null) throw new Disconnect(`no export '${name}'`);
    try {
      await this.#send(encodeExportNameReply(exp.size, transmissionFlags(exp), this.#noZeroes));
    } catch (e) {
      exp.close();
      throw e;
    }
    return exp;
  }

  async #list(data: Uint8Array): Promise<void> {
    if (data.length !== 0) {
      await this.#optionError(Opt.LIST, Rep.ERR_INVALID, "NBD_OPT_LIST takes no data");
      return;
    }
    let entries: NbdExportEntry[];
    try {
      entries = await this.#provider.list();
    } catch (e) {
      await this.#optionError(Opt.LIST, Rep.ERR_SHUTDOWN, `cannot list exports: ${errText(e)}`);
      return;
    }
    for (const e of entries) {
      await this.#send(
        encodeOptionReply(Opt.LIST, Rep.SERVER, encodeServerReplyData(e.name, e.description)),
      );
    }
    await this.#send(encodeOptionReply(Opt.LIST, Rep.ACK));
  }

  /** NBD_OPT_INFO or NBD_OPT_GO; resolves with the export when GO succeeded. */
  async #infoOrGo(option: number, data: Uint8Array): Promise<NbdExport | null> {
    const go = decodeGoRequest(data);
    if (go === null) {
      await this.#optionError(option, Rep.ERR_INVALID, "malformed NBD_OPT_INFO/GO data");
      return null;
    }
    let exp: NbdExport | null;
    try {
      exp = await this.#provider.open(go.name, { use: option === Opt.GO });
    } catch (e) {
      const rep = e instanceof NbdOpenRefused ? Rep.ERR_POLICY : Rep.ERR_SHUTDOWN;
      await this.#optionError(option, rep, `cannot open '${go.name}': ${errText(e)}`);
      return null;
    }
    if (exp === null) {
      await this.#optionError(option, Rep.ERR_UNKNOWN, `no export '${go.name}'`);
      return null;
    }
    let keep = false;
    try {
      await this.#send(
        encodeOptionReply(option, Rep.INFO, encodeInfoExport(exp.size, transmissionFlags(exp))),
      );
      for (const t of new Set(go.infos)) {
        let info: Uint8Array | null = null;
        if (t === Info.NAME) info = encodeInfoText(Info.NAME, go.name);
        if (t === Info.DESCRIPTION && exp.description) {
          info = encodeInfoText(Info.DESCRIPTION, exp.description);
        }
        if (t === Info.BLOCK_SIZE) {
          info = encodeInfoBlockSize(1, exp.preferredBlockSize ?? 4096, NBD_MAX_PAYLOAD);
        }
        if (info !== null) await this.#send(encodeOptionReply(option, Rep.INFO, info));
      }
      await this.#send(encodeOptionReply(option, Rep.ACK));
      keep = option === Opt.GO;
      return keep ? exp : null;
    } finally {
      if (!keep) exp.close();
    }
  }

  /**
   * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: "base:allocation" is the only context.
   * LIST with no query, or a query of "base:" or "base:allocation", names it; SET selects it when
   * asked by its full name (and deselects it otherwise: each SET replaces the last).
   */
  async #metaContext(option: number, data: Uint8Array): Promise<void> {
    const set = option === Opt.SET_META_CONTEXT;
    if (set && !this.#structured) {
      await this.#optionError(
        option,
        Rep.ERR_INVALID,
        "NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first",
      );
      return;
    }
    const req = decodeMetaContextRequest(data);
    if (req === null) {
      await this.#optionError(option, Rep.ERR_INVALID, "malformed meta context request");
      return;
    }
    const matches = set ? req.queries.includes(BASE_ALLOCATION) : req.queries.length === 0 ||
      req.queries.some((q) => q === "base:" || q === BASE_ALLOCATION);
    if (set) this.#allocationContext = matches;
    if (matches) {
      await this.#send(
        encodeOptionReply(
          option,
          Rep.META_CONTEXT,
          encodeMetaContextReplyData(ALLOCATION_CONTEXT_ID, BASE_ALLOCATION),
        ),
      );
    }
    await this.#send(encodeOptionReply(option, Rep.ACK));
  }

  #optionError(option: number, type: number, message: string): Promise<void> {
    return this.#send(encodeOptionError(option, type, message));
  }

  // -------------------------------------------------------------------------------------------
  // Transmission

  async #transmission(exp: NbdExport): Promise<void> {
    while (!this.#broken) {
      await this.#room(0);
      const hdr = new Uint8Array(REQUEST_SIZE);
      if (!(await this.#reader.readFull(hdr))) return;
      const req = decodeRequest(hdr);
      if (req.magic !== REQUEST_MAGIC) {
        throw new Disconnect(`bad NBD request magic 0x${req.magic.toString(16)}`);
      }
      if (req.type === Cmd.WRITE) {
        if (req.length > NBD_MAX_PAYLOAD) {
          throw new Disconnect(`NBD write of ${req.length} bytes (limit ${NBD_MAX_PAYLOAD})`);
        }
        await this.#room(req.length);
        // Lent to the export, as the sheep's own server lends object writes: the buffer goes
        // back to the pool once the write is answered (the export keeps no reference to it).
        const data = this.#buffers.take(req.length);
        // A payload cut short ends the connection here, before anything is written.
        if (data.length > 0 && !(await this.#reader.readFull(data))) {
          this.#buffers.give(data);
          return;
        }
        this.#dispatch(req, req.length, async () => {
          try {
            return await this.#write(exp, req, data);
          } finally {
            this.#buffers.give(data);
          }
        });
        continue;
      }
      if (req.type === Cmd.DISC) return;
      const bytes = req.type === Cmd.READ && req.length <= NBD_MAX_PAYLOAD ? req.length : 0;
      if (bytes > 0) await this.#room(bytes);
      this.#dispatch(req, bytes, () => this.#command(exp, req));
    }
  }

  /** Runs one command and sends its reply; never rejects. */
  #dispatch(req: NbdRequest, bytes: number, run: () => Promise<CommandOutput>): void {
    this.#inflight++;
    this.#inflightBytes += bytes;
    const p: Promise<void> = (async () => {
      let error: number = Errno.OK;
      let message = "";
      let out: CommandOutput;
      try {
        out = await run();
      } catch (e) {
        if (e instanceof NbdCommandError) {
          error = e.errno;
          message = e.message;
        } else {
          error = Errno.EIO;
          message = "I/O error";
          this.#events.onCommandError?.(this.#remote, e);
        }
        out = undefined;
      }
      if (this.#structured && (req.type === Cmd.READ || req.type === Cmd.BLOCK_STATUS)) {
        await this.#structuredReply(req, error, message, out);
      } else {
        await this.#reply(error, req.handle, out instanceof Uint8Array ? out : undefined);
      }
    })().finally(() => {
      this.#inflight--;
      this.#inflightBytes -= bytes;
      this.#pending.delete(p);
      const wake = this.#wake;
      this.#wake = null;
      wake?.();
    });
    this.#pending.add(p);
  }

  async #write(exp: NbdExport, req: NbdRequest, data: Uint8Array): Promise<undefined> {
    checkFlags(req);
    if (exp.readOnly) throw new NbdCommandError(Errno.EPERM, "read-only export");
    const offset = checkRange(exp, req);
    if (data.length > 0) await exp.write(offset, data);
    if (req.flags & CmdFlag.FUA) await exp.flush();
    return undefined;
  }

  async #command(exp: NbdExport, req: NbdRequest): Promise<CommandOutput> {
    checkFlags(req);
    switch (req.type) {
      case Cmd.READ: {
        if (req.length > NBD_MAX_PAYLOAD) {
          throw new NbdCommandError(Errno.EINVAL, `read of ${req.length} bytes`);
        }
        const offset = checkRange(exp, req);
        if (req.length === 0) return undefined;
        const data = await exp.read(offset, req.length);
        if (data.length !== req.length) {
          throw new Error(`export read ${data.length} bytes instead of ${req.length}`);
        }
        return data;
      }
      case Cmd.FLUSH:
        await exp.flush();
        return undefined;
      case Cmd.TRIM:
      case Cmd.WRITE_ZEROES: {
        if (exp.readOnly) throw new NbdCommandError(Errno.EPERM, "read-only export");
        const offset = checkRange(exp, req);
        const unmap = req.type === Cmd.TRIM || (req.flags & CmdFlag.NO_HOLE) === 0;
        if (req.length > 0) await exp.zero(offset, req.length, unmap);
        if (req.flags & CmdFlag.FUA) await exp.flush();
        return undefined;
      }
      case Cmd.BLOCK_STATUS: {
        if (!this.#structured || !this.#allocationContext) {
          throw new NbdCommandError(Errno.EINVAL, "no metadata context was selected");
        }
        if (req.length === 0) throw new NbdCommandError(Errno.EINVAL, "block status of 0 bytes");
        const offset = checkRange(exp, req);
        let extents = exp.extents
          ? await exp.extents(offset, req.length)
          : [{ length: req.length, flags: 0 }];
        extents = clipExtents(extents, req.length, NBD_MAX_EXTENTS);
        if (req.flags & CmdFlag.REQ_ONE) extents = extents.slice(0, 1);
        return { extents };
      }
    }
    throw new NbdCommandError(Errno.EINVAL, `unsupported NBD command ${req.type}`);
  }

  /** Waits until one more request (carrying `bytes` of payload) fits the in-flight bounds. */
  async #room(bytes: number): Promise<void> {
    while (
      this.#inflight >= NBD_MAX_INFLIGHT_PER_CONNECTION ||
      (this.#inflight > 0 && this.#inflightBytes + bytes > NBD_MAX_INFLIGHT_BYTES)
    ) {
      await new Promise<void>((r) => this.#wake = r);
    }
  }

  /**
   * Sends a simple reply. A client gone by now is noticed by the read loop: nothing to do here.
   * Read data in a buffer of the server's pool (core/buffer_pool.ts) goes back to it once sent.
   */
  async #reply(error: number, handle: Uint8Array, data?: Uint8Array): Promise<void> {
    const len = data?.length ?? 0;
    if (len > 0 && len <= COALESCE_LIMIT) {
      const buf = encodeSimpleReply(error, handle, len);
      buf.set(data!, SIMPLE_REPLY_SIZE);
      this.#buffers.give(data!);
      return await this.#send(buf).catch(() => {});
    }
    try {
      await this.#send(encodeSimpleReply(error, handle), data).catch(() => {});
    } finally {
      if (data !== undefined) this.#buffers.give(data);
    }
  }

  /**
   * Answers a READ or BLOCK_STATUS once structured replies are agreed: one chunk, flagged DONE (an
   * ERROR chunk for a failure). Read data in a buffer of the server's pool goes back to it.
   */
  async #structuredReply(
    req: NbdRequest,
    error: number,
    message: string,
    out: CommandOutput,
  ): Promise<void> {
    const done = ReplyFlag.DONE;
    if (error !== Errno.OK) {
      return await this.#send(encodeErrorChunk(req.handle, error, message)).catch(() => {});
    }
    if (out instanceof Uint8Array) {
      try {
        const head = encodeOffsetDataHead(req.handle, req.offset, out.length, done);
        await this.#send(head, out).catch(() => {});
      } finally {
        this.#buffers.give(out);
      }
      return;
    }
    if (out !== undefined) {
      const chunk = encodeBlockStatusChunk(req.handle, ALLOCATION_CONTEXT_ID, out.extents, done);
      return await this.#send(chunk).catch(() => {});
    }
    // A READ of 0 bytes: nothing to carry.
    await this.#send(encodeChunkHeader(done, ReplyType.NONE, req.handle, 0)).catch(() => {});
  }

  /** Writes `head` (and `tail`) after everything queued before; rejects when the client is gone. */
  #send(head: Uint8Array, tail?: Uint8Array): Promise<void> {
    const next = this.#writeChain.then(async () => {
      if (this.#broken) throw new Deno.errors.BrokenPipe("NBD connection closed");
      try {
        await writeAll(this.#conn, head);
        if (tail && tail.length > 0) await writeAll(this.#conn, tail);
      } catch (e) {
        this.#broken = true;
        closeQuietly(this.#conn);
        throw e;
      }
    });
    this.#writeChain = next.catch(() => {});
    return next;
  }
}

/**
 * `extents` cut to the request: at most `length` bytes in all and `max` extents, empty ones
 * dropped, neighbours with the same flags merged. Never empty for a non-empty request (an export
 * that reported nothing is reported as data).
 */
export function clipExtents(extents: BlockExtent[], length: number, max: number): BlockExtent[] {
  const out: BlockExtent[] = [];
  let left = length;
  for (const e of extents) {
    if (left === 0) break;
    const n = Math.min(e.length, left);
    if (n <= 0) continue;
    const last = out.at(-1);
    if (last !== undefined && last.flags === e.flags) {
      last.length += n;
    } else {
      if (out.length === max) break;
      out.push({ length: n, flags: e.flags });
    }
    left -= n;
  }
  if (out.length === 0) out.push({ length, flags: 0 });
  return out;
}

function checkFlags(req: NbdRequest): void {
  const allowed = ALLOWED_FLAGS[req.type] ?? 0;
  if ((req.flags & ~allowed) !== 0) {
    throw new NbdCommandError(
      Errno.EINVAL,
      `flags 0x${req.flags.toString(16)} not allowed on command ${req.type}`,
    );
  }
}

/** The request's offset as a number, or EINVAL when the range leaves the export. */
function checkRange(exp: NbdExport, req: NbdRequest): number {
  if (req.offset + BigInt(req.length) > BigInt(exp.size)) {
    throw new NbdCommandError(
      Errno.EINVAL,
      `range ${req.offset}+${req.length} is past the end (${exp.size} bytes)`,
    );
  }
  return Number(req.offset);
}

function remoteOf(conn: Deno.Conn): string {
  const a = conn.remoteAddr as Deno.NetAddr;
  return `${a.hostname}:${a.port}`;
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
    e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.ConnectionAborted;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
