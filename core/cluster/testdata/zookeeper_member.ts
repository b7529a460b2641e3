/**
 * A ZooKeeper driver member in its own process, for the contract suite and the ZooKeeper tests.
 * Usage: deno run --allow-all zookeeper_member.ts PORT ZK_OPTION [OPTIONS_JSON]
 * (ZK_OPTION is the text after "zookeeper:"; OPTIONS_JSON overrides ZookeeperOptions fields).
 * Driver warnings go to stderr.
 *
 * @module
 */

import { serveContractMember } from "../contract_process.ts";
import { parseZookeeperOption, ZookeeperDriver } from "../zookeeper.ts";

const [port, option, extra] = Deno.args;
const opts = { ...parseZookeeperOption(option), ...(extra ? JSON.parse(extra) : {}) };
await serveContractMember(
  new ZookeeperDriver({ ...opts, warn: (m: string) => console.error(m) }),
  Number(port),
);
Deno.exit(0);
