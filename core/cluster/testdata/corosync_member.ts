/**
 * A corosync driver member in its own process, for the contract suite and the corosync tests.
 * Usage: deno run --allow-all --v8-flags=--stack-size=4096 corosync_member.ts PORT GROUP
 * [OPTIONS_JSON]. Driver warnings go to stderr.
 *
 * @module
 */

import { serveContractMember } from "../contract_process.ts";
import { CorosyncDriver, type CorosyncDriverOptions } from "../corosync.ts";

const [port, group, options] = Deno.args;
const opts: CorosyncDriverOptions = options ? JSON.parse(options) : {};
await serveContractMember(
  new CorosyncDriver({ ...opts, group, warn: (m) => console.error(m) }),
  Number(port),
);
Deno.exit(0);
