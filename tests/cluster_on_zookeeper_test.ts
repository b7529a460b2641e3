/**
 * The "many sheep" integration cases (cluster_placement.ts, cluster_replication.ts,
 * cluster_membership.ts) on the ZooKeeper driver, each cluster under a cluster id of its own
 * (`-c zookeeper:SERVERS/{id},timeout=2000`):
 *
 * - on a standalone server and on a three-server ensemble (every sheep connected to all three
 *   servers): placement for one layout (re-formatted for each copy count on the standalone
 *   server, formatted once on the ensemble), replication (racing creates and exclusive setattrs,
 *   a late joiner), membership with five sheep (a SIGKILL, leaving once the session expires, a
 *   rejoin, a cluster shutdown and restart).
 *
 * Every layout and ten sheep run on `local`. With root the module re-runs itself in a private
 * network namespace (harness/netns.ts), so the placement vectors' ports 7000-7007 and tgt's
 * ports below 10000 are free there; without it, it runs here (the vector cross-check is then
 * skipped when those ports are taken).
 *
 * @module
 */

import { canUseNetns } from "./harness/corosync.ts";
import { privateNetns, runTestFileInNetns } from "./harness/netns.ts";
import { startZooKeeper, type ZooKeeper, zookeeperInstalled } from "./harness/zookeeper.ts";
import { LAYOUTS, runLayout } from "./cluster_placement.ts";
import { REPLICATION_NAME, replicationCase } from "./cluster_replication.ts";
import { membershipCase } from "./cluster_membership.ts";

const installed = zookeeperInstalled();
const quiet = { sanitizeOps: false, sanitizeResources: false, ignore: !installed };
/** Session timeout of the sheep (a SIGKILLed sheep leaves when its session expires). */
const SESSION_MS = 2000;

/** Runs `fn` with a private ZooKeeper of `servers` servers, stopped afterwards. */
async function onZooKeeper(servers: number, fn: (driver: string) => Promise<void>): Promise<void> {
  const zk: ZooKeeper = await startZooKeeper(servers);
  try {
    await fn(`zookeeper:${zk.connectString}/{id},timeout=${SESSION_MS}`);
  } finally {
    await zk.stop();
  }
}

if (privateNetns() === null && installed && await canUseNetns()) {
  Deno.test({
    name: "cluster on zookeeper: placement, replication and membership cases (standalone and " +
      "three-server ensemble), in a private network namespace",
    ...quiet,
    fn: async () => {
      await runTestFileInNetns(import.meta.url);
    },
  });
} else {
  // Re-formats matter on ZooKeeper: members apply an event up to ~100 ms apart, which is how a
  // recovery that gathered the old cluster's objects after a format was caught.
  Deno.test({
    name: `zookeeper: placement after re-formats: ${LAYOUTS[0].vector}, copies ` +
      `${LAYOUTS[0].copies.join("/")}`,
    ...quiet,
    fn: () => onZooKeeper(1, (driver) => runLayout(LAYOUTS[0], driver)),
  });
  Deno.test({
    name: `zookeeper: ${REPLICATION_NAME}`,
    ...quiet,
    fn: (t) => onZooKeeper(1, (driver) => replicationCase(t, driver)),
  });
  Deno.test({
    name: "zookeeper: membership: five sheep join, a SIGKILLed one leaves and rejoins, cluster " +
      "shutdown and restart keep data and epoch",
    ...quiet,
    fn: (t) => onZooKeeper(1, (driver) => membershipCase(t, { driver, n: 5, killed: 3 })),
  });
  Deno.test({
    name: `zookeeper ensemble of three: ${REPLICATION_NAME}`,
    ...quiet,
    fn: (t) => onZooKeeper(3, (driver) => replicationCase(t, driver)),
  });
  const layout = { ...LAYOUTS[0], copies: [2] };
  Deno.test({
    name: `zookeeper ensemble of three: placement: ${layout.vector}, copies ` +
      `${layout.copies.join("/")}`,
    ...quiet,
    fn: () => onZooKeeper(3, (driver) => runLayout(layout, driver)),
  });
  Deno.test({
    name: "zookeeper ensemble of three: membership: five sheep join, a SIGKILLed one leaves and " +
      "rejoins, cluster shutdown and restart keep data and epoch",
    ...quiet,
    fn: (t) => onZooKeeper(3, (driver) => membershipCase(t, { driver, n: 5, killed: 3 })),
  });
}
