/**
 * The chaos test of issue 4 (tests/recovery_chaos.ts) on the corosync and ZooKeeper drivers, as
 * issue 6 asks once recovery exists: one corosync (CPG group per cluster) and one standalone
 * ZooKeeper (cluster id per cluster, 2 s sessions, so a SIGKILLed sheep leaves after its session
 * expires). The module re-runs itself in a private network namespace (harness/netns.ts) so its
 * corosync, ZooKeeper and ports are its own.
 *
 * @module
 */

import { canUseNetns, startCorosync } from "./harness/corosync.ts";
import { privateNetns, runTestFileInNetns } from "./harness/netns.ts";
import { startZooKeeper, zookeeperInstalled } from "./harness/zookeeper.ts";
import { CHAOS_NAME, chaosCase } from "./recovery_chaos.ts";

const quiet = { sanitizeOps: false, sanitizeResources: false };

if (privateNetns() === null) {
  const netns = await canUseNetns();
  Deno.test({
    name: "chaos on corosync and ZooKeeper, in a private network namespace",
    ignore: !netns,
    ...quiet,
    fn: async () => {
      await runTestFileInNetns(import.meta.url);
    },
  });
} else {
  Deno.test({
    name: `corosync: ${CHAOS_NAME}`,
    ...quiet,
    fn: async () => {
      const cs = await startCorosync({ here: true });
      try {
        await chaosCase("corosync:{id}");
      } finally {
        await cs.stop();
      }
    },
  });
  Deno.test({
    name: `zookeeper: ${CHAOS_NAME}`,
    ignore: !zookeeperInstalled(),
    ...quiet,
    fn: async () => {
      const zk = await startZooKeeper(1);
      try {
        await chaosCase(`zookeeper:${zk.connectString}/{id},timeout=2000`);
      } finally {
        await zk.stop();
      }
    },
  });
}
