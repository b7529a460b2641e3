/**
 * Creates the cluster driver named on the command line. Drivers are imported only when chosen, so
 * that (for example) libcpg is loaded by the corosync driver alone and `dog --help` needs nothing.
 *
 * @module
 */

import type { ClusterDriver } from "./driver.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

/** The default PATH of the local driver. */
export const DEFAULT_LOCAL_PATH = "/tmp/sheepdog_local";

/** A driver for `-c name[:option]`. */
export async function createDriver(name: string, option: string): Promise<ClusterDriver> {
  switch (name) {
    case "local": {
      const { LocalDriver } = await import("./local.ts");
      return new LocalDriver({ path: option || DEFAULT_LOCAL_PATH });
    }
    default:
      throw new SdError(
        Res.CLUSTER_ERROR,
        `cluster driver '${name}' is not available in this build yet`,
      );
  }
}
