/**
 * Replication, gateway forwarding and racing cluster ops with real sheep on the local driver (the
 * case and what it checks are described in cluster_replication.ts).
 *
 * @module
 */

import { REPLICATION_NAME, replicationCase } from "./cluster_replication.ts";

Deno.test({
  name: REPLICATION_NAME,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => replicationCase(t),
});
