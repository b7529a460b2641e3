/**
 * A VDI as a block device, over the Sheepdog client protocol: the byte-level reads, writes and
 * discards that dog's `vdi read|write` and the NBD export both need, done the way v1.0's clients
 * (QEMU's sheepdog driver, tgt) do them.
 *
 * - Open: GET_VDI_INFO by name and tag or snapshot id, then the inode header and its data index.
 * - Read: per data object, READ_OBJ of the owner named by data_vdi_id[idx]; an unallocated object
 *   reads as zeros.
 * - Write: in place (WRITE_OBJ) when the VDI owns the object; otherwise CREATE_AND_WRITE_OBJ, with
 *   CMD_COW and the owner's oid when a parent owns it (the gateway copies the rest), then the inode
 *   entry (WRITE_OBJ of 4 bytes at 4664 + 4·idx) names this VDI. The entry is written only after
 *   the object exists, so a crash between the two leaves an unreferenced object, never an entry
 *   that points at nothing. Sequential writers that send objects in pieces get one create per
 *   object (create_gather.ts), and the entries of creates running together are written together
 *   (entry_batcher.ts).
 * - Zero (TRIM, WRITE_ZEROES): whole objects lose their inode entry (the gateway then drops an
 *   object the VDI owned alone, as for v1.0's discard); partial ranges of allocated objects are
 *   overwritten with zeros, so a zeroed range always reads back as zeros.
 * - Snapshots and hyper volumes are read-only (READONLY). A working VDI that became a snapshot
 *   under us (`dog vdi snapshot` while it is in use) answers READONLY to writes: the volume then
 *   looks the name up again and carries on with the new working VDI, as QEMU's driver does.
 *
 * Requests in flight on one volume are ordered per data object (ObjectLocks): creates,
 * copy-on-write and discards hold the whole object, in-place writes and reads their byte range.
 * One VDI should be opened once per process and shared, so that every user goes through the same
 * locks and the same copy of the data index.
 *
 * Durability: a write resolves when the sheep acknowledged it, that is when every replica has it on
 * stable storage (fdatasync, unless the sheep runs with -n); flush() has nothing left to wait for.
 * With Flag.CMD_WRITEBACK among the write flags (the NBD export), a write resolves when every
 * replica has it, before it is durable, and flush() sends FLUSH_NODES, which makes every write
 * that resolved before it durable on every replica.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { BufferPool } from "../buffer_pool.ts";
import {
  Flag,
  Op,
  Res,
  SD_INODE_HEADER_SIZE,
  SD_MAX_VDI_LEN,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { decodeInodeHeader, type InodeHeader, isSnapshot } from "../proto/inode.ts";
import { SdError } from "../proto/sd_error.ts";
import { encodeFixedString } from "../proto/strings.ts";
import { oidToString, vidToDataOid, vidToVdiOid } from "../hash/oid.ts";
import type { Reply } from "../net/client.ts";
import { type DataIndex, INODE_FIRST_READ, PlainDataIndex, readDataIndex } from "./data_index.ts";
import { ObjectLocks } from "./object_locks.ts";
import { CreateGather } from "./create_gather.ts";
import { EntryBatcher } from "./entry_batcher.ts";
import { GroupSync } from "../store/group_sync.ts";

/**
 * Sends one request to a sheep and resolves with the reply (header and payload); rejects only when
 * the sheep cannot be reached. A TCP client, or the daemon's own request handler in process.
 */
export type SheepRequest = (req: SdReq, data?: Uint8Array) => Promise<Reply>;

/** A snapshot selector: id (non-zero) or tag (non-empty); neither is the working VDI. */
export interface SnapshotSelector {
  id: number;
  tag: string;
}

/** The working VDI. */
export const WORKING_VDI: SnapshotSelector = { id: 0, tag: "" };

