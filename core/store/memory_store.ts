/**
 * An in-memory ObjectStore for the seeded simulation and for unit tests of code above the store.
 * It passes the same contract suite as the plain store and mirrors its semantics where the
 * contract is silent:
 *
 * - restoreFromStale() links: the live object and the stale copy share their bytes, as the plain
 *   store's hard link does (a later write to the live object shows in the stale copy too).
 * - moveToStale() over an existing stale copy of the same oid and epoch replaces it (rename).
 * - stat(): `capacity` bytes in all; used = every distinct object, live or stale, counted once
 *   (hard links share), at its full size, or for sparse objects the 64 KiB chunks holding data.
 *   A create that does not fit fails with NO_SPACE.
 *
 * Deterministic: no timers, no randomness, no I/O. Every method runs to completion in one step
 * (the promise is already settled when returned), so interleavings come only from the caller.
 *
 * Durability model (what `crash()` drops), after the plain store's fsync points:
 * - default (sync) mode: data writes, creates, removes and restores are durable when they resolve;
 *   moveToStale() and purgeStale() are not (the plain store does not fsync for them) and become
 *   durable at the next create, remove, restoreFromStale or removeAll (which fsync the object
 *   directory), at syncMoves(), sync() or close().
 * - writeback writes and creates (CMD_WRITEBACK) are durable only after flush(), sync() or close():
 *   a directory fsync by another operation does not make them durable (it would not make a file's
 *   data durable either).
 * - nosync mode (sheep -n): nothing is durable until sync() or close().
 * crash() undoes what is not durable, newest first, and closes the store; MemoryStore.open() on
 * the same MemoryDisk is the restart. This is a simple model, not a file system: a crash drops
 * whole operations, never half of one.
 *
 * Fault injection: injectFault() makes the next matching operation(s) fail with an SdError
 * (EIO by default) before they change anything.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import {
  checkObjectRange,
  type CreateOptions,
  type ObjectStore,
  type StaleObject,
  type StoreSpace,
} from "./object_store.ts";
import { assertEpoch, objectFileName, staleFileName } from "./object_names.ts";

/** Granularity of the sparse in-memory representation and of sparse allocation accounting. */
export const MEMORY_CHUNK_SIZE = 64 * 1024;
/** Default capacity of a MemoryDisk: 1 TiB. */
export const DEFAULT_MEMORY_CAPACITY = 2 ** 40;

/** The bytes of one object ("inode"): shared between a live name and stale names after a link. */
class ObjectData {
  readonly size: number;
  readonly sparse: boolean;
  /** chunk index → MEMORY_CHUNK_SIZE bytes (the last one may be shorter); absent = zeros. */
  readonly chunks = new Map<number, Uint8Array>();

  constructor(size: number, sparse: boolean) {
    this.size = size;
    this.sparse = sparse;
  }

  read(offset: number, out: Uint8Array): void {
    out.fill(0);
    this.#forChunks(offset, out.length, (chunk, _idx, cOff, pos, len) => {
      if (chunk) out.set(chunk.subarray(cOff, cOff + len), pos);
    });
  }

  write(offset: number, data: Uint8Array): void {
    this.#forChunks(offset, data.length, (chunk, idx, cOff, pos, len) => {
      let c = chunk;
      if (!c) {
        c = new Uint8Array(Math.min(MEMORY_CHUNK_SIZE, this.size - idx * MEMORY_CHUNK_SIZE));
        this.chunks.set(idx, c);
      }
      c.set(data.subarray(pos, pos + len), cOff);
    });
  }

  /** Bytes this object takes on the simulated disk. */
  get allocated(): number {
    if (!this.sparse) return this.size;
    let total = 0;
    for (const c of this.chunks.values()) total += c.length;
    return total;
  }

  sha1(): Uint8Array {
    const h = createHash("sha1");
    const zeros = new Uint8Array(MEMORY_CHUNK_SIZE);
    const n = Math.ceil(this.size / MEMORY_CHUNK_SIZE);
    for (let i = 0; i < n; i++) {
      const c = this.chunks.get(i);
      h.update(
        c ?? zeros.subarray(0, Math.min(MEMORY_CHUNK_SIZE, this.size - i * MEMORY_CHUNK_SIZE)),
      );
    }
    return new Uint8Array(h.digest());
  }

  #forChunks(
    offset: number,
    length: number,
    fn: (
      chunk: Uint8Array | undefined,
      idx: number,
      cOff: number,
      pos: number,
      len: number,
    ) => void,
  ): void {
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const idx = Math.floor(abs / MEMORY_CHUNK_SIZE);
      const cOff = abs - idx * MEMORY_CHUNK_SIZE;
      const len = Math.min(MEMORY_CHUNK_SIZE - cOff, length - pos);
      fn(this.chunks.get(idx), idx, cOff, pos, len);
      pos += len;
    }
  }
}

