/**
 * The NBD protocol (newstyle, fixed): magic numbers, option and command codes, flags, errno values
 * and the byte layouts of the handshake and transmission messages, after the protocol document of
 * the NBD project (doc/proto.md). Pure: encoders return bytes, decoders take bytes. All integers
 * are big-endian (network order), unlike the Sheepdog protocol.
 *
 * @module
 */

/** "NBDMAGIC", the first 8 bytes a server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": the newstyle server greeting and the magic of every option request. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Magic of every option reply. */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
/** Magic of every transmission request. */
export const REQUEST_MAGIC = 0x25609513;
/** Magic of a simple reply. */
export const SIMPLE_REPLY_MAGIC = 0x67446698;

/** Handshake flags (server, 16 bits). */
export const HandshakeFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

/** Client flags (32 bits), sent right after the greeting. */
export const ClientFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

/** Option codes. */
export const Opt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

/** Option reply types; errors have bit 31 set. */
export const Rep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
} as const;

/** Information types of NBD_OPT_INFO / NBD_OPT_GO. */
export const Info = {
  EXPORT: 0,
  NAME: 1,
  DESCRIPTION: 2,
  BLOCK_SIZE: 3,
} as const;

/** Transmission flags (16 bits) of an export. */
export const TxFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

/** Transmission commands. */
export const Cmd = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
  RESIZE: 8,
} as const;

/** Command flags (16 bits). */
export const CmdFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
} as const;

/** The errno values a simple reply may carry (the protocol fixes their numbers). */
export const Errno = {
  OK: 0,
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

/** Size of the server greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export const GREETING_SIZE = 18;
/** Size of an option request header: magic, option, length. */
export const OPTION_HEADER_SIZE = 16;
/** Size of a transmission request header. */
export const REQUEST_SIZE = 28;
/** Size of a simple reply header. */
export const SIMPLE_REPLY_SIZE = 16;
/** Zero padding after NBD_OPT_EXPORT_NAME's reply unless NO_ZEROES was agreed. */
export const EXPORT_NAME_PADDING = 124;

/** The newstyle greeting. */
export function encodeGreeting(flags: number): Uint8Array {
  const out = new Uint8Array(GREETING_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, NBD_MAGIC);
  v.setBigUint64(8, IHAVEOPT);
  v.setUint16(16, flags);
  return out;
}

/** An option request header. */
export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

/** Decodes the 16-byte option request header. */
export function decodeOptionHeader(b: Uint8Array): OptionHeader {
  const v = view(b, OPTION_HEADER_SIZE);
  return { magic: v.getBigUint64(0), option: v.getUint32(8), length: v.getUint32(12) };
}

/** Encodes an option request header (for clients and tests). */
export function encodeOptionHeader(option: number, length: number): Uint8Array {
  const out = new Uint8Array(OPTION_HEADER_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, IHAVEOPT);
  v.setUint32(8, option);
  v.setUint32(12, length);
  return out;
}

/** An option reply: magic, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data?: Uint8Array): Uint8Array {
  const len = data?.length ?? 0;
  const out = new Uint8Array(20 + len);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, OPTION_REPLY_MAGIC);
  v.setUint32(8, option);
  v.setUint32(12, type);
  v.setUint32(16, len);
  if (data) out.set(data, 20);
  return out;
}

/** An error reply with a human-readable message. */
export function encodeOptionError(option: number, type: number, message: string): Uint8Array {
  return encodeOptionReply(option, type, new TextEncoder().encode(message));
}

/** NBD_REP_SERVER's data: name length, name, optional description. */
export function encodeServerReplyData(name: string, description = ""): Uint8Array {
  const n = new TextEncoder().encode(name);
  const d = new TextEncoder().encode(description);
  const out = new Uint8Array(4 + n.length + d.length);
  new DataView(out.buffer).setUint32(0, n.length);
  out.set(n, 4);
  out.set(d, 4 + n.length);
  return out;
}

/** NBD_INFO_EXPORT: size and transmission flags. */
export function encodeInfoExport(size: number, flags: number): Uint8Array {
  const out = new Uint8Array(12);
  const v = new DataView(out.buffer);
  v.setUint16(0, Info.EXPORT);
  v.setBigUint64(2, BigInt(size));
  v.setUint16(10, flags);
  return out;
}

/** NBD_INFO_NAME or NBD_INFO_DESCRIPTION: the type and the text. */
export function encodeInfoText(type: number, text: string): Uint8Array {
  const t = new TextEncoder().encode(text);
  const out = new Uint8Array(2 + t.length);
  new DataView(out.buffer).setUint16(0, type);
  out.set(t, 2);
  return out;
}

/** NBD_INFO_BLOCK_SIZE: minimum, preferred and maximum block sizes. */
export function encodeInfoBlockSize(min: number, preferred: number, max: number): Uint8Array {
  const out = new Uint8Array(14);
  const v = new DataView(out.buffer);
  v.setUint16(0, Info.BLOCK_SIZE);
  v.setUint32(2, min);
  v.setUint32(6, preferred);
  v.setUint32(10, max);
  return out;
}

/** The reply to NBD_OPT_EXPORT_NAME: size, flags and (unless NO_ZEROES) 124 zeros. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Uint8Array {
  const out = new Uint8Array(10 + (noZeroes ? 0 : EXPORT_NAME_PADDING));
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(size));
  v.setUint16(8, flags);
  return out;
}

/** The data of NBD_OPT_INFO / NBD_OPT_GO. */
export interface GoRequest {
  name: string;
  /** Information types the client asked for. */
  infos: number[];
}

/** Decodes NBD_OPT_INFO / NBD_OPT_GO data; null when malformed (NBD_REP_ERR_INVALID). */
export function decodeGoRequest(data: Uint8Array): GoRequest | null {
  if (data.length < 6) return null;
  const v = view(data, data.length);
  const name = decodeString(data, v, 0);
  if (name === null || name.end + 2 > data.length) return null;
  const count = v.getUint16(name.end);
  if (name.end + 2 + 2 * count !== data.length) return null;
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(v.getUint16(name.end + 2 + 2 * i));
  return { name: name.text, infos };
}

/** Encodes NBD_OPT_INFO / NBD_OPT_GO data (for clients and tests). */
export function encodeGoRequest(name: string, infos: number[] = []): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(4 + n.length + 2 + 2 * infos.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, n.length);
  out.set(n, 4);
  v.setUint16(4 + n.length, infos.length);
  infos.forEach((t, i) => v.setUint16(4 + n.length + 2 + 2 * i, t));
  return out;
}

