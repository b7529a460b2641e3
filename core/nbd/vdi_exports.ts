/**
 * Every VDI of the cluster as an NBD export, through any Sheepdog request function (the daemon's
 * own request handler in process, or a client connection).
 *
 * Export names: `NAME` is the working VDI (writable); `NAME:TAG` and `NAME:ID` a snapshot
 * (read-only). A name is first looked up whole, so a working VDI whose name holds a colon stays
 * reachable; the text after the last colon is a snapshot id when it is all digits, else a tag.
 * NBD_OPT_LIST lists working VDIs by name and snapshots as `NAME:ID` (their tag in the
 * description).
 *
 * Connections to the same VDI share one VdiVolume (its per-object locks and its copy of the data
 * index), so several connections writing one export (nbdcopy uses four when the server offers
 * multi-conn) never race on an object's creation. A working VDI's volume is shared by name and
 * follows it when it is snapshotted; a snapshot's by vid. The volume is dropped when its last
 * connection ends, so the next one reads the inode afresh.
 *
 * Writes are writeback (Flag.CMD_WRITEBACK): acknowledged once every replica has them, made
 * durable on every replica by the client's FLUSH (or FUA), as a disk with a volatile write cache
 * does; when a connection ends, its volume is flushed in the background. A sheep killed before
 * the flush loses nothing (the data is in the kernel's page cache of every replica, and a sheep
 * that starts syncs its file system first); a power failure may lose writes no FLUSH covered,
 * as it may on any disk whose cache is on.
 *
 * On a cluster formatted with `-l` (VDI locking), a connection that uses a working VDI (NBD_OPT_GO
 * or NBD_OPT_EXPORT_NAME) locks it with LOCK_VDI, as QEMU's sheepdog driver did, and releases it
 * with RELEASE_VDI when the connection ends, however it ends. The lock is the sheep's, so a second
 * writer is refused (NBD_REP_ERR_POLICY) even on the same sheep, and such exports do not offer
 * multi-conn. Snapshots are read-only and take no lock; neither does NBD_OPT_INFO. A sheep that
 * dies loses its locks when the cluster sees it leave.
 *
 * @module
 */

import { BufferPool } from "../buffer_pool.ts";
import {
  ClusterFlag,
  Flag,
  LockType,
  Op,
  Res,
  resultText,
  SD_MAX_VDI_LEN,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
  SD_VDI_BITMAP_SIZE,
} from "../proto/constants.ts";
import { CLUSTER_INFO_HEADER_SIZE } from "../proto/cluster_info.ts";
import { SdReq } from "../proto/header.ts";
import { decodeInodeHeader, type InodeHeader, isSnapshot } from "../proto/inode.ts";
import { SdError } from "../proto/sd_error.ts";
import { vidToVdiOid } from "../hash/oid.ts";
import { encodeFixedString } from "../proto/strings.ts";
import {
  loadVdi,
  lookupVdiId,
  type SheepRequest,
  type SnapshotSelector,
  VdiVolume,
  WORKING_VDI,
} from "../vdi_client/volume.ts";
import {
  NbdCommandError,
  type NbdExport,
  type NbdExportEntry,
  type NbdExportProvider,
  NbdOpenRefused,
} from "./server.ts";
import { type BlockExtent, Errno } from "./protocol.ts";
import { vdiAllocation } from "./vdi_allocation.ts";
import { NBD_MAX_EXTENTS, NBD_MAX_PAYLOAD } from "../limits.ts";

/** Bytes of an inode read to list it (name … btree_counter). */
const LIST_HEADER_READ = 572;
/** Inode reads in flight while listing. */
const LIST_WINDOW = 16;
/** Longest VDI name or tag (a 256-byte field with its NUL). */
const MAX_NAME_BYTES = 255;

/** One way to read an export name: a VDI name and a snapshot selector. */
export interface ExportNameReading {
  name: string;
  snap: SnapshotSelector;
}

/**
 * The readings of an export name, in the order they are tried: the whole name as a working VDI,
 * then (when it holds a colon) NAME:ID or NAME:TAG split at the last colon.
 */
export function exportNameReadings(exportName: string): ExportNameReading[] {
  const out: ExportNameReading[] = [];
  const fits = (s: string) => s !== "" && new TextEncoder().encode(s).length <= MAX_NAME_BYTES;
  if (fits(exportName)) out.push({ name: exportName, snap: WORKING_VDI });
  const colon = exportName.lastIndexOf(":");
  if (colon > 0 && colon < exportName.length - 1) {
    const name = exportName.slice(0, colon);
    const sel = exportName.slice(colon + 1);
    if (fits(name) && fits(sel)) {
      if (/^\d+$/.test(sel)) {
        const id = Number(sel);
        if (id > 0 && id <= 0xffffffff) out.push({ name, snap: { id, tag: "" } });
      } else {
        out.push({ name, snap: { id: 0, tag: sel } });
      }
    }
  }
  return out;
}