/** One step to undo at a crash. */
type Undo =
  & (
    | { kind: "bytes"; data: ObjectData; offset: number; old: Uint8Array }
    | { kind: "live"; oid: bigint; prev: ObjectData | undefined }
    | { kind: "stale"; key: string; oid: bigint; epoch: number; prev: ObjectData | undefined }
  )
  & { writeback?: boolean };

/**
 * The simulated disk under a MemoryStore: what survives close() and crash(). At most one store is
 * open on a disk at a time (as the directory lock guarantees for the plain store).
 */
export class MemoryDisk {
  /** Total bytes of the simulated file system. */
  readonly capacity: number;
  /** @internal live objects */
  readonly live = new Map<bigint, ObjectData>();
  /** @internal stale copies, keyed by staleFileName() */
  readonly stale = new Map<string, { oid: bigint; epoch: number; data: ObjectData }>();
  /** @internal the store currently open on this disk */
  openStore: MemoryStore | null = null;

  constructor(capacity: number = DEFAULT_MEMORY_CAPACITY) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, `bad capacity ${capacity}`);
    this.capacity = capacity;
  }
}

/** Options of MemoryStore.open(). */
export interface MemoryStoreOptions {
  /** Nothing is durable before sync() or close() (sheep -n). Default false. */
  readonly nosync?: boolean;
}

/** The operations faults can be injected into (readInto counts as read, staleSize as readStale). */
export type MemoryStoreOp =
  | "exists"
  | "size"
  | "read"
  | "write"
  | "create"
  | "remove"
  | "list"
  | "sha1"
  | "moveToStale"
  | "readStale"
  | "sha1Stale"
  | "listStale"
  | "purgeStale"
  | "restoreFromStale";

/** A failure to inject. */
export interface MemoryFault {
  /** The operation that fails. */
  readonly op: MemoryStoreOp;
  /** Only operations on this oid (any oid when absent). */
  readonly oid?: bigint;
  /** The SdError result; EIO by default. */
  readonly result?: number;
  /** How many matching operations fail; 1 by default. */
  readonly times?: number;
}

/** An ObjectStore held in memory; see the module comment for its durability model. */
export class MemoryStore implements ObjectStore {
  /** The disk this store works on; open it again after close() or crash(). */
  readonly disk: MemoryDisk;
  readonly #nosync: boolean;
  #undo: Undo[] = [];
  #faults: { op: MemoryStoreOp; oid?: bigint; result: number; left: number }[] = [];
  #closed = false;

  private constructor(disk: MemoryDisk, options: MemoryStoreOptions) {
    this.disk = disk;
    this.#nosync = options.nosync ?? false;
  }

  /** Opens a store on `disk` (a new empty disk by default). One open store per disk. */
  static open(disk: MemoryDisk = new MemoryDisk(), options: MemoryStoreOptions = {}): MemoryStore {
    assert(disk.openStore === null, "the memory disk is already open");
    const store = new MemoryStore(disk, options);
    disk.openStore = store;
    return store;
  }

  /** Whether the store was opened nosync. */
  get nosync(): boolean {
    return this.#nosync;
  }

