/**
 * Placement with real sheep on the local driver: every layout of cluster_placement.ts (the cases
 * and what they check are described there).
 *
 * @module
 */

import { AUTO_WEIGHTED, LAYOUTS, runLayout } from "./cluster_placement.ts";

for (const layout of LAYOUTS) {
  Deno.test({
    name: `placement: ${layout.vector}, copies ${layout.copies.join("/")}: object files sit ` +
      `where the ring${layout.vector === AUTO_WEIGHTED.name ? "" : " and the golden vectors"} say`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => runLayout(layout),
  });
}
