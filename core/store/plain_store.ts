/**
 * The plain store: one file per object in `DIR/obj/`, named `%016lx` as in Sheepdog v1.0, stale
 * copies in `DIR/obj/.stale/<oid>.<epoch>`. A store directory written by v1.0 opens as is.
 *
 * Durability (unless opened nosync, sheep -n):
 * - write(): pwrite, then fdatasync before it resolves; concurrent writers of one object share
 *   their fdatasyncs (GroupSync: about 30k IOPS at QD16 on one object, against 8.7k for a raw
 *   pwrite + fdatasync loop). Not O_DSYNC as in v1.0: Deno's node:fs write runs on the main
 *   thread (only fdatasync and reads go to the thread pool), so an O_DSYNC write blocks the event
 *   loop for the whole flush and serializes every write (about 7-9k IOPS at any queue depth).
 * - create(): the object is built in `<oid>.tmp` (O_CREAT|O_EXCL), fdatasync'ed, renamed to its
 *   name, then the directory is fsync'ed. A reader sees NO_OBJ or the whole object. A non-sparse
 *   tmp file is written whole with one O_DIRECT write from an aligned buffer (direct_io.ts): no
 *   copy into the page cache, which was the largest CPU cost of a replicated 4 MiB write. When
 *   that cannot be done (no FFI permission, no O_DIRECT, a failure), and for sparse objects, it
 *   is written front to back through Deno's own file API, whose writes run on the thread pool:
 *   a 4 MiB node:fs write would stall the event loop for the whole copy into the page cache
 *   (several ms each), serializing creates and the network behind it.
 * - The directory fsyncs of concurrent creates and removes are shared (GroupSync on one handle
 *   of `obj/` kept open for the store's life), as the fdatasyncs of one object's writers are.
 * - remove(), restoreFromStale(): the directory is fsync'ed. moveToStale() is not, for speed
 *   over thousands of moves: syncMoves() fsyncs `obj/` and `obj/.stale/` once after a batch
 *   (recovery does so before any other I/O at the new epoch).
 * - create() with `replace` renames the new object over the old one (atomic) and drops the
 *   cached handle of the old file.
 * - Writeback (write() with `writeback`, create() with `options.writeback`; the NBD export's
 *   writes): the write resolves before it is durable, and its fdatasync (and, for a create, the
 *   directory fsync) starts at once in the background (write-behind): the disk works while the
 *   reply travels, and flush() mostly finds the work done. flush() waits for the background
 *   syncs of every object written since the last flush (and syncs again those that failed). A
 *   durable write to an object still unflushed also waits for its background sync, so that a
 *   created object it made durable cannot vanish. Opening a store first syncs its file system
 *   (syncfs, sync_fs.ts): a previous process may have acknowledged writeback writes that no
 *   flush reached, and a later flush of this process must cover them too.
 *
 * Allocation: non-sparse objects are preallocated by writing zeros around the data (there is no
 * fallocate in Deno); full-object creates (recovery, 4 MiB writes) write only the data. Later
 * writes then overwrite allocated blocks (no block allocation, no journal commit per fdatasync,
 * no ENOSPC in the middle of a VM's run). Sparse objects (inode, ledger) are ftruncated to their
 * size and only their non-zero blocks are written.
 *
 * Open files live in a bounded LRU (HandleCache); the object's size is learnt once at open, as
 * objects never change size.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import { assert } from "../assert.ts";
import {
  alignedBuffer,
  BufferPool,
  DIRECT_IO_ALIGNMENT,
  isDirectIoAligned,
} from "../buffer_pool.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { DirectIo } from "./direct_io.ts";
import { fsyncDir, readFully, writeFully } from "./durable_files.ts";
import { GroupSync } from "./group_sync.ts";
import { HandleCache } from "./handle_cache.ts";
import { syncFileSystem } from "./sync_fs.ts";
import { afterCleanup, errnoOf, ioError, storeError } from "./io_error.ts";
import {
  assertEpoch,
  OBJ_DIR_NAME,
  objectFileName,
  parseObjectFileName,
  parseStaleFileName,
  STALE_DIR_NAME,
  staleFileName,
  TMP_SUFFIX,
} from "./object_names.ts";
import {
  checkObjectRange,
  type CreateOptions,
  type ObjectStore,
  type StaleObject,
  type StoreSpace,
} from "./object_store.ts";
import { nonZeroSpan } from "./zero_span.ts";

/** Open object files kept by default (each is one file descriptor). */
export const DEFAULT_HANDLE_CACHE_SIZE = 256;
/** Size of the zero buffer used to preallocate objects, and of the chunks read for SHA-1. */
const CHUNK_SIZE = 1 << 20;
/** Concurrent stat() calls while summing object sizes. */
const STAT_CONCURRENCY = 32;
/** Concurrent fdatasyncs of one flush(). */
const FLUSH_CONCURRENCY = 32;

