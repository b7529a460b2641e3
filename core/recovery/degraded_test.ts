import assert from "node:assert/strict";
import { makeNode } from "../proto/node.ts";
import { type DegradedNode, DegradedReason } from "../proto/degraded.ts";
import { degradedInit, degradedOnComplete, degradedOnEpoch, degradedOnReport } from "./degraded.ts";

const A = makeNode("127.0.0.1", 7000, { zone: 0 });
const B = makeNode("127.0.0.1", 7001, { zone: 1 });
const report = (node = A, reason: 1 | 2 = DegradedReason.NOT_STARTED): DegradedNode => ({
  node,
  reason,
  needed: 10,
  free: 5,
});
const keys = (s: { nodes: readonly DegradedNode[] }) => s.nodes.map((n) => n.node.nid.port);

Deno.test("degraded: a report joins the view of its epoch and replaces the node's earlier one", () => {
  let s = degradedOnEpoch(degradedInit(), 2, ["127.0.0.1:7000", "127.0.0.1:7001"]);
  s = degradedOnReport(s, 2, report(A));
  s = degradedOnReport(s, 2, report(B, DegradedReason.OUT_OF_SPACE));
  s = degradedOnReport(s, 2, report(A, DegradedReason.OUT_OF_SPACE));
  assert.deepEqual(keys(s), [7001, 7000]);
  assert.equal(s.nodes[1].reason, DegradedReason.OUT_OF_SPACE);
  assert.equal(degradedOnReport(s, 1, report(B)), s, "an older epoch's report is ignored");
});

Deno.test("degraded: a new epoch clears the view; the same epoch keeps the remaining members", () => {
  let s = degradedOnReport(degradedOnEpoch(degradedInit(), 2, []), 2, report(A));
  s = degradedOnReport(s, 2, report(B));
  assert.deepEqual(keys(degradedOnEpoch(s, 2, ["127.0.0.1:7001"])), [7001]);
  assert.deepEqual(keys(degradedOnEpoch(s, 3, ["127.0.0.1:7000", "127.0.0.1:7001"])), []);
  assert.equal(degradedOnEpoch(s, 1, []), s);
  // A report delivered before its epoch change starts the new view.
  const early = degradedOnReport(s, 3, report(B));
  assert.equal(early.epoch, 3);
  assert.deepEqual(keys(early), [7001]);
  assert.deepEqual(keys(degradedOnEpoch(early, 3, ["127.0.0.1:7001"])), [7001]);
});

Deno.test("degraded: COMPLETE_RECOVERY of the epoch removes the node", () => {
  const s = degradedOnReport(degradedOnReport(degradedInit(), 2, report(A)), 2, report(B));
  assert.deepEqual(keys(degradedOnComplete(s, 2, "127.0.0.1:7000")), [7001]);
  assert.equal(degradedOnComplete(s, 1, "127.0.0.1:7000"), s);
  assert.equal(degradedOnComplete(s, 2, "127.0.0.1:7005"), s);
});
