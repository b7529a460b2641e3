/**
 * Issue 5's proof with a node killed in the middle: the model workload of snapshots, clones,
 * rollbacks, writes and deletes (tests/snapshot_model.ts) on four sheep with copies 3, one of
 * which is SIGKILLed while a step is in flight (never the gateway of the step) and restarted some
 * steps later. The workload goes on while it is down (every object still has two copies); after
 * its restart the test waits for recovery everywhere, then the workload finishes: every VDI and
 * snapshot is read through every node and compared with the model, everything is deleted in a
 * random order, and no store (the restarted one included) keeps a data, VM state or ledger
 * object, or a stale copy.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "./harness/mod.ts";
import { Prng } from "../core/recovery/prng.ts";
import { Slots, staleFiles, waitRecovered } from "./recovery_support.ts";
import {
  assertInodesEmptied,
  assertNoDataLeft,
  pickSeed,
  runModelWorkload,
} from "./snapshot_model.ts";

const N = 4;
const COPIES = 3;

Deno.test({
  name: "snapshots, clones, rollbacks and deletes on 4 sheep, copies 3, one SIGKILLed midway",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const seed = pickSeed("copies 3, kill");
    const rng = new Prng(seed ^ 0x5eed);
    await using slots = await Slots.create(N, ["-n"], "snapkill");
    await slots.startAll();
    await slots.format(COPIES);
    const victim = slots.slots[1 + rng.int(N - 1)];
    const killAt = 8 + rng.int(8); // before one of steps 8-15 of 40
    const restartAt = killAt + 8 + rng.int(8);
    const killDelayMs = rng.int(300);
    let down = false;
    let killed: Promise<void> | null = null;
    const log: string[] = [];

    await runModelWorkload(
      {
        ports: slots.slots.map((s) => s.port),
        dirs: slots.slots.map((s) => s.dir),
        dog: (args, node) => slots.slots[node].dog(args),
        live: () => slots.slots.filter((s) => !(down && s === victim)).map((s) => s.index),
      },
      COPIES,
      seed,
      {
        verifyEveryNode: true,
        beforeStep: async (step) => {
          if (step === killAt) {
            // The victim stops being a gateway now and dies while the step runs.
            down = true;
            killed = sleep(killDelayMs).then(() => victim.kill());
            log.push(`sheep ${victim.index} killed ${killDelayMs} ms into step ${step}`);
            console.log(
              `snapshot_model_kill: killing sheep ${victim.index} ${killDelayMs} ms into step ${step}`,
            );
          } else if (step === restartAt) {
            await killed;
            const t0 = Date.now();
            await victim.start().waitReady(45_000);
            const r = await waitRecovered(slots, N, 60_000);
            down = false;
            log.push(
              `restarted before step ${step}, recovered everywhere in ${Date.now() - t0} ms ` +
                `(epoch ${r.epoch})`,
            );
          }
        },
      },
    );

    const end = await waitRecovered(slots, N, 30_000);
    assert.equal(end.nodes.length, N);
    for (const s of slots.slots) assert.deepEqual(staleFiles(s.dir), [], `stale on ${s.index}`);
    const env = { dirs: slots.slots.map((s) => s.dir) };
    const { inodes } = assertNoDataLeft(env, `seed ${seed}`);
    assert.ok(inodes.size >= 1, "the inodes of deleted VDIs stay");
    await assertInodesEmptied(env);
    console.log(`snapshot_model_kill: ${log.join("; ")}; epoch ${end.epoch} at the end`);
  },
});