/** A transmission request header. */
export interface NbdRequest {
  magic: number;
  flags: number;
  type: number;
  /** The client's opaque handle (cookie), echoed in the reply. */
  handle: Uint8Array;
  offset: bigint;
  length: number;
}

/** Decodes the 28-byte request header (the handle is copied). */
export function decodeRequest(b: Uint8Array): NbdRequest {
  const v = view(b, REQUEST_SIZE);
  return {
    magic: v.getUint32(0),
    flags: v.getUint16(4),
    type: v.getUint16(6),
    handle: b.slice(8, 16),
    offset: v.getBigUint64(16),
    length: v.getUint32(24),
  };
}

/** Encodes a request header (for clients and tests). */
export function encodeRequest(
  type: number,
  handle: bigint,
  offset: bigint,
  length: number,
  flags = 0,
): Uint8Array {
  const out = new Uint8Array(REQUEST_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, REQUEST_MAGIC);
  v.setUint16(4, flags);
  v.setUint16(6, type);
  v.setBigUint64(8, handle);
  v.setBigUint64(16, offset);
  v.setUint32(24, length);
  return out;
}

/** A simple reply header (`dataLength` bytes of room after it for a READ's payload). */
export function encodeSimpleReply(error: number, handle: Uint8Array, dataLength = 0): Uint8Array {
  const out = new Uint8Array(SIMPLE_REPLY_SIZE + dataLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, SIMPLE_REPLY_MAGIC);
  v.setUint32(4, error);
  out.set(handle, 8);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Structured replies and metadata contexts (NBD_OPT_STRUCTURED_REPLY, NBD_OPT_*_META_CONTEXT,
// NBD_CMD_BLOCK_STATUS)

/** Magic of a structured reply chunk. */
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
/** Size of a structured reply chunk header: magic, flags, type, handle, length. */
export const CHUNK_HEADER_SIZE = 20;

/** Structured reply chunk flags. */
export const ReplyFlag = {
  /** The last chunk of the reply. */
  DONE: 1 << 0,
} as const;

/** Structured reply chunk types. */
export const ReplyType = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

/** Status flags of the "base:allocation" metadata context. */
export const AllocationState = {
  /** Not backed by storage. */
  HOLE: 1 << 0,
  /** Reads as zeros. */
  ZERO: 1 << 1,
} as const;

/** The one metadata context the server offers. */
export const BASE_ALLOCATION = "base:allocation";

/** A chunk header for `handle`; `room` bytes of payload space follow it in the same buffer. */
export function encodeChunkHeader(
  flags: number,
  type: number,
  handle: Uint8Array,
  length: number,
  room = 0,
): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_SIZE + room);
  const v = new DataView(out.buffer);
  v.setUint32(0, STRUCTURED_REPLY_MAGIC);
  v.setUint16(4, flags);
  v.setUint16(6, type);
  out.set(handle, 8);
  v.setUint32(16, length);
  return out;
}

