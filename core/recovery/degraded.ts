/**
 * The cluster-wide view of why the cluster serves degraded: the members whose recovery of the
 * current epoch did not start (avoid-diskfull: it would fill their disk) or is stuck on a full
 * disk (NO_SPACE while recovering). Each node announces its own state through the cluster driver
 * (MsgKind.RECOVERY_DEGRADED); since messages and membership changes arrive in one total order,
 * every member holds the same view, and `dog cluster info` on any node prints it.
 *
 * Plain data and pure functions. An entry lives until its node reports COMPLETE_RECOVERY for the
 * epoch, leaves, or a new epoch begins (every node then decides again, and reports again if it
 * is still short of space).
 *
 * @module
 */

import { assert } from "../assert.ts";
import type { DegradedNode } from "../proto/degraded.ts";
import { nodeKey } from "./plan.ts";

/** The view at one epoch. */
export interface DegradedState {
  readonly epoch: number;
  /** At most one entry per node, in the order they were reported. */
  readonly nodes: readonly DegradedNode[];
}

/** Nothing known yet. */
export function degradedInit(): DegradedState {
  return { epoch: 0, nodes: [] };
}

/**
 * A new epoch with `members` (node keys). A newer epoch drops every report (each node decides
 * again); the same epoch keeps those of the members still there. An older one changes nothing.
 */
export function degradedOnEpoch(
  s: DegradedState,
  epoch: number,
  members: readonly string[],
): DegradedState {
  if (epoch < s.epoch) return s;
  if (epoch > s.epoch) return { epoch, nodes: [] };
  const m = new Set(members);
  return { epoch, nodes: s.nodes.filter((n) => m.has(nodeKey(n.node))) };
}

/**
 * A report for `epoch`. A newer epoch than the view's starts a new view (the report may be
 * delivered before the epoch change is applied here); an older one is ignored; a second report
 * of the same node replaces its first.
 */
export function degradedOnReport(
  s: DegradedState,
  epoch: number,
  report: DegradedNode,
): DegradedState {
  assert(Number.isSafeInteger(report.needed) && report.needed >= 0, "bad needed bytes");
  assert(Number.isSafeInteger(report.free) && report.free >= 0, "bad free bytes");
  if (epoch < s.epoch) return s;
  const key = nodeKey(report.node);
  const nodes = epoch > s.epoch ? [] : s.nodes.filter((n) => nodeKey(n.node) !== key);
  return { epoch, nodes: [...nodes, report] };
}

/** COMPLETE_RECOVERY(epoch) from the node whose nodeKey() is `node`: it is no longer degraded. */
export function degradedOnComplete(s: DegradedState, epoch: number, node: string): DegradedState {
  if (epoch !== s.epoch || !s.nodes.some((n) => nodeKey(n.node) === node)) return s;
  return { epoch, nodes: s.nodes.filter((n) => nodeKey(n.node) !== node) };
}