/** The errno an NBD client gets for a failed VDI operation. */
export function errnoOfResult(result: number): number {
  switch (result) {
    case Res.INVALID_PARMS:
      return Errno.EINVAL;
    case Res.READONLY:
    case Res.VDI_LOCKED:
      return Errno.EPERM;
    case Res.NO_SPACE:
    case Res.FULL_VDI:
      return Errno.ENOSPC;
    case Res.NO_MEM:
      return Errno.ENOMEM;
    case Res.SHUTDOWN:
    case Res.KILLED:
    case Res.HALT:
      return Errno.ESHUTDOWN;
    default:
      return Errno.EIO;
  }
}

/** Options of {@linkcode VdiExports}. */
export interface VdiExportsOptions {
  /** Called for a command that failed in the store (the client gets an errno). */
  onIoError?(exportName: string, err: SdError): void;
  /** Called when the VDI lock of an ended connection could not be released. */
  onUnlockError?(exportName: string, err: unknown): void;
  /**
   * The pool of the request function's pooled replies, given to every volume (VolumeOptions);
   * default: a pool of the exports' own. Through the daemon's own handler, pass the daemon's pool,
   * which the NBD server shares.
   */
  buffers?: BufferPool;
}

interface SharedVolume {
  volume: Promise<VdiVolume>;
  refs: number;
}

/** The VDIs as NBD exports. */
export class VdiExports implements NbdExportProvider {
  readonly #request: SheepRequest;
  readonly #opts: VdiExportsOptions;
  readonly #buffers: BufferPool;
  readonly #volumes = new Map<string, SharedVolume>();
  /** What ended connections left running: their flushes and RELEASE_VDI requests. */
  readonly #closing = new Set<Promise<void>>();
  /** Failures of those that no callback was told of, for settled() to throw. */
  readonly #closeErrors: unknown[] = [];

  constructor(request: SheepRequest, opts: VdiExportsOptions = {}) {
    this.#request = request;
    this.#opts = opts;
    this.#buffers = opts.buffers ?? new BufferPool();
  }

  /** Volumes currently open (shared by their connections). */
  get openVolumes(): number {
    return this.#volumes.size;
  }

  async list(): Promise<NbdExportEntry[]> {
    const inuse = await this.#bitmap(Op.READ_VDIS, SD_PROTO_VER);
    const deleted = await this.#bitmap(Op.READ_DEL_VDIS, SD_SHEEP_PROTO_VER);
    const vids: number[] = [];
    for (let byte = 0; byte < inuse.length; byte++) {
      const live = inuse[byte] & ~deleted[byte];
      if (live === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (live & (1 << bit)) vids.push(byte * 8 + bit);
    }
    const headers: (InodeHeader | null)[] = new Array(vids.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < vids.length) {
        const i = next++;
        headers[i] = await this.#header(vids[i]);
      }
    };
    await Promise.all(Array.from({ length: LIST_WINDOW }, worker));
    const out: NbdExportEntry[] = [];
    for (const h of headers) {
      if (h === null || h.name === "") continue;
      if (isSnapshot(h)) {
        out.push({
          name: `${h.name}:${h.snapId}`,
          description: h.tag ? `snapshot '${h.tag}' of ${h.name}` : `snapshot of ${h.name}`,
        });
      } else {
        out.push({ name: h.name, description: `VDI ${h.name}, ${h.vdiSize} bytes` });
      }
    }
    return out;
  }

