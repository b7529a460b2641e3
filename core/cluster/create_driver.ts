/**
 * Creates the cluster driver named on the command line. Drivers are imported only when chosen, so
 * that (for example) libcpg is loaded by the corosync driver alone and `dog --help` needs nothing.
 *
 * @module
 */

import type { ClusterDriver } from "./driver.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

/** Driver diagnostics (dropped messages, failed compactions) go to stderr, beside the log. */
function warn(msg: string): void {
  console.error(msg);
}

/** A driver for `-c name[:option]`. */
export async function createDriver(name: string, option: string): Promise<ClusterDriver> {
  switch (name) {
    case "local": {
      const { LocalDriver, DEFAULT_LOCAL_PATH } = await import("./local.ts");
      return new LocalDriver({ path: option || DEFAULT_LOCAL_PATH });
    }
    case "corosync": {
      const { CorosyncDriver } = await import("./corosync.ts");
      return new CorosyncDriver({ group: option || undefined, warn });
    }
    case "zookeeper": {
      const { ZookeeperDriver, parseZookeeperOption } = await import("./zookeeper.ts");
      return new ZookeeperDriver({ ...parseZookeeperOption(option), warn });
    }
    default:
      throw new SdError(
        Res.CLUSTER_ERROR,
        `cluster driver '${name}' is not available in this build yet`,
      );
  }
}
