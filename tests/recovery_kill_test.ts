/**
 * Recovery after a SIGKILL with real sheep (issue 4 §2): while a writer keeps writing and
 * reading back checksummed blocks through a surviving sheep, one sheep is killed (3 sheep with
 * copies 2, then 4 sheep with copies 3). No client request fails and every block reads back its
 * last acknowledged version throughout; once recovery is done every object is on exactly its
 * holders in the new ring (files on disk), every replica equals the model, and no stale copy is
 * left. The killed sheep then comes back (it missed epochs): it catches up and the objects are
 * placed per the ring again.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "./harness/mod.ts";
import { checkPlacement, createVdi, Slots, waitRecovered, Writer } from "./recovery_support.ts";

async function killOneScenario(n: number, copies: number, seed: number): Promise<void> {
  await using slots = await Slots.create(n);
  await slots.startAll();
  await slots.format(copies);
  const vids = [
    await createVdi(slots.slots[0].port, "a", "64M"),
    await createVdi(slots.slots[1].port, "b", "64M"),
  ];
  const victim = slots.slots[n - 1];
  const writer = new Writer(
    vids,
    6,
    seed,
    () => slots.up().filter((s) => s !== victim).map((s) => s.port),
  );
  await writer.createAll();
  writer.start();
  await sleep(1500);
  const t0 = Date.now();
  await victim.kill();
  await sleep(500);
  const rec = await waitRecovered(slots, n - 1, 60_000);
  await sleep(500);
  await writer.stop();
  const c = writer.counts;
  assert.deepEqual(c.errors, [], "client-visible errors");
  const after = await waitRecovered(slots, n - 1, 30_000);
  const placed = checkPlacement(slots, after.nodes, copies, writer);
  console.log(
    `recovery_kill: ${n} sheep copies ${copies}: SIGKILL → recovered everywhere in ${
      Date.now() - t0 - 0
    } ms ` +
      `(epoch ${rec.epoch}); writes acknowledged ${c.writesAcked}, unsure ${c.writesUnsure}, reads verified ${c.readsVerified}; ` +
      `${placed.files} replicas checked, divergent ${placed.divergent}, lost ${placed.lost}`,
  );

  // The killed sheep returns after missing an epoch: it catches up.
  writer.start();
  await victim.start().waitReady(45_000);
  await sleep(1000);
  const back = await waitRecovered(slots, n, 60_000);
  await writer.stop();
  assert.deepEqual(writer.counts.errors, [], "client-visible errors after the rejoin");
  const placed2 = checkPlacement(slots, back.nodes, copies, writer);
  console.log(
    `recovery_kill: rejoin of the killed sheep → recovered in ${back.ms} ms (epoch ${back.epoch}); ` +
      `writes acknowledged ${writer.counts.writesAcked}; ${placed2.files} replicas checked`,
  );
}

Deno.test({
  name: "recovery: SIGKILL of 1 of 3 sheep (copies 2) under writes, then its rejoin",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => killOneScenario(3, 2, 1),
});

Deno.test({
  name: "recovery: SIGKILL of 1 of 4 sheep (copies 3) under writes, then its rejoin",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => killOneScenario(4, 3, 2),
});

Deno.test({
  name: "recovery: a sheep that missed several epochs (kills, a join) catches up when it returns",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const copies = 2;
    await using slots = await Slots.create(4);
    await slots.startAll();
    await slots.format(copies);
    const vid = await createVdi(slots.slots[0].port, "m", "64M");
    const [, , a, b] = slots.slots;
    const writer = new Writer(
      [vid],
      10,
      3,
      () => slots.up().filter((s) => s !== a && s !== b).map((s) => s.port),
    );
    await writer.createAll();
    writer.start();
    await a.kill();
    await waitRecovered(slots, 3);
    await b.kill();
    await waitRecovered(slots, 2);
    await slots.add().start().waitReady(45_000);
    const joined = await waitRecovered(slots, 3);
    await a.start().waitReady(45_000);
    const back = await waitRecovered(slots, 4);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, []);
    const p1 = checkPlacement(slots, back.nodes, copies, writer);
    writer.start();
    await b.start().waitReady(45_000);
    const all = await waitRecovered(slots, 5);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, []);
    const p2 = checkPlacement(slots, all.nodes, copies, writer);
    console.log(
      `recovery_kill: sheep back after missing epochs ${joined.epoch - 2}-${joined.epoch}: ` +
        `epoch ${back.epoch}, ${p1.files} replicas; the other after ${all.epoch - 3} epochs: ` +
        `epoch ${all.epoch}, ${p2.files} replicas; writes acknowledged ${writer.counts.writesAcked}`,
    );
  },
});
