/**
 * Membership and epochs with ten real sheep on the local driver (the case and what it checks are
 * described in cluster_membership.ts).
 *
 * @module
 */

import { membershipCase } from "./cluster_membership.ts";

Deno.test({
  name: "membership: ten sheep join at once; a SIGKILLed one leaves within seconds and " +
    "rejoins; cluster shutdown and restart in another order keeps data and epoch",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: (t) => membershipCase(t),
});
