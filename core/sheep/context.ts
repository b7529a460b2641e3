/**
 * What the op handlers of a sheep share: its identity, store, VDI state, peers and the current
 * cluster view. One instance per daemon (no global state); the simulation builds several.
 *
 * @module
 */

import type { ClusterInfo } from "../proto/cluster_info.ts";
import type { SdNode } from "../proto/node.ts";
import type { Ring } from "../placement/ring.ts";
import type { ObjectStore } from "../store/object_store.ts";
import type { PeerPool } from "../net/peer_pool.ts";
import type { VdiRegistry } from "./vdi_registry.ts";
import type { SheepLog } from "./log.ts";
import type { SheepStats } from "./stats.ts";

/** What a peer op on the local store does to its object (for the recovery wait rules). */
export type ObjectIoKind = "read" | "write" | "create" | "remove";

/**
 * Admission of peer I/O on the local store while the node recovers (recovery_executor.ts): waits
 * for the moves of the epoch and, except for creates, for the object's own recovery; a failure
 * after an epoch change becomes OLD_NODE_VER.
 */
export interface ObjectIoGuard {
  io<T>(oid: bigint, kind: ObjectIoKind, epoch: number, op: () => Promise<T>): Promise<T>;
}

/** The shared state of one sheep. */
export interface SheepContext {
  /** This node as the cluster knows it. */
  readonly self: SdNode;
  /** Text "host:port" of this node. */
  readonly selfName: string;
  readonly store: ObjectStore;
  readonly vdis: VdiRegistry;
  readonly peers: PeerPool;
  readonly log: SheepLog;
  readonly stats: SheepStats;
  /** Current cluster state (status, epoch, ctime, copies, nodes of the current epoch). */
  cinfo: ClusterInfo;
  /** Current members as the cluster driver reports them. */
  members: SdNode[];
  /** The vnode ring of the current epoch. */
  ring: Ring;
  /** Recovery's admission of local peer I/O (absent in contexts that do not recover). */
  readonly recovery?: ObjectIoGuard;
  /** Resolves when the local epoch reaches `epoch` (rejects after `deadlineMs`). */
  waitForEpoch(epoch: number, deadlineMs: number): Promise<void>;
}
