/**
 * A byte-level NBD client for tests: sends exactly what a test asks for (well-formed or not) and
 * decodes what the server answers, so tests can check replies, errors and disconnections.
 *
 * @module
 */

import { ExactReader, UnexpectedEofError, writeAll } from "../../net/exact_reader.ts";
import {
  CHUNK_HEADER_SIZE,
  ClientFlag,
  encodeGoRequest,
  encodeOptionHeader,
  encodeRequest,
  GREETING_SIZE,
  Info,
  OPTION_REPLY_MAGIC,
  Rep,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from "../protocol.ts";

/** One option reply. */
export interface OptionReply {
  option: number;
  type: number;
  data: Uint8Array;
}

/** One simple reply. */
export interface SimpleReply {
  error: number;
  handle: bigint;
  data: Uint8Array;
}

/** One structured reply chunk. */
export interface ReplyChunk {
  flags: number;
  type: number;
  handle: bigint;
  payload: Uint8Array;
}

/** A raw NBD connection. */
export class RawNbdClient {
  readonly conn: Deno.TcpConn;
  readonly #reader: ExactReader;
  /** READ lengths by handle, to know how much data follows a successful reply. */
  readonly #reads = new Map<bigint, number>();
  /** Handshake flags of the greeting. */
  handshakeFlags = 0;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#reader = new ExactReader(conn);
  }

  /** Connects and reads the greeting (checks its magic). */
  static async connect(port: number): Promise<RawNbdClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const c = new RawNbdClient(conn);
    const g = await c.readExact(GREETING_SIZE);
    const v = new DataView(g.buffer);
    if (v.getBigUint64(0) !== 0x4e42444d41474943n || v.getBigUint64(8) !== 0x49484156454f5054n) {
      throw new Error("not an NBD newstyle greeting");
    }
    c.handshakeFlags = v.getUint16(16);
    return c;
  }

  /** Connects and sends the client flags (fixed newstyle, no zeroes). */
  static async open(port: number): Promise<RawNbdClient> {
    const c = await RawNbdClient.connect(port);
    await c.send(u32(ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES));
    return c;
  }

  /** Connects and completes NBD_OPT_GO for `name`; throws on an error reply. */
  static async go(
    port: number,
    name: string,
  ): Promise<{ client: RawNbdClient; size: bigint; flags: number }> {
    const c = await RawNbdClient.open(port);
    const r = await c.goOrInfo(7, name);
    if ("error" in r) throw new Error(`NBD_OPT_GO ${name}: reply 0x${r.error.toString(16)}`);
    return { client: c, size: r.size, flags: r.flags };
  }

  send(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  async readExact(n: number): Promise<Uint8Array> {
    const b = new Uint8Array(n);
    if (n > 0 && !(await this.#reader.readFull(b))) throw new UnexpectedEofError(0);
    return b;
  }

  /** Sends an option with its data. */
  async option(option: number, data: Uint8Array = new Uint8Array(0)): Promise<void> {
    const buf = new Uint8Array(16 + data.length);
    buf.set(encodeOptionHeader(option, data.length));
    buf.set(data, 16);
    await this.send(buf);
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = await this.readExact(20);
    const v = new DataView(h.buffer);
    if (v.getBigUint64(0) !== OPTION_REPLY_MAGIC) throw new Error("bad option reply magic");
    const len = v.getUint32(16);
    return { option: v.getUint32(8), type: v.getUint32(12), data: await this.readExact(len) };
  }

  /** NBD_OPT_INFO (6) or NBD_OPT_GO (7); the export's size and flags, or the error reply. */
  async goOrInfo(
    option: number,
    name: string,
    infos: number[] = [],
  ): Promise<
    { size: bigint; flags: number; infos: Map<number, Uint8Array> } | {
      error: number;
      message: string;
    }
  > {
    await this.option(option, encodeGoRequest(name, infos));
    let size = -1n;
    let flags = 0;
    const got = new Map<number, Uint8Array>();
    for (;;) {
      const r = await this.readOptionReply();
      if (r.type === Rep.ACK) break;
      if (r.type & 0x80000000) {
        return { error: r.type, message: new TextDecoder().decode(r.data) };
      }
      if (r.type !== Rep.INFO) throw new Error(`unexpected reply type ${r.type}`);
      const v = new DataView(r.data.buffer);
      const t = v.getUint16(0);
      if (t === Info.EXPORT) {
        size = v.getBigUint64(2);
        flags = v.getUint16(10);
      }
      got.set(t, r.data);
    }
    if (size < 0n) throw new Error("no NBD_INFO_EXPORT before the ACK");
    return { size, flags, infos: got };
  }

  /** Sends a transmission request (and its payload). */
  async request(
    type: number,
    handle: bigint,
    offset: bigint | number,
    length: number,
    opts: { flags?: number; payload?: Uint8Array } = {},
  ): Promise<void> {
    if (type === 0) this.#reads.set(handle, length);
    const hdr = encodeRequest(type, handle, BigInt(offset), length, opts.flags ?? 0);
    if (opts.payload) {
      const buf = new Uint8Array(hdr.length + opts.payload.length);
      buf.set(hdr);
      buf.set(opts.payload, hdr.length);
      await this.send(buf);
    } else {
      await this.send(hdr);
    }
  }

  /** Reads one simple reply (with a READ's data when it succeeded). */
  async readReply(): Promise<SimpleReply> {
    const h = await this.readExact(16);
    const v = new DataView(h.buffer);
    if (v.getUint32(0) !== SIMPLE_REPLY_MAGIC) throw new Error("bad simple reply magic");
    const error = v.getUint32(4);
    const handle = v.getBigUint64(8);
    const len = this.#reads.get(handle);
    this.#reads.delete(handle);
    const data = error === 0 && len !== undefined ? await this.readExact(len) : new Uint8Array(0);
    return { error, handle, data };
  }

  /** One request and its reply. */
  async call(
    type: number,
    offset: bigint | number,
    length: number,
    opts: { flags?: number; payload?: Uint8Array } = {},
  ): Promise<SimpleReply> {
    const handle = BigInt(Math.floor(Math.random() * 2 ** 48));
    await this.request(type, handle, offset, length, opts);
    const r = await this.readReply();
    if (r.handle !== handle) throw new Error(`reply for handle ${r.handle}, expected ${handle}`);
    return r;
  }

  /** True when the server closed the connection (reads end) within `ms`. */
  async closedByServer(ms = 5000): Promise<boolean> {
    const buf = new Uint8Array(1);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    try {
      for (;;) {
        const n = await Promise.race([this.conn.read(buf).catch(() => null), timeout]);
        if (n === "timeout") return false;
        if (n === null) return true;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads one structured reply chunk (checks its magic). */
  async readChunk(): Promise<ReplyChunk> {
    const h = await this.readExact(CHUNK_HEADER_SIZE);
    const v = new DataView(h.buffer);
    if (v.getUint32(0) !== STRUCTURED_REPLY_MAGIC) {
      throw new Error(`bad structured reply magic 0x${v.getUint32(0).toString(16)}`);
    }
    return {
      flags: v.getUint16(4),
      type: v.getUint16(6),
      handle: v.getBigUint64(8),
      payload: await this.readExact(v.getUint32(16)),
    };
  }

  close(): void {
    try {
      this.conn.close();
    } catch (_alreadyClosed) {
      // the server closed it first
    }
  }
}

/** A big-endian u32. */
export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}
