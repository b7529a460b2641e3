/**
 * The cluster driver interface: membership and totally ordered messages for the sheep.
 * Implementations: `memory.ts` (in-process, for unit tests and the simulation), `local.ts`
 * (several sheep on one host), `corosync.ts`, `zookeeper.ts`. All pass `contract_test_suite.ts`.
 *
 * Ordering contract: every member sees the same sequence of accept / leave / notify /
 * update_node events, and the driver delivers them one at a time, awaiting each handler before
 * the next. Handlers therefore must never wait for a later cluster event.
 *
 * @module
 */

import type { SdNode } from "../proto/node.ts";

/** What the member that checks a join decides. */
export interface JoinDecision {
  accept: boolean;
  /** The (possibly rewritten) join payload passed to every member's onAccept. */
  opaque: Uint8Array;
  /** Why the join was refused, for the joiner's error and log. */
  reason?: string;
}

/** Callbacks from the driver into the sheep. All are delivered in total order. */
export interface ClusterHandlers {
  /**
   * Runs on exactly one existing member (the master) when a node asks to join; not run for the
   * very first node of an empty cluster, which is accepted as is.
   */
  onJoinCheck(joining: SdNode, members: readonly SdNode[], opaque: Uint8Array):
    | JoinDecision
    | Promise<JoinDecision>;
  /** Every member, including the joiner itself, learns the joined node and the new member list. */
  onAccept(
    joined: SdNode,
    members: readonly SdNode[],
    opaque: Uint8Array,
  ): void | Promise<void>;
  /** A member left (leave() or death); `members` is the list without it. */
  onLeave(left: SdNode, members: readonly SdNode[]): void | Promise<void>;
  /** A notify() or unblock() message, from `sender`. */
  onNotify(sender: SdNode, msg: Uint8Array): void | Promise<void>;
  /** A member's node record changed (update_node). */
  onUpdateNode(node: SdNode, members: readonly SdNode[]): void | Promise<void>;
  /**
   * This node lost the cluster (driver connection gone, session expired, minority side): it must
   * stop serving I/O. `reason` says why, for the log.
   */
  onLost(reason: string): void | Promise<void>;
}

/** One cluster engine. */
export interface ClusterDriver {
  /** Driver name as given to `sheep -c` ("local", "corosync", "zookeeper"). */
  readonly name: string;
  /** Address to announce when `sheep -y` is not given (16 bytes). */
  localAddr(): Uint8Array;
  /** Opens the driver; no events are delivered before join(). */
  init(handlers: ClusterHandlers): Promise<void>;
  /**
   * Joins the cluster as `myself` with `opaque` (cluster_info). Resolves once this node's own
   * accept event has been delivered; rejects with SdError(JOIN_FAILED) when refused.
   */
  join(myself: SdNode, opaque: Uint8Array): Promise<void>;
  /** Leaves the cluster; events stop for this node. */
  leave(): Promise<void>;
  /** Broadcasts `msg` to every member (this one included) in total order. */
  notify(msg: Uint8Array): Promise<void>;
  /**
   * Enters the cluster-wide exclusive section: resolves when no member will deliver another event
   * until this node's unblock(). Calls from one node are queued.
   */
  block(): Promise<void>;
  /** Leaves the exclusive section, delivering `msg` to every member through onNotify. */
  unblock(msg: Uint8Array): Promise<void>;
  /** Replaces this node's record everywhere (vnodes, space). */
  updateNode(node: SdNode): Promise<void>;
  /** Releases every resource (sockets, files, FFI handles) so the process can exit. */
  close(): Promise<void>;
}