/** Object requests kept in flight by one read, write or zero call. */
export const VOLUME_IO_WINDOW = 8;
/** Inode entries cleared by one request of a zero call (one page of data_vdi_id). */
const ZERO_ENTRIES_PER_REQUEST = 1024;
/** Offset of snap_ctime in the inode header. */
const SNAP_CTIME_OFFSET = 520;

/** An object request that failed: which object, which way, and the result (or the cause). */
export class VdiIoError extends SdError {
  override name = "VdiIoError";
  readonly op: "read" | "write";
  readonly oid: bigint;

  constructor(op: "read" | "write", oid: bigint, result: number, options?: ErrorOptions) {
    super(result, `${op} of object ${oidToString(oid)} failed`, options);
    this.op = op;
    this.oid = oid;
  }
}

/** name[256] ‖ tag[256], the payload of GET_VDI_INFO. */
function nameTagPayload(name: string, tag: string): Uint8Array {
  const out = new Uint8Array(2 * SD_MAX_VDI_LEN);
  out.set(encodeFixedString(name, SD_MAX_VDI_LEN), 0);
  out.set(encodeFixedString(tag, SD_MAX_VDI_LEN), SD_MAX_VDI_LEN);
  return out;
}

/** GET_VDI_INFO: the vid of `name` (and snapshot), or SdError with the result (NO_VDI, NO_TAG…). */
export async function lookupVdiId(
  request: SheepRequest,
  name: string,
  snap: SnapshotSelector = WORKING_VDI,
): Promise<number> {
  const payload = nameTagPayload(name, snap.tag);
  const req = SdReq.of(Op.GET_VDI_INFO, SD_PROTO_VER, {
    flags: Flag.CMD_WRITE,
    dataLength: payload.length,
  });
  req.vdi.snapid = snap.id;
  const { rsp } = await request(req, payload);
  if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result, `no VDI ${name}`);
  return rsp.vdi.vdiId;
}

/**
 * READ_OBJ; a reply shorter than asked (zero-trimmed at rsp.obj.offset) is widened with zeros, and
 * its buffer given back to `buffers` (if it is one of theirs).
 */
async function readObject(
  request: SheepRequest,
  buffers: BufferPool | undefined,
  oid: bigint,
  offset: number,
  length: number,
  flags = 0,
): Promise<Uint8Array> {
  const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: length, flags });
  req.obj.oid = oid;
  req.obj.offset = offset;
  let reply: Reply;
  try {
    reply = await request(req);
  } catch (e) {
    throw new VdiIoError("read", oid, Res.NETWORK_ERROR, { cause: e });
  }
  if (reply.rsp.result !== Res.SUCCESS) throw new VdiIoError("read", oid, reply.rsp.result);
  if (reply.data.length === length) return reply.data;
  const out = new Uint8Array(length);
  const at = Math.min(Number(reply.rsp.obj.offset), length);
  out.set(reply.data.subarray(0, length - at), at);
  buffers?.give(reply.data);
  return out;
}

/** The parts of a VDI a volume is built from (what dog loads with its own error reporting). */
export interface LoadedVdi {
  vid: number;
  header: InodeHeader;
  index: DataIndex;
}

/**
 * Reads the inode header and data index of `vid`. VdiIoError when a read fails. `buffers`: the
 * pool of the request's pooled replies (core/buffer_pool.ts), to give back those it is done with.
 */
export async function loadVdi(
  request: SheepRequest,
  vid: number,
  buffers?: BufferPool,
): Promise<LoadedVdi> {
  const read = (oid: bigint, offset: number, length: number) =>
    readObject(request, buffers, oid, offset, length);
  const head = await read(vidToVdiOid(vid), 0, INODE_FIRST_READ);
  const header = decodeInodeHeader(head);
  return { vid, header, index: await readDataIndex(header, head, read) };
}

