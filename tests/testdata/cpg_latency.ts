/**
 * CPG's own latency, for the corosync tests and benchmark: a bare libcpg client joins a group of
 * its own and measures multicast (CPG_TYPE_AGREED) to delivery back to itself, one message at a
 * time. Usage: deno run --allow-all --v8-flags=--stack-size=4096 cpg_latency.ts [COUNT]
 * Prints one JSON line: {"count":N,"medianUs":…,"p90Us":…,"maxUs":…}.
 *
 * @module
 */

import { Cpg } from "../../core/cluster/cpg_ffi.ts";

const count = Number(Deno.args[0] ?? 200);
const cpg = Cpg.open(`sdlat${Deno.pid}`);
await cpg.join();
// A holder object: TypeScript cannot see the callback set below from inside the loop's closure.
const pending: { waiting: ((t: number) => void) | null } = { waiting: null };
const loop = (async () => {
  for (;;) {
    const r = await cpg.wait();
    if (r === "closed") return;
    if (r !== "ready") continue;
    for (const e of cpg.dispatch()) {
      if (e.type === "deliver" && pending.waiting) {
        const w = pending.waiting;
        pending.waiting = null;
        w(performance.now());
      }
    }
  }
})();
const lat: number[] = [];
for (let i = 0; i < count + 20; i++) {
  const delivered = new Promise<number>((r) => pending.waiting = r);
  const t0 = performance.now();
  await cpg.mcast(new TextEncoder().encode(`m${i}`));
  const t1 = await delivered;
  if (i >= 20) lat.push((t1 - t0) * 1000);
}
await cpg.close();
await loop;
lat.sort((a, b) => a - b);
const q = (p: number) => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]);
console.log(JSON.stringify({ count, medianUs: q(0.5), p90Us: q(0.9), maxUs: q(1) }));