  /**
   * Resolves when the volumes of every ended connection are flushed and their VDI locks released;
   * throws the failures nobody was told about (no onIoError / onUnlockError).
   */
  async settled(): Promise<void> {
    while (this.#closing.size > 0) await Promise.allSettled([...this.#closing]);
    const errors = this.#closeErrors.splice(0);
    if (errors.length > 0) {
      throw new AggregateError(
        errors,
        "ended connections were not flushed or their locks released",
      );
    }
  }

  /**
   * Runs what a connection's end leaves to do in the background (a connection ends
   * synchronously); `report` tells of a failure, and returns false when nobody was told.
   */
  #inBackground(work: Promise<void>, report: (e: unknown) => boolean): void {
    const p: Promise<void> = work.catch((e) => {
      if (!report(e)) this.#closeErrors.push(e);
    }).finally(() => this.#closing.delete(p));
    this.#closing.add(p);
  }

  async open(
    exportName: string,
    opts: { use: boolean } = { use: true },
  ): Promise<NbdExport | null> {
    let locking: boolean | undefined;
    for (const reading of exportNameReadings(exportName)) {
      const working = reading.snap.id === 0 && reading.snap.tag === "";
      locking ??= working && await this.#lockingEnabled();
      const lock = working && opts.use && locking;
      let vid: number;
      try {
        vid = lock
          ? await this.#lock(reading.name)
          : await lookupVdiId(this.#request, reading.name, reading.snap);
      } catch (e) {
        if (e instanceof SdError && (e.result === Res.NO_VDI || e.result === Res.NO_TAG)) continue;
        throw e;
      }
      const key = working ? `working:${reading.name}` : `snapshot:${vid}`;
      let shared: SharedVolume;
      let volume: VdiVolume;
      try {
        shared = await this.#acquire(key, vid, reading);
        volume = await shared.volume;
      } catch (e) {
        if (lock) this.#unlock(exportName, reading.name, vid);
        throw e;
      }
      const release = () => {
        this.#drop(key, shared);
        this.#flushAfterClose(exportName, volume);
        if (lock) this.#unlock(exportName, reading.name, volume.vid);
      };
      return new VdiExport(exportName, volume, release, this.#opts, !(working && locking));
    }
    return null;
  }

  /** Whether the cluster was formatted with `-l` (its cluster_info flags). */
  async #lockingEnabled(): Promise<boolean> {
    const req = SdReq.of(Op.CLUSTER_INFO, SD_SHEEP_PROTO_VER, {
      dataLength: CLUSTER_INFO_HEADER_SIZE,
    });
    const { rsp, data } = await this.#request(req);
    if (rsp.result !== Res.SUCCESS || data.length < CLUSTER_INFO_HEADER_SIZE) {
      throw new SdError(
        rsp.result || Res.EIO,
        `cannot read the cluster flags: ${resultText(rsp.result)}`,
      );
    }
    const flags = new DataView(data.buffer, data.byteOffset, data.length).getUint16(16, true);
    return (flags & ClusterFlag.USE_LOCK) !== 0;
  }

  /** LOCK_VDI of the working VDI `name` (normal lock); its vid. */
  async #lock(name: string): Promise<number> {
    const payload = new Uint8Array(2 * SD_MAX_VDI_LEN);
    payload.set(encodeFixedString(name, SD_MAX_VDI_LEN));
    const req = SdReq.of(Op.LOCK_VDI, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: payload.length,
    });
    req.vdi.type = LockType.NORMAL;
    const { rsp } = await this.#request(req, payload);
    if (rsp.result === Res.VDI_LOCKED) {
      throw new NbdOpenRefused(
        `VDI ${name} is locked by another client (${resultText(rsp.result)})`,
      );
    }
    if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result, `cannot lock VDI ${name}`);
    return rsp.vdi.vdiId;
  }

  /**
   * FLUSH of a connection's writes once it ended, in the background (a connection ends
   * synchronously): a client that goes away without a FLUSH still gets its writes to the disks
   * soon, instead of whenever another flush comes. A failure is reported as an I/O error.
   */
  #flushAfterClose(exportName: string, volume: VdiVolume): void {
    this.#inBackground(volume.flush(), (e) => {
      if (!(e instanceof SdError) || !this.#opts.onIoError) return false;
      this.#opts.onIoError(exportName, e);
      return true;
    });
  }

  /**
   * RELEASE_VDI of the lock taken on `vid`, in the background (a connection ends synchronously).
   * The VDI is named in the payload, as QEMU does, so only this sheep's lock can be released.
   */
  #unlock(exportName: string, name: string, vid: number): void {
    const release = async (v: number): Promise<number> => {
      const payload = new TextEncoder().encode(name + "\0");
      const req = SdReq.of(Op.RELEASE_VDI, SD_PROTO_VER, {
        flags: Flag.CMD_WRITE,
        dataLength: payload.length,
      });
      req.vdi.baseVdiId = v;
      req.vdi.type = LockType.NORMAL;
      return (await this.#request(req, payload)).rsp.result;
    };
    const work = (async () => {
      let result = await release(vid);
      if (result === Res.VDI_NOT_LOCKED) {
        // A snapshot taken meanwhile moved the lock to the new working VDI (vdi_lock.ts), which
        // this connection may never have written to: release that one.
        const current = await lookupVdiId(this.#request, name);
        if (current !== vid) result = await release(current);
      }
      if (result !== Res.SUCCESS) {
        throw new SdError(result, `cannot unlock VDI ${name}: ${resultText(result)}`);
      }
    })();
    this.#inBackground(work, (e) => {
      if (!this.#opts.onUnlockError) return false;
      this.#opts.onUnlockError(exportName, e);
      return true;
    });
  }

  async #acquire(key: string, vid: number, reading: ExportNameReading): Promise<SharedVolume> {
    for (;;) {
      let shared = this.#volumes.get(key);
      if (shared === undefined) {
        const working = reading.snap.id === 0 && reading.snap.tag === "";
        const volume = loadVdi(this.#request, vid, this.#buffers).then((vdi) =>
          VdiVolume.fromLoaded(this.#request, vdi, {
            name: working ? reading.name : undefined,
            buffers: this.#buffers,
            writeFlags: Flag.CMD_WRITEBACK,
          })
        );
        shared = { volume, refs: 0 };
        this.#volumes.set(key, shared);
      }
      shared.refs++;
      let v: VdiVolume;
      try {
        v = await shared.volume;
        // The working VDI may have been snapshotted since the volume last wrote.
        if (v.vid !== vid) await v.follow();
      } catch (e) {
        this.#drop(key, shared);
        throw e;
      }
      if (v.vid === vid) return shared;
      // The name now leads to another VDI (deleted and created again): a volume of its own.
      this.#drop(key, shared);
      if (this.#volumes.get(key) === shared) this.#volumes.delete(key);
    }
  }

  #drop(key: string, shared: SharedVolume): void {
    shared.refs--;
    if (shared.refs === 0 && this.#volumes.get(key) === shared) this.#volumes.delete(key);
  }

  async #bitmap(opcode: number, protoVer: number): Promise<Uint8Array> {
    const req = SdReq.of(opcode, protoVer, { dataLength: SD_VDI_BITMAP_SIZE });
    const { rsp, data } = await this.#request(req);
    if (rsp.result !== Res.SUCCESS) {
      throw new SdError(rsp.result, `cannot read the VDI bitmap: ${resultText(rsp.result)}`);
    }
    const out = new Uint8Array(SD_VDI_BITMAP_SIZE);
    out.set(data.subarray(0, SD_VDI_BITMAP_SIZE));
    return out;
  }

  /** The header of `vid`'s inode, or null when it cannot be read (listed VDIs skip it). */
  async #header(vid: number): Promise<InodeHeader | null> {
    const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: LIST_HEADER_READ });
    req.obj.oid = vidToVdiOid(vid);
    const { rsp, data } = await this.#request(req);
    if (rsp.result !== Res.SUCCESS || data.length < LIST_HEADER_READ) return null;
    return decodeInodeHeader(data);
  }
}

