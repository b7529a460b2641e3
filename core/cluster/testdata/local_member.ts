/**
 * A local driver member in its own process, for the contract suite and the local driver tests.
 * Usage: deno run --allow-all local_member.ts PORT PATH [OPTIONS_JSON]
 *
 * @module
 */

import { serveContractMember } from "../contract_process.ts";
import { LocalDriver, type LocalDriverOptions } from "../local.ts";

const [port, path, options] = Deno.args;
const opts: LocalDriverOptions = options ? JSON.parse(options) : {};
await serveContractMember(new LocalDriver({ ...opts, path }), Number(port));
Deno.exit(0);