/**
 * The head of an NBD_REPLY_TYPE_OFFSET_DATA chunk carrying `dataLength` bytes read at `offset`
 * (chunk header and offset; the data follows on the wire).
 */
export function encodeOffsetDataHead(
  handle: Uint8Array,
  offset: bigint,
  dataLength: number,
  flags: number,
): Uint8Array {
  const out = encodeChunkHeader(flags, ReplyType.OFFSET_DATA, handle, 8 + dataLength, 8);
  new DataView(out.buffer).setBigUint64(CHUNK_HEADER_SIZE, offset);
  return out;
}

/** An NBD_REPLY_TYPE_ERROR chunk (with DONE): `errno` and a human-readable message. */
export function encodeErrorChunk(handle: Uint8Array, errno: number, message: string): Uint8Array {
  const text = new TextEncoder().encode(message).subarray(0, 4096);
  const out = encodeChunkHeader(
    ReplyFlag.DONE,
    ReplyType.ERROR,
    handle,
    6 + text.length,
    6 + text.length,
  );
  const v = new DataView(out.buffer);
  v.setUint32(CHUNK_HEADER_SIZE, errno);
  v.setUint16(CHUNK_HEADER_SIZE + 4, text.length);
  out.set(text, CHUNK_HEADER_SIZE + 6);
  return out;
}

/** One extent of a block status reply. */
export interface BlockExtent {
  /** Bytes (> 0). */
  length: number;
  /** Status flags of the context (AllocationState for base:allocation). */
  flags: number;
}

/** An NBD_REPLY_TYPE_BLOCK_STATUS chunk for context `contextId`. */
export function encodeBlockStatusChunk(
  handle: Uint8Array,
  contextId: number,
  extents: BlockExtent[],
  flags: number,
): Uint8Array {
  const length = 4 + 8 * extents.length;
  const out = encodeChunkHeader(flags, ReplyType.BLOCK_STATUS, handle, length, length);
  const v = new DataView(out.buffer);
  v.setUint32(CHUNK_HEADER_SIZE, contextId);
  extents.forEach((e, i) => {
    v.setUint32(CHUNK_HEADER_SIZE + 4 + 8 * i, e.length);
    v.setUint32(CHUNK_HEADER_SIZE + 8 + 8 * i, e.flags);
  });
  return out;
}

/** The data of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. */
export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

/** Decodes meta context option data; null when malformed (NBD_REP_ERR_INVALID). */
export function decodeMetaContextRequest(data: Uint8Array): MetaContextRequest | null {
  if (data.length < 8) return null;
  const v = view(data, data.length);
  const name = decodeString(data, v, 0);
  if (name === null || name.end + 4 > data.length) return null;
  const count = v.getUint32(name.end);
  const queries: string[] = [];
  let at = name.end + 4;
  for (let i = 0; i < count; i++) {
    const q = decodeString(data, v, at);
    if (q === null) return null;
    queries.push(q.text);
    at = q.end;
  }
  return at === data.length ? { exportName: name.text, queries } : null;
}

/** Encodes meta context option data (for clients and tests). */
export function encodeMetaContextRequest(exportName: string, queries: string[]): Uint8Array {
  const enc = new TextEncoder();
  const name = enc.encode(exportName);
  const qs = queries.map((q) => enc.encode(q));
  const out = new Uint8Array(8 + name.length + qs.reduce((n, q) => n + 4 + q.length, 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, name.length);
  out.set(name, 4);
  v.setUint32(4 + name.length, qs.length);
  let at = 8 + name.length;
  for (const q of qs) {
    v.setUint32(at, q.length);
    out.set(q, at + 4);
    at += 4 + q.length;
  }
  return out;
}

/** The data of an NBD_REP_META_CONTEXT reply: the context's id and name. */
export function encodeMetaContextReplyData(id: number, name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(4 + n.length);
  new DataView(out.buffer).setUint32(0, id);
  out.set(n, 4);
  return out;
}

/**
 * The UTF-8 string at `at` of option data, prefixed by its u32 length (`v` views `data`), and
 * where it ends; null when it runs past the data or is not valid UTF-8.
 */
function decodeString(
  data: Uint8Array,
  v: DataView,
  at: number,
): { text: string; end: number } | null {
  if (at + 4 > data.length) return null;
  const end = at + 4 + v.getUint32(at);
  if (end > data.length) return null;
  const text = decodeUtf8(data.subarray(at + 4, end));
  return text === null ? null : { text, end };
}

function view(b: Uint8Array, need: number): DataView {
  if (b.length < need) throw new RangeError(`need ${need} bytes, got ${b.length}`);
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** Strict UTF-8 decoding; null for invalid text. */
export function decodeUtf8(b: Uint8Array): string | null {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {
    return null;
  }
}
