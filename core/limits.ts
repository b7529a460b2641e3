/**
 * Every limit of the daemon and its clients, named once. Relations between them are asserted by
 * `checkLimits()` (called by the daemon at start and by the tests).
 *
 * @module
 */

import { assert } from "./assert.ts";
import {
  SD_CLUSTER_INFO_SIZE,
  SD_INODE_SIZE,
  SD_MAX_EVENT_BUF_SIZE,
  SD_VDI_BITMAP_SIZE,
} from "./proto/constants.ts";

/** Largest data object size (block_size_shift 31 is QEMU's cap; we allow up to 2^26 = 64 MiB). */
export const MAX_BLOCK_SIZE_SHIFT = 26;
/** Smallest block size shift accepted (QEMU allows 20). */
export const MIN_BLOCK_SIZE_SHIFT = 20;
/** Largest object of any kind: the full inode. */
export const MAX_OBJECT_SIZE = SD_INODE_SIZE;
/**
 * Largest data_length accepted in a request (payload or wanted reply). Above it the connection is
 * closed before anything is allocated. Must fit the biggest legitimate reply: cluster_info,
 * a whole inode, the 2 MiB VDI bitmap, a full object.
 */
export const MAX_REQUEST_DATA = 64 * 1024 * 1024;
/** Requests in flight on one connection; further reads pause until replies drain. */
export const MAX_INFLIGHT_PER_CONNECTION = 128;
/** Concurrent client connections per sheep. */
export const MAX_CONNECTIONS = 4096;
/** Idle pooled peer connections kept per remote sheep. */
export const PEER_POOL_SIZE = 4;
/** A cluster event (cluster op message) fits in this many bytes. */
export const MAX_EVENT_SIZE = SD_MAX_EVENT_BUF_SIZE;
/** How long a peer or dog request may take before the caller gives up (ms). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long connecting to a sheep may take (ms). */
export const CONNECT_TIMEOUT_MS = 5_000;

/** Largest NBD READ or WRITE payload: the NBD protocol's default maximum block size. */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;
/** Largest option data an NBD client may send in the handshake (export names are ≤ 4096 B). */
export const NBD_MAX_OPTION_DATA = 64 * 1024;
/** NBD requests in flight on one connection; further reads pause until replies drain. */
export const NBD_MAX_INFLIGHT_PER_CONNECTION = 64;
/**
 * Extents in one NBD block status reply (8 bytes each); a longer answer is cut there and the
 * client asks again from where it ends, as the protocol provides.
 */
export const NBD_MAX_EXTENTS = 65536;
/** Payload bytes (READ and WRITE lengths) in flight on one NBD connection. */
export const NBD_MAX_INFLIGHT_BYTES = 128 * 1024 * 1024;
/** Concurrent NBD connections per sheep. */
export const NBD_MAX_CONNECTIONS = 1024;
/** How long an NBD client may take from connecting to the end of its handshake (ms). */
export const NBD_HANDSHAKE_TIMEOUT_MS = 30_000;
/**
 * A write that would create its data object while a sequential stream is in flight is held back
 * until no further piece of the object came for this long (ms), so that the pieces go out as one
 * create (core/vdi_client/create_gather.ts)…
 */
export const CREATE_GATHER_IDLE_MS = 2;
/** …and at the latest this long after the first piece was held (ms). */
export const CREATE_GATHER_MAX_MS = 20;

/**
 * Avoid-diskfull (`dog cluster format -F`): the space a node keeps free after a recovery, at
 * least this many bytes (two default data objects: room for the writes in flight, epoch files and
 * the log while the recovery runs)…
 */
export const DISKFULL_RESERVE_MIN_BYTES = 8 * 1024 * 1024;
/** …and at least this fraction of the node's capacity, in per mille. */
export const DISKFULL_RESERVE_PERMILLE = 20;
/**
 * Delay before a recovery fetch that found the disk full (NO_SPACE) is tried again (ms): longer
 * than a transient failure's, since space comes back only when an operator frees or adds some.
 */
export const RECOVERY_NO_SPACE_RETRY_MS = 5_000;

/** Asserts the relations between limits. */
export function checkLimits(): void {
  assert(MAX_REQUEST_DATA >= MAX_OBJECT_SIZE, "a request must hold a whole inode");
  assert(MAX_REQUEST_DATA >= SD_CLUSTER_INFO_SIZE, "a reply must hold cluster_info");
  assert(MAX_REQUEST_DATA >= SD_VDI_BITMAP_SIZE, "a reply must hold the VDI bitmap");
  assert(MAX_REQUEST_DATA >= 1 << MAX_BLOCK_SIZE_SHIFT, "a request must hold a data object");
  assert(MAX_EVENT_SIZE <= MAX_REQUEST_DATA, "an event fits in a request");
  assert(MIN_BLOCK_SIZE_SHIFT <= 22 && 22 <= MAX_BLOCK_SIZE_SHIFT, "default shift in range");
  assert(NBD_MAX_INFLIGHT_BYTES >= NBD_MAX_PAYLOAD, "one NBD request of the largest size fits");
  assert(
    CREATE_GATHER_IDLE_MS <= CREATE_GATHER_MAX_MS,
    "a held write waits no longer than the cap",
  );
  assert(
    DISKFULL_RESERVE_MIN_BYTES >= 1 << 22 && DISKFULL_RESERVE_PERMILLE < 1000,
    "the avoid-diskfull reserve holds a default object and leaves room",
  );
}
