/**
 * The object store of one sheep: whole objects addressed by oid, positional I/O inside them, and
 * the stale objects kept across an epoch change for recovery. The plain (file per object) store
 * implements it today; an in-memory store for the simulation and multi-disk stores fit the same
 * interface and pass the same contract suite (store_contract_test_suite.ts).
 *
 * Failures are SdErrors: a missing object is NO_OBJ, a range outside the object INVALID_PARMS,
 * creating an object that exists OID_EXIST, a full disk NO_SPACE, any other I/O failure EIO.
 * Offsets and lengths are byte counts (safe integers); oids are u64 bigints; epochs are u32.
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

/** How an object is laid out when created. */
export interface CreateOptions {
  /**
   * Sparse objects (inode, ledger) take only the blocks their non-zero data needs; others get
   * their whole size allocated at creation, so later writes never allocate and never find the
   * disk full.
   */
  readonly sparse: boolean;
  /**
   * Replace an existing object instead of failing with OID_EXIST (a peer CREATE: its content is
   * newer than whatever copy this node has). Still atomic: a concurrent reader sees the old
   * object or the complete new one, never a mix.
   */
  readonly replace?: boolean;
  /**
   * Writeback: resolve once the object is complete and visible, before it is durable; flush()
   * makes it durable. Default false (durable when it resolves).
   */
  readonly writeback?: boolean;
}

/** An object moved away at an epoch change (`obj/.stale/<oid>.<epoch>`). */
export interface StaleObject {
  readonly oid: bigint;
  readonly epoch: number;
}

/** Capacity of the file system holding the store, in bytes (statvfs). */
export interface StoreSpace {
  readonly size: number;
  readonly free: number;
}

/** Object storage of one sheep. All methods may run concurrently with each other. */
export interface ObjectStore {
  /** Whether the object exists (stale copies do not count). */
  exists(oid: bigint): Promise<boolean>;
  /** The object's size in bytes. NO_OBJ when missing. */
  size(oid: bigint): Promise<number>;
  /** `length` bytes at `offset`. INVALID_PARMS when the range leaves the object. */
  read(oid: bigint, offset: number, length: number): Promise<Uint8Array>;
  /** Fills `buf` from `offset` (no intermediate copy). INVALID_PARMS outside the object. */
  readInto(oid: bigint, offset: number, buf: Uint8Array): Promise<void>;
  /**
   * Writes `data` at `offset` of an existing object; durable when it resolves (unless the store
   * was opened nosync), or with `writeback` once flush() has run after it resolved. Writes to
   * disjoint ranges may run concurrently.
   */
  write(oid: bigint, offset: number, data: Uint8Array, writeback?: boolean): Promise<void>;
  /**
   * Creates an object of `objectSize` bytes, zeros except `data` at `offset`, atomically: a
   * concurrent reader sees NO_OBJ or the complete object. OID_EXIST when the object exists
   * (also for the loser of two concurrent creates); the existing object is left untouched.
   * With `options.replace` an existing object is replaced as a whole, atomically.
   */
  create(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    objectSize: number,
    options: CreateOptions,
  ): Promise<void>;
  /** Removes the object. NO_OBJ when missing. */
  remove(oid: bigint): Promise<void>;
  /** Every object's oid, ascending. */
  list(): Promise<bigint[]>;
  /** SHA-1 (20 bytes) of the whole object. */
  sha1(oid: bigint): Promise<Uint8Array>;
  /** Sum of the sizes of all objects (stale copies excluded). */
  usedBytes(): Promise<number>;
  /** Size and free space of the underlying file system. */
  stat(): Promise<StoreSpace>;

  /**
   * Moves the object to the stale area under `epoch`; it no longer exists. NO_OBJ if missing.
   * Not durable by itself: call syncMoves() after a batch of moves.
   */
  moveToStale(oid: bigint, epoch: number): Promise<void>;
  /**
   * Makes every moveToStale() and purgeStale() done so far durable (fsync of `obj/` and
   * `obj/.stale/`). Recovery calls it after the moves of an epoch change, before any other I/O
   * at the new epoch: a crash must not bring back a live copy that is no longer current.
   * Nothing to do for a store opened nosync.
   */
  syncMoves(): Promise<void>;
  /** Reads from a stale copy. NO_OBJ when there is no such copy. */
  readStale(oid: bigint, epoch: number, offset: number, length: number): Promise<Uint8Array>;
  /** Size of a stale copy. NO_OBJ when there is none. */
  staleSize(oid: bigint, epoch: number): Promise<number>;
  /** SHA-1 of a stale copy. NO_OBJ when there is none. */
  sha1Stale(oid: bigint, epoch: number): Promise<Uint8Array>;
  /** Every stale copy, ordered by oid then epoch. */
  listStale(): Promise<StaleObject[]>;
  /** Removes every stale copy. */
  purgeStale(): Promise<void>;
  /**
   * Makes a stale copy the live object again (the copy stays in the stale area until purged).
   * NO_OBJ when there is no such copy, OID_EXIST when the object exists.
   */
  restoreFromStale(oid: bigint, epoch: number): Promise<void>;

  /**
   * Makes every writeback write and create that resolved before this call durable (objects removed
   * or moved to the stale area since need nothing). Nothing to do for a store opened nosync. On a
   * failure the writes stay pending: a later flush() tries them again.
   */
  flush(): Promise<void>;

  /** Removes every object and stale copy (MAKE_FS). */
  removeAll(): Promise<void>;
  /** Releases the store's resources. The store must not be used afterwards. */
  close(): Promise<void>;
}

/**
 * Checks that `[offset, offset+length)` lies inside an object of `size` bytes; throws
 * INVALID_PARMS otherwise. Shared by the implementations so they reject the same requests.
 */
export function checkObjectRange(
  oid: bigint,
  offset: number,
  length: number,
  size: number,
): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > size
  ) {
    throw new SdError(
      Res.INVALID_PARMS,
      `range ${offset}+${length} outside object ${oid.toString(16)} of ${size} bytes`,
    );
  }
}
