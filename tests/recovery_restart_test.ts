/**
 * Whole-cluster restarts and refused joins with real sheep (issue 4 §2):
 *
 * - every sheep SIGKILLed while a writer writes, then restarted one by one in a random order:
 *   until the last member of the last epoch is back, each says "Waiting for other nodes to join
 *   cluster" (`dog cluster info`, WAIT_FOR_JOIN to clients); then the cluster runs at the same
 *   epoch and every acknowledged block reads back, every replica where the ring says;
 * - all killed again and restarted but one: `dog cluster recover force` starts the cluster with
 *   the nodes present (a new epoch), recovery restores every object's copies, and the missing
 *   node, started later, catches up;
 * - a sheep whose store belongs to another cluster (another ctime), and one whose epoch history
 *   is ahead of the cluster's, are refused: each exits non-zero with the reason in its log, and
 *   the cluster's epoch does not move.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Res } from "../core/proto/constants.ts";
import { encodeEpochFile } from "../core/proto/epoch_log.ts";
import { makeNode } from "../core/proto/node.ts";
import { Prng } from "../core/recovery/prng.ts";
import { runDogOk, sleep, waitUntil, withDeadline } from "./harness/mod.ts";
import {
  checkPlacement,
  createVdi,
  once,
  rawClusterInfo,
  Slots,
  waitRecovered,
  Writer,
} from "./recovery_support.ts";

const STATUS_WAIT = 2;
const WAITING = "Cluster status: Waiting for other nodes to join cluster";

Deno.test({
  name: "restart: whole cluster SIGKILLed and restarted in random order waits for every " +
    "member, then runs with its data; recover force starts with the nodes present",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const seed = Number(Deno.env.get("SHEEPDOG_SEED") ?? Date.now() % 100000);
    const rng = new Prng(seed);
    const n = 4;
    const copies = 2;
    await using slots = await Slots.create(n);
    await slots.startAll();
    await slots.format(copies);
    const vids = [await createVdi(slots.slots[0].port, "r1", "64M")];
    const writer = new Writer(vids, 8, seed, () => slots.up().map((s) => s.port));
    writer.tolerate.add(Res.WAIT_FOR_JOIN);
    await writer.createAll();
    const before = await once(slots.slots[0].port, rawClusterInfo);

    // 1. Everything killed under writes, restarted in a random order.
    writer.start();
    await sleep(800);
    await Promise.all(slots.slots.map((s) => s.kill()));
    const order = rng.shuffle(slots.slots);
    for (const [i, s] of order.entries()) {
      await s.start().waitReady(45_000);
      if (i === order.length - 1) break;
      for (const t of order.slice(0, i + 1)) {
        const info = await t.dog(["cluster", "info"]);
        assert.ok(
          info.stdoutText.startsWith(WAITING),
          `node ${t.index} after ${i + 1} restarts:\n${info.stdoutText}`,
        );
        const ci = await once(t.port, rawClusterInfo);
        assert.equal(ci.status, STATUS_WAIT, `status of node ${t.index}`);
      }
    }
    const back = await waitRecovered(slots, n, 60_000);
    assert.equal(back.epoch, before.epoch, "no new epoch when the same members come back");
    const running = await slots.slots[0].dog(["cluster", "info"]);
    assert.ok(running.stdoutText.startsWith("Cluster status: running"), running.stdoutText);
    await sleep(500);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, [], "client-visible errors");
    const p1 = checkPlacement(slots, back.nodes, copies, writer);
    console.log(
      `recovery_restart (seed ${seed}): restart order ${order.map((s) => s.index).join(",")}: ` +
        `back at epoch ${back.epoch}; writes acknowledged ${writer.counts.writesAcked}, unsure ` +
        `${writer.counts.writesUnsure}; ${p1.files} replicas equal to the model`,
    );

    // 2. Killed again; one stays down: the others wait until `recover force`.
    writer.start();
    await sleep(500);
    await Promise.all(slots.slots.map((s) => s.kill()));
    const absent = rng.pick(slots.slots);
    const present = slots.slots.filter((s) => s !== absent);
    await slots.startAll(present);
    await sleep(500);
    for (const s of present) {
      assert.equal((await once(s.port, rawClusterInfo)).status, STATUS_WAIT);
    }
    const r = await runDogOk(["cluster", "recover", "force", "-f"], { port: present[0].port });
    assert.equal(r.stdoutText, "");
    const forced = await waitRecovered(slots, n - 1, 60_000);
    assert.equal(forced.epoch, back.epoch + 1, "recover force makes a new epoch");
    await sleep(500);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, [], "client-visible errors");
    const p2 = checkPlacement(slots, forced.nodes, copies, writer);

    // The node left out comes back and catches up.
    writer.start();
    await absent.start().waitReady(45_000);
    const all = await waitRecovered(slots, n, 60_000);
    await sleep(300);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, [], "client-visible errors");
    const p3 = checkPlacement(slots, all.nodes, copies, writer);
    console.log(
      `recovery_restart: recover force without node ${absent.index}: epoch ${forced.epoch}, ` +
        `${p2.files} replicas; its return: epoch ${all.epoch}, ${p3.files} replicas; writes ` +
        `acknowledged ${writer.counts.writesAcked}`,
    );
  },
});

Deno.test({
  name: "restart: a sheep of another cluster, or with a newer epoch history, is refused " +
    "with a log line and a non-zero exit; the cluster is untouched",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using slots = await Slots.create(2);
    await slots.startAll(slots.slots.slice(0, 2));
    await slots.format(2);
    const before = await once(slots.slots[0].port, rawClusterInfo);

    // A store formatted by another cluster (its own driver path, another ctime).
    await using other = await Slots.create(1, ["-n"], "other");
    await other.startAll();
    await sleep(1100); // another second: another ctime
    await other.format(1);
    await other.slots[0].proc!.stop();
    const foreign = slots.add();
    await Deno.rename(other.slots[0].dir, foreign.dir);
    const p = foreign.start();
    const st = await withDeadline(p.exited, 30_000);
    assert.ok(st.ok, "the foreign sheep did not exit");
    assert.notEqual(st.value.code, 0, "exit code of the refused sheep");
    const log = await Deno.readTextFile(`${foreign.dir}/sheep.log`);
    assert.match(log, /the cluster refused this node.*belongs to another cluster/);

    // A store whose epoch history is ahead of the cluster's (same ctime).
    const ahead = slots.add();
    await Deno.mkdir(`${ahead.dir}/epoch`, { recursive: true });
    await Deno.copyFile(`${slots.slots[0].dir}/config`, `${ahead.dir}/config`);
    const self = makeNode("127.0.0.1", ahead.port, { zone: ahead.zone });
    const epochFile = encodeEpochFile([self], 0n);
    await Deno.writeFile(
      `${ahead.dir}/epoch/${String(before.epoch + 5).padStart(8, "0")}`,
      epochFile,
    );
    const q = ahead.start();
    const st2 = await withDeadline(q.exited, 30_000);
    assert.ok(st2.ok, "the sheep with a newer epoch did not exit");
    assert.notEqual(st2.value.code, 0);
    const log2 = await Deno.readTextFile(`${ahead.dir}/sheep.log`);
    assert.match(log2, /the cluster refused this node.*conflicting epoch history/);

    await waitUntil(
      async () => (await once(slots.slots[1].port, rawClusterInfo)).nodes.length === 2,
      5000,
      "members",
    );
    for (const s of slots.slots.slice(0, 2)) {
      const ci = await once(s.port, rawClusterInfo);
      assert.equal(ci.epoch, before.epoch, "the cluster's epoch moved");
      assert.equal(ci.status, 1);
    }
  },
});
