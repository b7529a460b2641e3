/**
 * Membership and epochs as a pure state machine. The master decides a join from its own
 * cluster_info and the joiner's; the result travels in the join payload and every member applies
 * it identically. Leaves and formats are applied by every member from the same inputs, so every
 * node derives the same epoch history.
 *
 * @module
 */

import { ClusterFlag, ClusterStatus, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import type { ClusterInfo } from "../proto/cluster_info.ts";
import { sameNode, type SdNode, sortNodes } from "../proto/node.ts";
import { autoVnodes } from "../placement/vnodes.ts";

/** What the master decided about a joiner. */
export interface JoinVerdict {
  accept: boolean;
  /** Why a join was refused (for the joiner's log and exit message). */
  reason?: string;
  /** The cluster state after the join, as every member must apply it. */
  cinfo: ClusterInfo;
  /** True when the epoch was bumped by this join (a new epoch file must be written). */
  newEpoch: boolean;
}

/** The node list of a new epoch: sorted, with auto vnodes applied when the cluster uses them. */
export function epochNodes(members: readonly SdNode[], flags: number): SdNode[] {
  const sorted = sortNodes(members);
  return flags & ClusterFlag.AUTO_VNODES ? autoVnodes(sorted) : sorted;
}

function containsAll(have: readonly SdNode[], want: readonly SdNode[]): boolean {
  return want.every((w) => have.some((h) => sameNode(h, w)));
}

function sameSet(a: readonly SdNode[], b: readonly SdNode[]): boolean {
  return a.length === b.length && containsAll(a, b);
}

/**
 * Settles a waiting cluster: when every node of the latest epoch is present, the cluster runs;
 * if more nodes than that are present the membership changed and the epoch moves on.
 */
function settle(
  ci: ClusterInfo,
  present: readonly SdNode[],
): { cinfo: ClusterInfo; bumped: boolean } {
  if (ci.status !== ClusterStatus.WAIT || ci.ctime === 0n) return { cinfo: ci, bumped: false };
  if (!containsAll(present, ci.nodes)) return { cinfo: ci, bumped: false };
  if (sameSet(present, ci.nodes)) {
    return { cinfo: { ...ci, status: ClusterStatus.OK }, bumped: false };
  }
  return {
    cinfo: {
      ...ci,
      status: ClusterStatus.OK,
      epoch: ci.epoch + 1,
      nodes: epochNodes(present, ci.flags),
    },
    bumped: true,
  };
}

/** The state of the very first member of a cluster, accepted without a master. */
export function decideFirst(own: ClusterInfo, self: SdNode): JoinVerdict {
  if (own.ctime === 0n) {
    return {
      accept: true,
      cinfo: { ...own, status: ClusterStatus.WAIT, epoch: 0, nodes: [] },
      newEpoch: false,
    };
  }
  const { cinfo, bumped } = settle({ ...own, status: ClusterStatus.WAIT }, [self]);
  return { accept: true, cinfo, newEpoch: bumped };
}

/**
 * The master's decision on `joiner` (carrying `theirs`) given its own state `mine` and the current
 * members (without the joiner).
 */
export function decideJoin(
  mine: ClusterInfo,
  members: readonly SdNode[],
  joiner: SdNode,
  theirs: ClusterInfo,
): JoinVerdict {
  const refuse = (reason: string): JoinVerdict => ({
    accept: false,
    reason,
    cinfo: mine,
    newEpoch: false,
  });
  if (theirs.protoVer !== SD_SHEEP_PROTO_VER) {
    return refuse(`protocol version 0x${theirs.protoVer.toString(16)} differs from 0x0a`);
  }
  if ((mine.flags ^ theirs.flags) & ClusterFlag.AUTO_VNODES && joiner.nrVnodes > 0) {
    return refuse("the node's vnode strategy (auto or fixed, sheep -V) differs from the cluster's");
  }
  if (members.some((m) => sameNode(m, joiner))) {
    return refuse("a node with the same address and port is already a member");
  }
  if (mine.ctime !== 0n && theirs.ctime !== 0n && mine.ctime !== theirs.ctime) {
    return refuse(
      `the node's store belongs to another cluster (ctime ${theirs.ctime} differs from ${mine.ctime})`,
    );
  }
  const present = [...members, joiner];
  switch (mine.status) {
    case ClusterStatus.OK: {
      if (theirs.ctime !== 0n && theirs.epoch > mine.epoch) {
        return refuse(
          `the node's epoch ${theirs.epoch} is newer than the cluster's ${mine.epoch}: conflicting epoch history`,
        );
      }
      return {
        accept: true,
        cinfo: { ...mine, epoch: mine.epoch + 1, nodes: epochNodes(present, mine.flags) },
        newEpoch: true,
      };
    }
    case ClusterStatus.WAIT: {
      let base = mine;
      if (theirs.ctime !== 0n && (mine.ctime === 0n || theirs.epoch > mine.epoch)) {
        // The joiner has seen a later epoch than anyone here: its history becomes the cluster's.
        base = { ...theirs, status: ClusterStatus.WAIT, disableRecovery: mine.disableRecovery };
      }
      const { cinfo, bumped } = settle(base, present);
      return { accept: true, cinfo, newEpoch: bumped };
    }
    default:
      return refuse("the cluster is shutting down");
  }
}

/** The state after `left` is gone; `remaining` are the members without it. */
export function applyLeave(
  ci: ClusterInfo,
  remaining: readonly SdNode[],
): { cinfo: ClusterInfo; newEpoch: boolean } {
  if (ci.status !== ClusterStatus.OK) return { cinfo: ci, newEpoch: false };
  return {
    cinfo: { ...ci, epoch: ci.epoch + 1, nodes: epochNodes(remaining, ci.flags) },
    newEpoch: true,
  };
}

/** Parameters of MAKE_FS. */
export interface FormatParams {
  ctime: bigint;
  copies: number;
  copyPolicy: number;
  flags: number;
  blockSizeShift: number;
  store: string;
}

/** The state right after MAKE_FS: epoch 1 with the present members, running. */
export function applyFormat(
  ci: ClusterInfo,
  members: readonly SdNode[],
  p: FormatParams,
): ClusterInfo {
  return {
    ...ci,
    ctime: p.ctime,
    nrCopies: p.copies,
    copyPolicy: p.copyPolicy,
    flags: p.flags,
    blockSizeShift: p.blockSizeShift,
    defaultStore: p.store,
    epoch: 1,
    status: ClusterStatus.OK,
    nodes: epochNodes(members, p.flags),
  };
}

/** The state after FORCE_RECOVER: a waiting cluster runs with the members present. */
export function applyForceRecover(
  ci: ClusterInfo,
  members: readonly SdNode[],
): { cinfo: ClusterInfo; newEpoch: boolean } {
  return {
    cinfo: {
      ...ci,
      status: ClusterStatus.OK,
      epoch: ci.epoch + 1,
      nodes: epochNodes(members, ci.flags),
    },
    newEpoch: true,
  };
}
