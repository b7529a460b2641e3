/**
 * The chaos test of issue 4 on the local driver (tests/recovery_chaos.ts holds the case; the
 * corosync and ZooKeeper runs are in recovery_chaos_on_drivers_test.ts).
 *
 * @module
 */

import { CHAOS_NAME, chaosCase } from "./recovery_chaos.ts";

Deno.test({
  name: CHAOS_NAME,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => chaosCase(),
});