/** An open object file, its size (learnt once: objects never change size) and its flusher. */
interface OpenObject {
  readonly handle: fsp.FileHandle;
  readonly size: number;
  readonly flusher: GroupSync;
}

/** Options of PlainStore.open(). */
export interface PlainStoreOptions {
  /** Do not wait for the disk: no fdatasync or directory fsync (sheep -n). */
  readonly nosync?: boolean;
  /** Bound on the number of cached open object files. */
  readonly handleCacheSize?: number;
  /**
   * Build non-sparse objects with O_DIRECT writes when the process may (FFI allowed, Linux,
   * glibc); default true. False: always through the page cache.
   */
  readonly directIo?: boolean;
  /**
   * The pool whole objects are read into, and O_DIRECT writes are staged in (core/buffer_pool.ts);
   * default: a pool of the store's own. The daemon shares one with its servers, which give read
   * buffers back once the reply is written.
   */
  readonly buffers?: BufferPool;
}

/** Objects as files in `DIR/obj/`. */
export class PlainStore implements ObjectStore {
  /** The sheep's store directory (DIR). */
  readonly dir: string;
  /** `DIR/obj`. */
  readonly objDir: string;
  /** `DIR/obj/.stale`. */
  readonly staleDir: string;
  readonly #nosync: boolean;
  readonly #directIo: boolean;
  /** Where whole-object read buffers and O_DIRECT staging buffers come from. */
  readonly #buffers: BufferPool;
  /** This store's O_DIRECT writer (direct_io.ts). */
  readonly #direct = new DirectIo();
  readonly #handles: HandleCache<OpenObject>;
  /** Creates and restores in flight, one per oid: a second one waits for the first. */
  readonly #creating = new Map<bigint, Promise<void>>();
  /** `obj/` opened once; its fsyncs are shared by concurrent creates and removes. */
  #objDirHandle: Deno.FsFile | null = null;
  #objDirSync: GroupSync | null = null;
  #zeros: Uint8Array | null = null;
  #closed = false;
  /** Objects written or created writeback since the last flush() (see Unflushed). */
  #unflushed = new Map<bigint, Unflushed>();
  /** The objects the running flush took and has not synced yet. */
  #flushTaken = new Set<bigint>();
  /**
   * Concurrent flush() calls share their work (group commit): a call made while a flush runs
   * waits for the next one, which starts when the running one ends and takes every object
   * unflushed by then (the running one's too, when it failed).
   */
  readonly #flushGroup = new GroupSync(() => this.#flushOnce());

