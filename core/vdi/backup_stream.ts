/**
 * The `dog vdi backup` stream, format version 1 (protocol sheet §15): an 8-byte header, then one
 * record per changed data object (16-byte header and the bytes), then an end record. All integers
 * little-endian. Pure encoding, decoding and the diff trimming v1.0 applies per object.
 *
 * @module
 */

/** Format version in the header. */
export const BACKUP_VERSION = 1;
/** Magic in the header. */
export const BACKUP_MAGIC = 0x11921192;
/** Bytes of the stream header. */
export const BACKUP_HEADER_SIZE = 8;
/** Bytes of a record header. */
export const RECORD_HEADER_SIZE = 16;
/** idx of the end record. */
export const END_IDX = 0xffffffff;
/** Unit of the trimming: equal 512-byte sectors at both ends of an object are dropped. */
export const TRIM_BLOCK = 512;

/** One record: bytes [offset, offset + length) of data object idx. */
export interface BackupRecordHeader {
  idx: number;
  offset: number;
  length: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The stream header: version 1, magic 0x11921192. */
export function encodeBackupHeader(): Uint8Array {
  const out = new Uint8Array(BACKUP_HEADER_SIZE);
  const v = view(out);
  v.setUint32(0, BACKUP_VERSION, true);
  v.setUint32(4, BACKUP_MAGIC, true);
  return out;
}

/** True when `b` is a complete, valid stream header. */
export function isBackupHeader(b: Uint8Array): boolean {
  if (b.length !== BACKUP_HEADER_SIZE) return false;
  const v = view(b);
  return v.getUint32(0, true) === BACKUP_VERSION && v.getUint32(4, true) === BACKUP_MAGIC;
}

/** A record header (reserved word 0). */
export function encodeRecordHeader(r: BackupRecordHeader): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_SIZE);
  const v = view(out);
  v.setUint32(0, r.idx >>> 0, true);
  v.setUint32(4, r.offset >>> 0, true);
  v.setUint32(8, r.length >>> 0, true);
  return out;
}

/** The end record's header. */
export function encodeEndRecord(): Uint8Array {
  return encodeRecordHeader({ idx: END_IDX, offset: 0, length: 0 });
}

/** Decodes a 16-byte record header. */
export function decodeRecordHeader(b: Uint8Array): BackupRecordHeader {
  if (b.length < RECORD_HEADER_SIZE) throw new RangeError("short backup record header");
  const v = view(b);
  return { idx: v.getUint32(0, true), offset: v.getUint32(4, true), length: v.getUint32(8, true) };
}

function sameBlock(a: Uint8Array, b: Uint8Array | null, at: number, end: number): boolean {
  if (b === null) {
    for (let i = at; i < end; i++) if (a[i] !== 0) return false;
    return true;
  }
  for (let i = at; i < end; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * v1.0's trimming of one object's record: `to` is the object in the newer snapshot, `from` the
 * object in the older one (null = zeros). Leading and trailing 512-byte blocks equal in both are
 * dropped; what remains is [offset, offset + length). Length 0 means the objects are equal.
 */
export function trimDiff(
  to: Uint8Array,
  from: Uint8Array | null,
): { offset: number; length: number } {
  if (from !== null && from.length !== to.length) {
    throw new RangeError("objects of different sizes");
  }
  const size = to.length;
  let start = 0;
  while (start < size) {
    const end = Math.min(start + TRIM_BLOCK, size);
    if (!sameBlock(to, from, start, end)) break;
    start = end;
  }
  if (start >= size) return { offset: size, length: 0 };
  let end = size;
  for (;;) {
    const blockStart = Math.max(Math.floor((end - 1) / TRIM_BLOCK) * TRIM_BLOCK, start);
    if (!sameBlock(to, from, blockStart, end)) break;
    end = blockStart;
  }
  return { offset: start, length: end - start };
}

/** Reads exactly n bytes, or fewer at the end of the input. */
export type ExactReader = (n: number) => Promise<Uint8Array>;

/** Why a stream could not be read. */
export class BackupFormatError extends Error {
  override name = "BackupFormatError";
}

/**
 * Reads a backup stream: checks the header, then yields each record with its bytes until the end
 * record. BackupFormatError("corrupted") for a bad header, ("truncated") when the input ends
 * early.
 */
export async function* readBackupStream(
  read: ExactReader,
  maxLength: number,
): AsyncGenerator<BackupRecordHeader & { data: Uint8Array }> {
  const head = await read(BACKUP_HEADER_SIZE);
  if (!isBackupHeader(head)) throw new BackupFormatError("corrupted");
  yield* readBackupRecords(read, maxLength);
}

/**
 * The records of a stream whose header was read already, up to the end record. A record that
 * leaves an object of `maxLength` bytes is "corrupted"; an input that ends early "truncated".
 */
export async function* readBackupRecords(
  read: ExactReader,
  maxLength: number,
): AsyncGenerator<BackupRecordHeader & { data: Uint8Array }> {
  for (;;) {
    const rh = await read(RECORD_HEADER_SIZE);
    if (rh.length !== RECORD_HEADER_SIZE) throw new BackupFormatError("truncated");
    const r = decodeRecordHeader(rh);
    if (r.idx === END_IDX) return;
    if (r.length > maxLength || r.offset + r.length > maxLength) {
      throw new BackupFormatError("corrupted");
    }
    const data = await read(r.length);
    if (data.length !== r.length) throw new BackupFormatError("truncated");
    yield { ...r, data };
  }
}