/** Options of a volume. */
export interface VolumeOptions {
  /**
   * Extra flags of data and inode writes (dog -w: CMD_CACHE; the NBD export: CMD_WRITEBACK, which
   * flush() then completes).
   */
  writeFlags?: number;
  /**
   * The name the volume was opened by, for following the working VDI when it becomes a snapshot.
   * Without it a write to a VDI turned snapshot fails with READONLY.
   */
  name?: string;
  /**
   * The pool pooled read replies are given back to once copied, and pieces of new objects are
   * gathered in (core/buffer_pool.ts); default: a pool of the volume's own. Through the daemon's
   * own handler, pass the daemon's pool: the store reads into it.
   */
  buffers?: BufferPool;
}

/** One data object's share of a byte range. */
interface Piece {
  idx: number;
  /** Offset inside the object. */
  off: number;
  len: number;
  /** Offset inside the caller's range. */
  at: number;
}

/** A VDI opened for block I/O. */
export class VdiVolume {
  readonly #request: SheepRequest;
  readonly #locks = new ObjectLocks();
  readonly #writeFlags: number;
  readonly #name: string | undefined;
  readonly #buffers: BufferPool;
  #vid: number;
  #header: InodeHeader;
  #index: DataIndex;
  #reopening: Promise<void> | null = null;
  /** write() calls running (a sequential stream keeps several in flight). */
  #writesInFlight = 0;
  /** A writeback write was acknowledged since the last flush() began. */
  #unflushed = false;
  /**
   * Concurrent flush() calls share FLUSH_NODES requests (group commit): a call made while one is
   * in flight waits for the next, which starts when that one ends and is sent when anything is
   * unflushed by then (that one's writes too, when it failed).
   */
  readonly #flushGroup = new GroupSync(() => this.#flushNodes());
  readonly #gather: CreateGather;
  readonly #entries = new EntryBatcher((inodeVid, first, values) =>
    this.#writeEntries(first, values, inodeVid)
  );

  private constructor(request: SheepRequest, vdi: LoadedVdi, opts: VolumeOptions) {
    this.#request = request;
    this.#vid = vdi.vid;
    this.#header = vdi.header;
    this.#index = vdi.index;
    this.#writeFlags = opts.writeFlags ?? 0;
    this.#name = opts.name;
    this.#buffers = opts.buffers ?? new BufferPool();
    this.#gather = new CreateGather(
      (idx, off, data) => this.#withReopen(() => this.#writePiece(idx, off, data)),
      this.#buffers,
    );
    assert(Number.isSafeInteger(Number(vdi.header.vdiSize)), "VDI size beyond 2^53 bytes");
  }

  /**
   * Opens `name` (or one of its snapshots). SdError NO_VDI / NO_TAG when there is no such VDI,
   * VdiIoError when its inode cannot be read.
   */
  static async open(
    request: SheepRequest,
    name: string,
    snap: SnapshotSelector = WORKING_VDI,
    opts: VolumeOptions = {},
  ): Promise<VdiVolume> {
    const vid = await lookupVdiId(request, name, snap);
    const working = snap.id === 0 && snap.tag === "";
    return new VdiVolume(request, await loadVdi(request, vid, opts.buffers), {
      ...opts,
      name: working ? (opts.name ?? name) : undefined,
    });
  }

  /** A volume over an inode already read (dog reads it with v1.0's error lines). */
  static fromLoaded(request: SheepRequest, vdi: LoadedVdi, opts: VolumeOptions = {}): VdiVolume {
    return new VdiVolume(request, vdi, opts);
  }

  /** The vid I/O goes to (changes when the working VDI is snapshotted under us). */
  get vid(): number {
    return this.#vid;
  }

  /** The inode header as last read. */
  get header(): InodeHeader {
    return this.#header;
  }

  /** Size in bytes. */
  get size(): number {
    return Number(this.#header.vdiSize);
  }

  /** Bytes per data object. */
  get objectSize(): number {
    return 2 ** (this.#header.blockSizeShift || 22);
  }

  /** True for snapshots and hyper volumes (whose B-tree index this client does not update). */
  get readOnly(): boolean {
    return isSnapshot(this.#header) || !(this.#index instanceof PlainDataIndex);
  }

  /** The vid owning data object `idx` (0: unallocated). */
  owner(idx: number): number {
    return this.#index.get(idx);
  }

  /**
   * Reads `length` bytes at `offset`; holes read as zeros. INVALID_PARMS past the end. Through the
   * daemon's own handler the result may be a buffer of the store's pool (core/buffer_pool.ts; the
   * `buffers` option when shared): the caller owns it, and may give it back once done with it.
   */
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.#checkRange(offset, length);
    const pieces = [...this.#pieces(offset, length)];
    if (pieces.length === 1) return await this.#readPiece(pieces[0]);
    const out = new Uint8Array(length);
    await forEachBounded(pieces, VOLUME_IO_WINDOW, async (p) => {
      const piece = await this.#readPiece(p);
      out.set(piece, p.at);
      this.#buffers.give(piece);
    });
    return out;
  }

  /** Writes `data` at `offset`. INVALID_PARMS past the end, READONLY for a snapshot. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#checkRange(offset, data.length);
    const others = this.#writesInFlight++;
    try {
      const done = forEachBounded(this.#pieces(offset, data.length), VOLUME_IO_WINDOW, (p) => {
        const piece = data.subarray(p.at, p.at + p.len);
        const objectEnd = Math.min(this.objectSize, this.size - p.idx * this.objectSize);
        const creates = this.#index.get(p.idx) !== this.#vid && !this.readOnly;
        if (creates && p.len < objectEnd && this.#gather.shouldHold(p.idx, others)) {
          return this.#gather.hold(p.idx, p.off, piece, objectEnd);
        }
        return this.#withReopen(() => this.#writePiece(p.idx, p.off, piece));
      });
      // The first pieces were dispatched above (forEachBounded starts them synchronously): they
      // were judged before this write was noted.
      if (data.length > 0) {
        this.#gather.noteWrite(Math.floor((offset + data.length - 1) / this.objectSize));
      }
      await done;
    } finally {
      this.#writesInFlight--;
    }
  }

  /**
   * Makes `[offset, offset+length)` read as zeros. With `unmap` whole objects are released (their
   * inode entries cleared); without it (NBD_CMD_FLAG_NO_HOLE) zeros are written everywhere, so
   * the range stays allocated.
   */
  async zero(offset: number, length: number, opts: { unmap: boolean }): Promise<void> {
    this.#checkRange(offset, length);
    const whole: number[] = [];
    const partial: Piece[] = [];
    for (const p of this.#pieces(offset, length)) {
      const objEnd = Math.min(this.objectSize, this.size - p.idx * this.objectSize);
      if (opts.unmap && p.off === 0 && p.len === objEnd) whole.push(p.idx);
      else partial.push(p);
    }
    for (let i = 0; i < whole.length; i += ZERO_ENTRIES_PER_REQUEST) {
      await this.#withReopen(() =>
        this.#clearEntries(whole.slice(i, i + ZERO_ENTRIES_PER_REQUEST))
      );
    }
    // Partial objects get real zeros (copy-on-write included: a parent's bytes must not show
    // through); when unmapping, an unallocated object already reads as zeros.
    const zeros = new Uint8Array(Math.min(this.objectSize, length));
    await forEachBounded(
      partial,
      VOLUME_IO_WINDOW,
      (p) =>
        this.#withReopen(() =>
          this.#writePiece(p.idx, p.off, zeros.subarray(0, p.len), { skipHole: opts.unmap })
        ),
    );
  }

  /**
   * Makes every write that resolved before this call durable. Without CMD_WRITEBACK nothing is
   * left to do: the sheep acknowledges a write only once every replica has it on stable storage.
   * With it, FLUSH_NODES (when anything was written since the last flush).
   */
  flush(): Promise<void> {
    return this.#flushGroup.sync();
  }

  /**
   * FLUSH_NODES when anything was written since the last one; on a failure the volume's writes
   * count as unflushed again.
   */
  async #flushNodes(): Promise<void> {
    if (!this.#unflushed) return;
    this.#unflushed = false;
    const req = SdReq.of(Op.FLUSH_NODES, SD_SHEEP_PROTO_VER, {});
    req.obj.oid = vidToVdiOid(this.#vid);
    let reply: Reply;
    try {
      reply = await this.#request(req);
    } catch (e) {
      this.#unflushed = true;
      throw new VdiIoError("write", req.obj.oid, Res.NETWORK_ERROR, { cause: e });
    }
    if (reply.rsp.result !== Res.SUCCESS) {
      this.#unflushed = true;
      throw new VdiIoError("write", req.obj.oid, reply.rsp.result);
    }
  }

  #checkRange(offset: number, length: number): void {
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
      offset + length > this.size
    ) {
      throw new SdError(
        Res.INVALID_PARMS,
        `range ${offset}+${length} is outside the VDI of ${this.size} bytes`,
      );
    }
  }

  #checkWritable(): void {
    if (this.readOnly) {
      throw new SdError(Res.READONLY, `VDI ${this.#header.name} (${this.#vid}) is read-only`);
    }
  }

  *#pieces(offset: number, length: number): Generator<Piece> {
    const size = this.objectSize;
    let at = 0;
    while (at < length) {
      const pos = offset + at;
      const idx = Math.floor(pos / size);
      const off = pos - idx * size;
      const len = Math.min(size - off, length - at);
      yield { idx, off, len, at };
      at += len;
    }
  }

  async #readPiece(p: Piece): Promise<Uint8Array> {
    const release = await this.#locks.acquire(p.idx, "read", p.off, p.off + p.len);
    try {
      const owner = this.#index.get(p.idx);
      if (owner === 0) return new Uint8Array(p.len);
      return await readObject(
        this.#request,
        this.#buffers,
        vidToDataOid(owner, p.idx),
        p.off,
        p.len,
      );
    } finally {
      release();
    }
  }

  /** Writes inside one object; with `skipHole`, an unallocated object is left as it is. */
  async #writePiece(
    idx: number,
    off: number,
    data: Uint8Array,
    opts: { skipHole?: boolean } = {},
  ): Promise<void> {
    this.#checkWritable();
    for (;;) {
      const inPlace = this.#index.get(idx) === this.#vid;
      const release = await this.#locks.acquire(
        idx,
        inPlace ? "write" : "exclusive",
        off,
        off + data.length,
      );
      try {
        this.#checkWritable();
        const vid = this.#vid;
        const current = this.#index.get(idx);
        const oid = vidToDataOid(vid, idx);
        if (current === 0 && opts.skipHole) return;
        if (current === vid) {
          await this.#send(Op.WRITE_OBJ, oid, off, data);
          return;
        }
        // Ownership changed while we waited (discarded, or a new working VDI): lock it whole.
        if (inPlace) continue;
        const cowOid = current !== 0 ? vidToDataOid(current, idx) : 0n;
        await this.#send(Op.CREATE_AND_WRITE_OBJ, oid, off, data, cowOid);
        await this.#entries.set(vid, idx, vid);
        (this.#index as PlainDataIndex).entries[idx] = vid;
        return;
      } finally {
        release();
      }
    }
  }

  /** Clears the inode entries of `idxs` (ascending), holding each object whole meanwhile. */
  async #clearEntries(idxs: number[]): Promise<void> {
    this.#checkWritable();
    const releases: (() => void)[] = [];
    try {
      for (const idx of idxs) releases.push(await this.#locks.acquire(idx, "exclusive"));
      this.#checkWritable();
      // The gateway refuses data writes to a snapshot but not inode writes (dog releases a
      // snapshot's entries when deleting it): make sure this inode is still the working VDI.
      const ctime = await readObject(
        this.#request,
        this.#buffers,
        vidToVdiOid(this.#vid),
        SNAP_CTIME_OFFSET,
        8,
      );
      if (ctime.some((b) => b !== 0)) {
        throw new SdError(Res.READONLY, `VDI ${this.#vid.toString(16)} became a snapshot`);
      }
      const entries = (this.#index as PlainDataIndex).entries;
      const set = idxs.filter((idx) => entries[idx] !== 0);
      // One request per run of consecutive indexes.
      let i = 0;
      while (i < set.length) {
        let j = i + 1;
        while (j < set.length && set[j] === set[j - 1] + 1) j++;
        await this.#writeEntries(set[i], new Uint32Array(j - i));
        for (let k = i; k < j; k++) entries[set[k]] = 0;
        i = j;
      }
    } finally {
      for (const r of releases) r();
    }
  }

  /** Writes data_vdi_id[first …] = values in the inode (of `inodeVid`, default the volume's). */
  async #writeEntries(first: number, values: Uint32Array, inodeVid = this.#vid): Promise<void> {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    await this.#send(Op.WRITE_OBJ, vidToVdiOid(inodeVid), SD_INODE_HEADER_SIZE + 4 * first, bytes);
  }

  async #send(
    opcode: number,
    oid: bigint,
    offset: number,
    data: Uint8Array,
    cowOid = 0n,
  ): Promise<void> {
    let flags = Flag.CMD_WRITE | this.#writeFlags;
    if (cowOid !== 0n) flags |= Flag.CMD_COW;
    const req = SdReq.of(opcode, SD_PROTO_VER, { flags, dataLength: data.length });
    req.obj.oid = oid;
    req.obj.cowOid = cowOid;
    req.obj.copies = this.#header.nrCopies;
    req.obj.copyPolicy = this.#header.copyPolicy;
    req.obj.offset = offset;
    let reply: Reply;
    try {
      reply = await this.#request(req, data);
    } catch (e) {
      throw new VdiIoError("write", oid, Res.NETWORK_ERROR, { cause: e });
    }
    if (reply.rsp.result !== Res.SUCCESS) throw new VdiIoError("write", oid, reply.rsp.result);
    if ((flags & Flag.CMD_WRITEBACK) !== 0) this.#unflushed = true;
  }

  /**
   * Runs a write step; when the VDI answers READONLY because it became a snapshot, switches to the
   * new working VDI of the same name and runs the step again (once).
   */
  async #withReopen(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (e) {
      if (!(e instanceof SdError && e.result === Res.READONLY)) throw e;
      if (!(await this.follow())) throw e;
      await step();
    }
  }

  /**
   * When this volume's working VDI has been snapshotted (the name now leads to a new working VDI
   * whose parent is ours), switches to the new one. Resolves true when the volume moved. A volume
   * opened without a name, or whose name leads elsewhere (deleted and created again), stays.
   */
  async follow(): Promise<boolean> {
    if (this.#name === undefined) return false;
    const from = this.#vid;
    this.#reopening ??= this.#reopen().finally(() => this.#reopening = null);
    await this.#reopening;
    return this.#vid !== from;
  }

  async #reopen(): Promise<void> {
    let vid: number;
    try {
      vid = await lookupVdiId(this.#request, this.#name!, WORKING_VDI);
    } catch (e) {
      if (e instanceof SdError && e.result === Res.NO_VDI) return;
      throw e;
    }
    if (vid === this.#vid) return;
    const vdi = await loadVdi(this.#request, vid, this.#buffers);
    if (vdi.header.parentVdiId !== this.#vid) return;
    this.#vid = vdi.vid;
    this.#header = vdi.header;
    this.#index = vdi.index;
  }
}

/** Runs `work` on every item with at most `limit` in flight; the first failure is thrown. */
async function forEachBounded<T>(
  items: Iterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const source = items[Symbol.iterator]();
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    for (;;) {
      if (failure) return;
      const next = source.next();
      if (next.done) return;
      try {
        await work(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (failure) throw (failure as { error: unknown }).error;
}