  private constructor(dir: string, options: PlainStoreOptions) {
    this.dir = dir;
    this.objDir = `${dir}/${OBJ_DIR_NAME}`;
    this.staleDir = `${this.objDir}/${STALE_DIR_NAME}`;
    this.#nosync = options.nosync ?? false;
    this.#directIo = (options.directIo ?? true) && this.#direct.available();
    this.#buffers = options.buffers ?? new BufferPool();
    this.#handles = new HandleCache(
      options.handleCacheSize ?? DEFAULT_HANDLE_CACHE_SIZE,
      (oid) => this.#openObject(oid),
      (object) => object.handle.close(),
    );
  }

  /**
   * Opens the store in `dir`, creating `obj/` and `obj/.stale/` when missing and removing the
   * `.tmp` files a crash left behind (creates that never completed, so never acknowledged).
   */
  static async open(dir: string, options: PlainStoreOptions = {}): Promise<PlainStore> {
    const store = new PlainStore(dir, options);
    try {
      await fsp.mkdir(store.staleDir, { recursive: true });
      let removed = 0;
      for (const name of await fsp.readdir(store.objDir)) {
        if (!name.endsWith(TMP_SUFFIX)) continue;
        await fsp.rm(`${store.objDir}/${name}`, { force: true });
        removed++;
      }
      if (!store.#nosync) {
        const dir = await Deno.open(store.objDir, { read: true });
        store.#objDirHandle = dir;
        store.#objDirSync = new GroupSync(() => dir.sync());
      }
      if (removed > 0) await store.#syncDir(store.objDir);
      if (!store.#nosync) await syncFileSystem(store.objDir);
    } catch (err) {
      store.#objDirHandle?.close();
      throw storeError(err, `opening store ${dir}`);
    }
    return store;
  }

  /** Whether the store was opened nosync. */
  get nosync(): boolean {
    return this.#nosync;
  }

  /** Objects written or created writeback that the next flush() will fdatasync. */
  get unflushedCount(): number {
    return this.#unflushed.size;
  }

  async exists(oid: bigint): Promise<boolean> {
    this.#assertOpen();
    try {
      await fsp.stat(this.#path(oid));
      return true;
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return false;
      throw ioError(err, `stat ${objectFileName(oid)}`);
    }
  }

  async size(oid: bigint): Promise<number> {
    this.#assertOpen();
    const lease = await this.#handles.acquire(oid);
    lease.release();
    return lease.value.size;
  }

  async read(oid: bigint, offset: number, length: number): Promise<Uint8Array> {
    return await this.#read(oid, offset, length, null);
  }

  async readInto(oid: bigint, offset: number, buf: Uint8Array): Promise<void> {
    await this.#read(oid, offset, buf.length, buf);
  }

  async write(oid: bigint, offset: number, data: Uint8Array, writeback = false): Promise<void> {
    this.#assertOpen();
    const lease = await this.#handles.acquire(oid);
    const { handle, size, flusher } = lease.value;
    try {
      checkObjectRange(oid, offset, data.length, size);
      await writeFully(handle, data, offset);
      if (this.#nosync) return;
      if (writeback) {
        this.#writeBehind(oid, false);
        return;
      }
      await flusher.sync();
      // A writeback create of this object may not have its directory entry on disk yet.
      const pending = this.#unflushed.get(oid);
      if (pending) await (pending.behind ?? this.#syncObject(oid, true));
    } catch (err) {
      throw ioError(err, `write ${objectFileName(oid)}`);
    } finally {
      lease.release();
    }
  }

  async create(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    options: CreateOptions,
  ): Promise<void> {
    this.#assertOpen();
    assert(Number.isSafeInteger(objectSize) && objectSize > 0, `bad object size ${objectSize}`);
    checkObjectRange(oid, offset, data.length, objectSize);
    await this.#exclusive(oid, () => this.#create(oid, offset, data, objectSize, options));
  }

  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#flushPending();
  }

  async #flushPending(): Promise<void> {
    if (this.#nosync) return;
    await this.#flushGroup.sync();
  }

  /**
   * fdatasync of every unflushed object and fsync of `obj/` when a create needs it; on a failure
   * they are all unflushed again.
   */
  async #flushOnce(): Promise<void> {
    const taken = [...this.#unflushed];
    this.#unflushed = new Map();
    this.#flushTaken = new Set(taken.map(([oid]) => oid));
    const failed: bigint[] = [];
    let firstErr: unknown = null;
    try {
      for (let i = 0; i < taken.length; i += FLUSH_CONCURRENCY) {
        await Promise.all(
          taken.slice(i, i + FLUSH_CONCURRENCY).map(async ([oid, { behind }]) => {
            try {
              // A failed background sync is not trusted: the object is synced again.
              await (behind ?? this.#syncObject(oid, true)).catch(() =>
                this.#syncObject(oid, true)
              );
              this.#flushTaken.delete(oid);
            } catch (err) {
              failed.push(oid);
              firstErr ??= err;
            }
          }),
        );
      }
    } finally {
      this.#flushTaken = new Set();
    }
    if (firstErr !== null) {
      // Still pending: the next flush tries them again (unless written since, which syncs anew).
      for (const oid of failed) {
        if (!this.#unflushed.has(oid)) this.#unflushed.set(oid, { behind: null, created: true });
      }
      throw firstErr;
    }
  }

  /**
   * Starts the background sync of an object just written or created writeback (write-behind);
   * a failure is reported by the flush() that waits for it.
   */
  #writeBehind(oid: bigint, created: boolean): void {
    // The directory entry of a create since the last flush stays to be synced, by every later
    // background sync of the object too (the flush waits for the latest one only).
    const old = this.#unflushed.get(oid);
    const dir = created || (old !== undefined && (old.created || old.behind === null));
    const behind = this.#syncObject(oid, dir);
    behind.catch(() => {});
    this.#unflushed.set(oid, { behind, created: dir });
  }

  async remove(oid: bigint): Promise<void> {
    this.#assertOpen();
    this.#handles.invalidate(oid);
    this.#unflushed.delete(oid);
    try {
      await fsp.unlink(this.#path(oid));
    } catch (err) {
      throw ioError(err, `remove ${objectFileName(oid)}`);
    } finally {
      // A request may have reopened the file between the first invalidate and the unlink.
      this.#handles.invalidate(oid);
    }
    await this.#syncDir(this.objDir);
  }

  async list(): Promise<bigint[]> {
    this.#assertOpen();
    let names: string[];
    try {
      names = await fsp.readdir(this.objDir);
    } catch (err) {
      throw storeError(err, `listing ${this.objDir}`);
    }
    const oids: bigint[] = [];
    for (const name of names) {
      const oid = parseObjectFileName(name);
      if (oid !== null) oids.push(oid);
    }
    return oids.sort(compareBigints);
  }

  async sha1(oid: bigint): Promise<Uint8Array> {
    this.#assertOpen();
    return await this.#sha1File(this.#path(oid), objectFileName(oid));
  }

  async usedBytes(): Promise<number> {
    const oids = await this.list();
    let total = 0;
    for (let i = 0; i < oids.length; i += STAT_CONCURRENCY) {
      const sizes = await Promise.all(
        oids.slice(i, i + STAT_CONCURRENCY).map(async (oid) => {
          try {
            return (await fsp.stat(this.#path(oid))).size;
          } catch (err) {
            // Removed since it was listed: it no longer uses space.
            if (errnoOf(err) === "ENOENT") return 0;
            throw ioError(err, `stat ${objectFileName(oid)}`);
          }
        }),
      );
      for (const size of sizes) total += size;
    }
    return total;
  }

  async stat(): Promise<StoreSpace> {
    this.#assertOpen();
    try {
      const fs = await fsp.statfs(this.objDir);
      return { size: fs.bsize * fs.blocks, free: fs.bsize * fs.bavail };
    } catch (err) {
      throw storeError(err, `statfs ${this.objDir}`);
    }
  }

  async moveToStale(oid: bigint, epoch: number): Promise<void> {
    this.#assertOpen();
    assertEpoch(epoch);
    this.#handles.invalidate(oid);
    // Writeback writes not flushed yet go with the copy, where no flush() would find them: they
    // are made durable here (a stale copy may be the source a later recovery trusts).
    const unflushed = this.#unflushed.has(oid) || this.#flushTaken.has(oid);
    try {
      await fsp.rename(this.#path(oid), this.#stalePath(oid, epoch));
    } catch (err) {
      throw ioError(err, `moving ${objectFileName(oid)} to stale`);
    } finally {
      this.#handles.invalidate(oid);
    }
    if (!unflushed) return;
    this.#unflushed.delete(oid);
    try {
      const f = await Deno.open(this.#stalePath(oid, epoch), { read: true });
      try {
        await f.syncData();
      } finally {
        f.close();
      }
    } catch (err) {
      throw ioError(err, `flush of stale ${staleFileName(oid, epoch)}`);
    }
  }

  async syncMoves(): Promise<void> {
    this.#assertOpen();
    await this.#syncDir(this.staleDir);
    await this.#syncDir(this.objDir);
  }

  async readStale(
    oid: bigint,
    epoch: number,
    offset: number,
    length: number,
  ): Promise<Uint8Array> {
    this.#assertOpen();
    const name = staleFileName(oid, epoch);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.#stalePath(oid, epoch), "r");
    } catch (err) {
      throw ioError(err, `read stale ${name}`);
    }
    try {
      const { size } = await fh.stat();
      checkObjectRange(oid, offset, length, size);
      const buf = new Uint8Array(length);
      await readFully(fh, buf, offset);
      return buf;
    } catch (err) {
      throw ioError(err, `read stale ${name}`);
    } finally {
      await fh.close();
    }
  }

  async staleSize(oid: bigint, epoch: number): Promise<number> {
    this.#assertOpen();
    try {
      return (await fsp.stat(this.#stalePath(oid, epoch))).size;
    } catch (err) {
      throw ioError(err, `stat stale ${staleFileName(oid, epoch)}`);
    }
  }

  async sha1Stale(oid: bigint, epoch: number): Promise<Uint8Array> {
    this.#assertOpen();
    return await this.#sha1File(this.#stalePath(oid, epoch), staleFileName(oid, epoch));
  }

  async listStale(): Promise<StaleObject[]> {
    this.#assertOpen();
    const found: StaleObject[] = [];
    for (const name of await this.#staleNames()) {
      const stale = parseStaleFileName(name);
      if (stale !== null) found.push(stale);
    }
    return found.sort((a, b) => compareBigints(a.oid, b.oid) || a.epoch - b.epoch);
  }

  async purgeStale(): Promise<void> {
    this.#assertOpen();
    try {
      // Entry by entry rather than rm -r, so a concurrent moveToStale never finds the dir gone.
      for (const name of await this.#staleNames()) {
        await fsp.rm(`${this.staleDir}/${name}`, { recursive: true, force: true });
      }
    } catch (err) {
      throw storeError(err, `purging ${this.staleDir}`);
    }
  }

  async restoreFromStale(oid: bigint, epoch: number): Promise<void> {
    this.#assertOpen();
    assertEpoch(epoch);
    await this.#exclusive(oid, async () => {
      try {
        await fsp.link(this.#stalePath(oid, epoch), this.#path(oid));
      } catch (err) {
        if (errnoOf(err) === "EEXIST") {
          throw new SdError(Res.OID_EXIST, `restore of ${objectFileName(oid)}: object exists`);
        }
        throw ioError(err, `restore ${staleFileName(oid, epoch)}`);
      }
      await this.#syncDir(this.objDir);
    });
  }

  async removeAll(): Promise<void> {
    this.#assertOpen();
    this.#handles.invalidateAll();
    try {
      for (const name of await fsp.readdir(this.objDir)) {
        if (name === STALE_DIR_NAME) continue;
        await fsp.rm(`${this.objDir}/${name}`, { recursive: true, force: true });
      }
    } catch (err) {
      throw storeError(err, `wiping ${this.objDir}`);
    }
    this.#handles.invalidateAll();
    await this.purgeStale();
    await this.#syncDir(this.objDir);
  }

  /** Waits for creates in flight and closes the cached files; other I/O must be done. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#creating.values()]);
    try {
      // A clean shutdown leaves no acknowledged writeback write in the page cache alone.
      await this.#flushPending();
    } finally {
      await this.#closeFiles();
    }
  }

  async #closeFiles(): Promise<void> {
    try {
      await this.#handles.close();
    } finally {
      this.#objDirHandle?.close();
      this.#objDirHandle = null;
    }
  }

  #path(oid: bigint): string {
    return `${this.objDir}/${objectFileName(oid)}`;
  }

  #stalePath(oid: bigint, epoch: number): string {
    return `${this.staleDir}/${staleFileName(oid, epoch)}`;
  }

  #assertOpen(): void {
    assert(!this.#closed, "object store used after close()");
  }

  async #syncDir(path: string): Promise<void> {
    if (this.#nosync) return;
    try {
      if (path === this.objDir && this.#objDirSync) await this.#objDirSync.sync();
      else await fsyncDir(path);
    } catch (err) {
      throw storeError(err, `fsync ${path}`);
    }
  }

  async #staleNames(): Promise<string[]> {
    try {
      return await fsp.readdir(this.staleDir);
    } catch (err) {
      throw storeError(err, `listing ${this.staleDir}`);
    }
  }

  async #openObject(oid: bigint): Promise<OpenObject> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(this.#path(oid), constants.O_RDWR);
    } catch (err) {
      throw ioError(err, `open ${objectFileName(oid)}`);
    }
    try {
      const { size } = await handle.stat();
      return { handle, size, flusher: new GroupSync(() => handle.datasync()) };
    } catch (err) {
      throw await afterCleanup(ioError(err, `stat ${objectFileName(oid)}`), () => handle.close());
    }
  }

  /** Reads into `into`, or into a new buffer allocated once the range is known to be valid. */
  async #read(
    oid: bigint,
    offset: number,
    length: number,
    into: Uint8Array | null,
  ): Promise<Uint8Array> {
    this.#assertOpen();
    const lease = await this.#handles.acquire(oid);
    const { handle, size } = lease.value;
    try {
      checkObjectRange(oid, offset, length, size);
      // Whole objects are read into pooled buffers (see core/buffer_pool.ts).
      const buf = into ?? this.#buffers.take(length);
      await readFully(handle, buf, offset);
      return buf;
    } catch (err) {
      throw ioError(err, `read ${objectFileName(oid)}`);
    } finally {
      lease.release();
    }
  }

  /**
   * fdatasync of one object, then an fsync of `obj/` when `dir` (its directory entry may be new);
   * one removed or moved to the stale area since needs nothing.
   */
  async #syncObject(oid: bigint, dir: boolean): Promise<void> {
    let lease;
    try {
      lease = await this.#handles.acquire(oid);
    } catch (err) {
      if (err instanceof SdError && err.result === Res.NO_OBJ) return;
      throw err;
    }
    try {
      await lease.value.flusher.sync();
    } catch (err) {
      throw ioError(err, `flush ${objectFileName(oid)}`);
    } finally {
      lease.release();
    }
    if (dir) await this.#syncDir(this.objDir);
  }

  /** Runs `op` once no other create or restore of `oid` is in flight. */
  async #exclusive(oid: bigint, op: () => Promise<void>): Promise<void> {
    for (;;) {
      const pending = this.#creating.get(oid);
      if (pending === undefined) break;
      await Promise.allSettled([pending]);
    }
    const running = op();
    this.#creating.set(oid, running);
    try {
      await running;
    } finally {
      if (this.#creating.get(oid) === running) this.#creating.delete(oid);
    }
  }

  async #create(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    options: CreateOptions,
  ): Promise<void> {
    const name = objectFileName(oid);
    const path = this.#path(oid);
    const tmp = path + TMP_SUFFIX;
    // The existence check runs beside the building of the tmp file (one round trip to the thread
    // pool less per create) and is settled before the rename. An existing object is rare (a
    // retried create): its tmp file is then thrown away.
    const existing = (options.replace ? Promise.resolve(false) : this.exists(oid)).then(
      (exists) => ({ exists, err: null }),
      (err: unknown) => ({ exists: false, err }),
    );
    const sync = !this.#nosync && !options.writeback;
    if (options.sparse || !(await this.#createDirect(tmp, offset, data, objectSize, sync))) {
      await this.#buildTmp(tmp, name, offset, data, objectSize, options, existing, sync);
    }
    const found = await existing;
    if (found.err !== null || found.exists) {
      const err = found.err !== null
        ? ioError(found.err, `create ${name}`)
        : new SdError(Res.OID_EXIST, `create of ${name}: object exists`);
      throw await afterCleanup(err, () => fsp.rm(tmp, { force: true }));
    }
    try {
      await fsp.rename(tmp, path);
    } catch (err) {
      throw await afterCleanup(ioError(err, `create ${name}`), () => fsp.rm(tmp, { force: true }));
    }
    // A replaced object's cached handle is the old file's.
    if (options.replace) this.#handles.invalidate(oid);
    if (this.#nosync) return;
    if (options.writeback) {
      this.#writeBehind(oid, true);
      return;
    }
    await this.#syncDir(this.objDir);
  }

  /**
   * Builds `<oid>.tmp` of a non-sparse object with one O_DIRECT write (see direct_io.ts) of the
   * whole object: `data` itself when it is the whole object in an aligned buffer (a pooled
   * request payload), else a pooled buffer holding the zeros and the data. False when that could
   * not be done (no FFI, no O_DIRECT, a failed write): nothing is left behind then, and the
   * caller builds the file the buffered way, which also reports the real error of a failure.
   * `sync`: fdatasync the file before returning.
   */
  async #createDirect(
    tmp: string,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    sync: boolean,
  ): Promise<boolean> {
    if (!this.#directIo || objectSize % DIRECT_IO_ALIGNMENT !== 0) return false;
    let buf = data;
    let pooled = false;
    if (offset !== 0 || data.length !== objectSize || !isDirectIoAligned(data)) {
      buf = this.#buffers.take(objectSize);
      pooled = this.#buffers.owns(buf);
      if (!isDirectIoAligned(buf)) {
        if (pooled) this.#buffers.give(buf);
        pooled = false;
        buf = alignedBuffer(objectSize);
        if (!isDirectIoAligned(buf)) return false;
      }
      buf.fill(0, 0, offset);
      buf.set(data, offset);
      buf.fill(0, offset + data.length);
    }
    try {
      const r = await this.#direct.writeNewFile(tmp, buf, sync);
      if (r === "failed") await fsp.rm(tmp, { force: true });
      return r === "done";
    } catch (_err) {
      // Whatever went wrong, the buffered way reports it properly (it removes a leftover tmp).
      return false;
    } finally {
      if (pooled) this.#buffers.give(buf);
    }
  }

  /** Builds `<oid>.tmp` through Deno's file API (buffered writes); flushes it when `sync`. */
  async #buildTmp(
    tmp: string,
    name: string,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    options: CreateOptions,
    existing: Promise<unknown>,
    sync: boolean,
  ): Promise<void> {
    let fh: Deno.FsFile;
    try {
      fh = await this.#openTmp(tmp, name);
    } catch (err) {
      await existing;
      throw err;
    }
    let closed = false;
    try {
      if (options.sparse) {
        await fh.truncate(objectSize);
        const [start, end] = nonZeroSpan(data, offset);
        if (end > start) {
          await fh.seek(offset + start, Deno.SeekMode.Start);
          await appendFully(fh, data.subarray(start, end));
        }
      } else {
        // Front to back: zeros before the data, the data, zeros after it.
        await this.#appendZeros(fh, offset);
        await appendFully(fh, data);
        await this.#appendZeros(fh, objectSize - offset - data.length);
      }
      if (sync) await fh.syncData();
      closed = true;
      fh.close();
    } catch (err) {
      throw await afterCleanup(ioError(err, `create ${name}`), async () => {
        if (!closed) fh.close();
        await fsp.rm(tmp, { force: true });
      });
    }
  }

  /**
   * Opens a new `<oid>.tmp`. Creates of one oid are serialized and leftovers are removed at
   * open, so an existing tmp can only be the remains of a create of this process whose cleanup
   * failed: it is removed and the open retried once (v1.0 instead reports success, before the
   * other create's data is on disk).
   */
  async #openTmp(tmp: string, name: string): Promise<Deno.FsFile> {
    const mode = { read: true, write: true, createNew: true };
    try {
      return await Deno.open(tmp, mode);
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw storeError(err, `create ${name}`);
    }
    try {
      await fsp.rm(tmp, { force: true });
      return await Deno.open(tmp, mode);
    } catch (err) {
      throw storeError(err, `create ${name}`);
    }
  }

  /** Writes `count` zero bytes at the file position. */
  async #appendZeros(fh: Deno.FsFile, count: number): Promise<void> {
    if (count <= 0) return;
    this.#zeros ??= new Uint8Array(CHUNK_SIZE);
    for (let done = 0; done < count; done += CHUNK_SIZE) {
      await appendFully(fh, this.#zeros.subarray(0, Math.min(CHUNK_SIZE, count - done)));
    }
  }

  async #sha1File(path: string, name: string): Promise<Uint8Array> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, "r");
    } catch (err) {
      throw ioError(err, `sha1 ${name}`);
    }
    try {
      const { size } = await fh.stat();
      const hash = createHash("sha1");
      const chunk = new Uint8Array(Math.min(CHUNK_SIZE, Math.max(size, 1)));
      for (let pos = 0; pos < size; pos += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - pos));
        await readFully(fh, part, pos);
        hash.update(part);
      }
      return new Uint8Array(hash.digest());
    } catch (err) {
      throw ioError(err, `sha1 ${name}`);
    } finally {
      await fh.close();
    }
  }
}

/**
 * An object with writeback writes not covered by a flush() yet: the background sync started
 * after its latest write (null: none, a failed flush left it to be synced anew), and whether a
 * create since the last flush means its directory entry must be synced too.
 */
interface Unflushed {
  readonly behind: Promise<void> | null;
  readonly created: boolean;
}

/** Writes all of `data` at the file position of a Deno file (its writes run off the main thread). */
async function appendFully(fh: Deno.FsFile, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await fh.write(data.subarray(done));
    if (n <= 0) throw new SdError(Res.EIO, `write returned ${n}`);
    done += n;
  }
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
