/**
 * Issue 5: chains of snapshots, clones and rollbacks with random writes on three sheep with
 * copies 3, checked against a model of every VDI's bytes; then everything deleted in a random
 * order and the stores checked empty of data and ledger objects (tests/snapshot_model.ts).
 *
 * @module
 */

import { pickSeed, runSnapshotModel } from "./snapshot_model.ts";

Deno.test({
  name: "snapshots, clones, rollbacks and deletes on 3 sheep, copies 3",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await runSnapshotModel(3, pickSeed("copies 3"));
  },
});
