/**
 * The "many sheep" integration cases (cluster_placement.ts, cluster_replication.ts,
 * cluster_membership.ts) on the corosync driver: one corosync, several sheep, each cluster in a
 * CPG group of its own (`-c corosync:{id}`).
 *
 * The subset that exercises what differs between drivers: placement for one layout (joins,
 * repeated formats), replication with its racing creates and exclusive setattrs (total order of
 * cluster ops across nodes) and a late joiner, membership with a SIGKILL, a rejoin and a cluster
 * shutdown and restart (five sheep). Every layout and ten sheep run on `local`.
 *
 * The module re-runs itself in a private network namespace (harness/netns.ts): its corosync, its
 * sheep's ports (the placement vectors' 7000-7007, tgt's ports below 10000) and its abstract
 * sockets are its own.
 *
 * @module
 */

import { canUseNetns, startCorosync } from "./harness/corosync.ts";
import { privateNetns, runTestFileInNetns } from "./harness/netns.ts";
import { LAYOUTS, runLayout } from "./cluster_placement.ts";
import { REPLICATION_NAME, replicationCase } from "./cluster_replication.ts";
import { membershipCase } from "./cluster_membership.ts";

const DRIVER = "corosync:{id}";
const quiet = { sanitizeOps: false, sanitizeResources: false };

/** Runs `fn` with a corosync on this namespace's loopback, stopped afterwards. */
async function onCorosync(fn: () => Promise<void>): Promise<void> {
  const cs = await startCorosync({ here: true });
  try {
    await fn();
  } finally {
    await cs.stop();
  }
}

if (privateNetns() === null) {
  const netns = await canUseNetns();
  Deno.test({
    name: "cluster on corosync: placement, replication and membership cases, in a private " +
      "network namespace",
    ignore: !netns,
    ...quiet,
    fn: async () => {
      await runTestFileInNetns(import.meta.url);
    },
  });
} else {
  const layout = LAYOUTS[0];
  Deno.test({
    name: `corosync: placement: ${layout.vector}, copies ${layout.copies.join("/")}`,
    ...quiet,
    fn: () => onCorosync(() => runLayout(layout, DRIVER)),
  });
  Deno.test({
    name: `corosync: ${REPLICATION_NAME}`,
    ...quiet,
    fn: (t) => onCorosync(() => replicationCase(t, DRIVER)),
  });
  Deno.test({
    name: "corosync: membership: five sheep join, a SIGKILLed one leaves and rejoins, cluster " +
      "shutdown and restart keep data and epoch",
    ...quiet,
    fn: (t) => onCorosync(() => membershipCase(t, { driver: DRIVER, n: 5, killed: 3 })),
  });
}