  /** Makes the next `times` operations `op` (on `oid`, if given) fail with SdError(result). */
  injectFault(fault: MemoryFault): void {
    const times = fault.times ?? 1;
    assert(Number.isInteger(times) && times >= 1, "fault times must be ≥ 1");
    this.#faults.push({
      op: fault.op,
      oid: fault.oid,
      result: fault.result ?? Res.EIO,
      left: times,
    });
  }

  /** Drops every injected fault not yet triggered. */
  clearFaults(): void {
    this.#faults = [];
  }

  /** Makes everything done so far durable (syncfs). */
  sync(): void {
    this.#assertOpen();
    this.#undo = [];
  }

  /**
   * A crash: everything not yet durable is undone on the disk and the store is closed without
   * flushing. Reopen the disk with MemoryStore.open() to restart.
   */
  crash(): void {
    this.#assertOpen();
    for (let i = this.#undo.length - 1; i >= 0; i--) {
      const u = this.#undo[i];
      if (u.kind === "bytes") {
        u.data.write(u.offset, u.old);
      } else if (u.kind === "live") {
        if (u.prev) this.disk.live.set(u.oid, u.prev);
        else this.disk.live.delete(u.oid);
      } else {
        if (u.prev) this.disk.stale.set(u.key, { oid: u.oid, epoch: u.epoch, data: u.prev });
        else this.disk.stale.delete(u.key);
      }
    }
    this.#undo = [];
    this.#closed = true;
    this.disk.openStore = null;
  }

  /** Number of operations a crash would undo now (for tests of the model). */
  get unsyncedCount(): number {
    return this.#undo.length;
  }

  exists(oid: bigint): Promise<boolean> {
    return this.#run("exists", oid, () => this.disk.live.has(oid));
  }

  size(oid: bigint): Promise<number> {
    return this.#run("size", oid, () => this.#get(oid).size);
  }

  read(oid: bigint, offset: number, length: number): Promise<Uint8Array> {
    return this.#run("read", oid, () => {
      const data = this.#get(oid);
      checkObjectRange(oid, offset, length, data.size);
      const out = new Uint8Array(length);
      data.read(offset, out);
      return out;
    });
  }

  readInto(oid: bigint, offset: number, buf: Uint8Array): Promise<void> {
    return this.#run("read", oid, () => {
      const data = this.#get(oid);
      checkObjectRange(oid, offset, buf.length, data.size);
      data.read(offset, buf);
    });
  }

  write(oid: bigint, offset: number, data: Uint8Array, writeback = false): Promise<void> {
    return this.#run("write", oid, () => {
      const obj = this.#get(oid);
      checkObjectRange(oid, offset, data.length, obj.size);
      if (this.#nosync || writeback) {
        const old = new Uint8Array(data.length);
        obj.read(offset, old);
        this.#undo.push({ kind: "bytes", data: obj, offset, old, writeback });
      }
      obj.write(offset, data);
    });
  }

  create(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    options: CreateOptions,
  ): Promise<void> {
    return this.#run("create", oid, () => {
      assert(Number.isSafeInteger(objectSize) && objectSize > 0, `bad object size ${objectSize}`);
      checkObjectRange(oid, offset, data.length, objectSize);
      const old = this.disk.live.get(oid);
      if (old && !options.replace) {
        throw new SdError(Res.OID_EXIST, `object ${objectFileName(oid)} exists`);
      }
      const obj = new ObjectData(objectSize, options.sparse);
      obj.write(offset, data);
      const need = obj.allocated;
      // A replaced object's bytes are freed unless a stale copy still links them.
      const freed = old && ![...this.disk.stale.values()].some((x) => x.data === old)
        ? old.allocated
        : 0;
      if (this.#allocated() - freed + need > this.disk.capacity) {
        throw new SdError(Res.NO_SPACE, `no space for ${objectFileName(oid)} (${need} bytes)`);
      }
      if (options.writeback) {
        this.#undo.push({ kind: "live", oid, prev: old, writeback: true });
        this.disk.live.set(oid, obj);
      } else {
        this.#setLive(oid, obj);
        this.#dirSynced();
      }
    });
  }

  flush(): Promise<void> {
    return this.#run(null, undefined, () => {
      if (!this.#nosync) this.#undo = [];
    });
  }

  remove(oid: bigint): Promise<void> {
    return this.#run("remove", oid, () => {
      this.#get(oid);
      this.#setLive(oid, undefined);
      this.#dirSynced();
    });
  }

  list(): Promise<bigint[]> {
    return this.#run("list", undefined, () => [...this.disk.live.keys()].sort(compareBigints));
  }

  sha1(oid: bigint): Promise<Uint8Array> {
    return this.#run("sha1", oid, () => this.#get(oid).sha1());
  }

  usedBytes(): Promise<number> {
    return this.#run(null, undefined, () => {
      let total = 0;
      for (const d of this.disk.live.values()) total += d.size;
      return total;
    });
  }

  stat(): Promise<StoreSpace> {
    return this.#run(null, undefined, () => ({
      size: this.disk.capacity,
      free: Math.max(0, this.disk.capacity - this.#allocated()),
    }));
  }

  moveToStale(oid: bigint, epoch: number): Promise<void> {
    return this.#run("moveToStale", oid, () => {
      assertEpoch(epoch);
      const obj = this.#get(oid);
      // As the plain store: the object's writeback writes are made durable with the move.
      const ofObject = (u: Undo) =>
        (u.kind === "bytes" && u.data === obj) || (u.kind === "live" && u.oid === oid);
      this.#undo = this.#undo.filter((u) => !(u.writeback && ofObject(u)));
      this.#setStale(staleFileName(oid, epoch), oid, epoch, obj, true);
      this.#setLive(oid, undefined, true);
    });
  }

  syncMoves(): Promise<void> {
    return this.#run(null, undefined, () => this.#dirSynced());
  }

  readStale(oid: bigint, epoch: number, offset: number, length: number): Promise<Uint8Array> {
    return this.#run("readStale", oid, () => {
      const data = this.#getStale(oid, epoch);
      checkObjectRange(oid, offset, length, data.size);
      const out = new Uint8Array(length);
      data.read(offset, out);
      return out;
    });
  }

  staleSize(oid: bigint, epoch: number): Promise<number> {
    return this.#run("readStale", oid, () => this.#getStale(oid, epoch).size);
  }

  sha1Stale(oid: bigint, epoch: number): Promise<Uint8Array> {
    return this.#run("sha1Stale", oid, () => this.#getStale(oid, epoch).sha1());
  }

  listStale(): Promise<StaleObject[]> {
    return this.#run("listStale", undefined, () =>
      [...this.disk.stale.values()]
        .map(({ oid, epoch }) => ({ oid, epoch }))
        .sort((a, b) => compareBigints(a.oid, b.oid) || a.epoch - b.epoch));
  }

  purgeStale(): Promise<void> {
    return this.#run("purgeStale", undefined, () => this.#purgeStale());
  }

  restoreFromStale(oid: bigint, epoch: number): Promise<void> {
    return this.#run("restoreFromStale", oid, () => {
      assertEpoch(epoch);
      const data = this.#getStale(oid, epoch);
      if (this.disk.live.has(oid)) {
        throw new SdError(Res.OID_EXIST, `restore of ${objectFileName(oid)}: object exists`);
      }
      this.#setLive(oid, data);
      this.#dirSynced();
    });
  }

  removeAll(): Promise<void> {
    return this.#run(null, undefined, () => {
      for (const oid of [...this.disk.live.keys()]) this.#setLive(oid, undefined);
      this.#purgeStale();
      this.#dirSynced();
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#undo = [];
      this.#closed = true;
      this.disk.openStore = null;
    }
    return Promise.resolve();
  }

  /** Runs `op` to completion now; its outcome is the returned promise's. */
  #run<T>(op: MemoryStoreOp | null, oid: bigint | undefined, body: () => T): Promise<T> {
    try {
      this.#assertOpen();
      if (op !== null) this.#maybeFail(op, oid);
      return Promise.resolve(body());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #maybeFail(op: MemoryStoreOp, oid: bigint | undefined): void {
    const i = this.#faults.findIndex((f) =>
      f.op === op && (f.oid === undefined || oid === undefined || f.oid === oid)
    );
    if (i < 0) return;
    const f = this.#faults[i];
    if (--f.left === 0) this.#faults.splice(i, 1);
    const what = oid === undefined ? op : `${op} ${objectFileName(oid)}`;
    throw new SdError(f.result, `injected fault: ${what}`);
  }

  #assertOpen(): void {
    assert(!this.#closed, "the memory store is closed");
  }

  #get(oid: bigint): ObjectData {
    const d = this.disk.live.get(oid);
    if (!d) throw new SdError(Res.NO_OBJ, `no object ${objectFileName(oid)}`);
    return d;
  }

  #getStale(oid: bigint, epoch: number): ObjectData {
    const s = this.disk.stale.get(staleFileName(oid, epoch));
    if (!s) throw new SdError(Res.NO_OBJ, `no stale copy ${staleFileName(oid, epoch)}`);
    return s.data;
  }

  /** Sets a live name; `metadataOnly` ops are not durable even in sync mode. */
  #setLive(oid: bigint, data: ObjectData | undefined, metadataOnly = false): void {
    if (this.#nosync || metadataOnly) {
      this.#undo.push({ kind: "live", oid, prev: this.disk.live.get(oid) });
    }
    if (data) this.disk.live.set(oid, data);
    else this.disk.live.delete(oid);
  }

  #setStale(
    key: string,
    oid: bigint,
    epoch: number,
    data: ObjectData | undefined,
    metadataOnly: boolean,
  ): void {
    if (this.#nosync || metadataOnly) {
      this.#undo.push({ kind: "stale", key, oid, epoch, prev: this.disk.stale.get(key)?.data });
    }
    if (data) this.disk.stale.set(key, { oid, epoch, data });
    else this.disk.stale.delete(key);
  }

  #purgeStale(): void {
    for (const [key, s] of [...this.disk.stale]) {
      this.#setStale(key, s.oid, s.epoch, undefined, true);
    }
  }

  /**
   * An fsync of the object directory: pending metadata operations become durable, writeback
   * writes and creates do not.
   */
  #dirSynced(): void {
    if (!this.#nosync) this.#undo = this.#undo.filter((u) => u.writeback === true);
  }

  #allocated(): number {
    const seen = new Set<ObjectData>();
    let total = 0;
    const add = (d: ObjectData) => {
      if (seen.has(d)) return;
      seen.add(d);
      total += d.allocated;
    };
    for (const d of this.disk.live.values()) add(d);
    for (const s of this.disk.stale.values()) add(s.data);
    return total;
  }
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