/** One connection's view of a shared volume. */
class VdiExport implements NbdExport {
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  /** A whole data object: smaller writes to a new object cost a create of all of it. */
  get preferredBlockSize(): number {
    return Math.min(this.#volume.objectSize, NBD_MAX_PAYLOAD);
  }
  readonly multiConn: boolean;
  readonly #name: string;
  readonly #volume: VdiVolume;
  readonly #release: () => void;
  readonly #opts: VdiExportsOptions;
  #closed = false;

  constructor(
    name: string,
    volume: VdiVolume,
    release: () => void,
    opts: VdiExportsOptions,
    multiConn: boolean,
  ) {
    this.multiConn = multiConn;
    this.#name = name;
    this.#volume = volume;
    this.#release = release;
    this.#opts = opts;
    this.size = volume.size;
    this.readOnly = volume.readOnly;
    const h = volume.header;
    this.description = isSnapshot(h)
      ? `snapshot ${h.snapId}${h.tag ? ` '${h.tag}'` : ""} of VDI ${h.name}`
      : `VDI ${h.name}`;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.#run(() => this.#volume.read(offset, length));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#run(() => this.#volume.write(offset, data));
  }

  zero(offset: number, length: number, unmap: boolean): Promise<void> {
    return this.#run(() => this.#volume.zero(offset, length, { unmap }));
  }

  flush(): Promise<void> {
    return this.#run(() => this.#volume.flush());
  }

  /** Which objects the inode names, as this connection's view of the VDI reads them. */
  extents(offset: number, length: number): Promise<BlockExtent[]> {
    const v = this.#volume;
    return Promise.resolve(
      vdiAllocation(offset, length, v.objectSize, (idx) => v.owner(idx), NBD_MAX_EXTENTS),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof SdError)) throw e;
      this.#opts.onIoError?.(this.#name, e);
      throw new NbdCommandError(errnoOfResult(e.result), e.message, { cause: e });
    }
  }
}
