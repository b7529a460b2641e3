/**
 * The chaos test (issue 4 §4): six sheep, copies 3, a writer that keeps writing and reading back
 * checksummed blocks on three VDIs, and a driver that kills (SIGKILL), restarts, adds and
 * removes (SIGTERM: a clean leave) sheep at random for a bounded number of rounds. Never more
 * than two sheep leave between two points where recovery is complete everywhere, so every object
 * keeps a copy (copies 3). At the end, with recovery complete: every acknowledged block reads
 * back its last version through every sheep, every replica on disk is identical to the model and
 * where the ring says, and no stale copy is left.
 *
 * The seed comes from SHEEPDOG_SEED or the clock and is printed with the counts; a failing seed
 * replays the same schedule of actions (timing still varies).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Prng } from "../core/recovery/prng.ts";
import { Res } from "../core/proto/constants.ts";
import { sleep } from "./harness/mod.ts";
import {
  BLOCK,
  checkPlacement,
  createVdi,
  OBJ,
  objectImage,
  once,
  type Slot,
  Slots,
  waitRecovered,
  Writer,
} from "./recovery_support.ts";
import { readObj } from "./harness/proto.ts";

const INITIAL = 6;
const MAX_SLOTS = 8;
const COPIES = 3;
const ROUNDS = Number(Deno.env.get("SHEEPDOG_CHAOS_ROUNDS") ?? 30);
/** The whole schedule stops here even if rounds remain (CI time). */
const BUDGET_MS = 70_000;

/** Name of the chaos case, shared by the per-driver test files. */
export const CHAOS_NAME =
  "chaos: random kills, restarts, adds and removes of sheep under a verifying writer";

/** Runs the chaos case on `driver`, a `-c` template (default: the local driver). */
export async function chaosCase(driver?: string): Promise<void> {
  const seed = Number(Deno.env.get("SHEEPDOG_SEED") ?? Date.now() % 1_000_000);
  console.log(`recovery_chaos: seed ${seed} (SHEEPDOG_SEED=${seed} replays the schedule)`);
  const rng = new Prng(seed);
  const t0 = Date.now();
  await using slots = await Slots.create(INITIAL, ["-n"], "chaos", driver);
  await slots.startAll();
  await slots.format(COPIES);
  const vids = [];
  for (const name of ["c1", "c2", "c3"]) {
    vids.push(await createVdi(slots.slots[0].port, name, "48M"));
  }
  const pick = new Prng(seed + 1);
  const writer = new Writer(vids, 12, seed, () => pick.shuffle(slots.up()).map((s) => s.port));
  writer.tolerate.add(Res.WAIT_FOR_JOIN);
  await writer.createAll();
  writer.start(3);

  const counts = {
    rounds: 0,
    kills: 0,
    restarts: 0,
    adds: 0,
    removes: 0,
    returns: 0,
    settles: 0,
  };
  const events: string[] = [];
  /** Sheep gone (killed or removed) since recovery was last complete everywhere. */
  let departed = 0;
  /** Killed sheep that may come back. */
  const down: Slot[] = [];
  const removed = new Set<Slot>();

  for (; counts.rounds < ROUNDS && Date.now() - t0 < BUDGET_MS; counts.rounds++) {
    const up = slots.up();
    const actions: string[] = [];
    if (departed < COPIES - 1 && up.length > 4 && down.length < 2) actions.push("kill", "kill");
    if (departed < COPIES - 1 && up.length > 5 && down.length < 2) actions.push("remove");
    if (down.length > 0) actions.push("restart", "restart");
    if (removed.size > 0) actions.push("return");
    if (slots.slots.length < MAX_SLOTS) actions.push("add");
    const action = actions.length > 0 ? rng.pick(actions) : "settle";
    switch (action) {
      case "kill": {
        const s = rng.pick(up);
        await s.kill();
        down.push(s);
        departed++;
        counts.kills++;
        events.push(`kill ${s.index}`);
        break;
      }
      case "remove": {
        const s = rng.pick(up);
        await s.proc!.stop();
        s.proc = null;
        removed.add(s);
        departed++;
        counts.removes++;
        events.push(`remove ${s.index}`);
        break;
      }
      case "restart": {
        const s = down.splice(rng.int(down.length), 1)[0];
        await s.start().waitReady(45_000);
        counts.restarts++;
        events.push(`restart ${s.index}`);
        break;
      }
      case "return": {
        // A sheep that left cleanly comes back with its store.
        const s = rng.pick([...removed]);
        removed.delete(s);
        await s.start().waitReady(45_000);
        counts.returns++;
        events.push(`return ${s.index}`);
        break;
      }
      case "add": {
        const s = slots.add();
        await s.start().waitReady(45_000);
        counts.adds++;
        events.push(`add ${s.index}`);
        break;
      }
    }
    // Often less than a recovery takes: the next change lands on a running recovery.
    await sleep(200 + rng.int(1500));
    // Now and then (and whenever no more sheep may go), let recovery finish everywhere.
    if (action === "settle" || rng.chance(0.25) || departed >= COPIES - 1) {
      const r = await waitRecovered(slots, slots.up().length, 90_000).catch((e) => {
        throw new Error(`seed ${seed}, after ${events.join(", ")}: ${e.message}`);
      });
      departed = 0;
      counts.settles++;
      events.push(`settled at epoch ${r.epoch}`);
    }
    assert.deepEqual(
      writer.counts.errors,
      [],
      `seed ${seed}: client-visible errors after ${events.join(", ")}`,
    );
  }

  const last = await waitRecovered(slots, slots.up().length, 90_000);
  await writer.stop();
  const final = await waitRecovered(slots, slots.up().length, 30_000);
  assert.deepEqual(writer.counts.errors, [], `seed ${seed}: client-visible errors`);

  // Every block of every object through every sheep (whole objects, compared to the model).
  let readsFromEveryNode = 0;
  for (const s of slots.up()) {
    await once(s.port, async (c) => {
      for (const oid of writer.oids) {
        const got = await readObj(c, oid, 0, OBJ);
        const want = objectImage(oid, writer.versions.get(oid)!);
        if (!equal(got, want)) {
          let b = 0;
          while (
            b < OBJ / BLOCK &&
            equal(
              got.subarray(b * BLOCK, (b + 1) * BLOCK),
              want.subarray(b * BLOCK, (b + 1) * BLOCK),
            )
          ) b++;
          assert.fail(
            `seed ${seed}: ${oid.toString(16)} through sheep ${s.index} differs at block ${b}`,
          );
        }
        readsFromEveryNode++;
      }
    });
  }
  const placed = checkPlacement(slots, final.nodes, COPIES, writer);
  const lost = placed.lost;
  console.log(
    `recovery_chaos: seed ${seed}: rounds ${counts.rounds} (kills ${counts.kills}, restarts ` +
      `${counts.restarts}, adds ${counts.adds}, removes ${counts.removes}, returns ` +
      `${counts.returns}, settles ` +
      `${counts.settles}), final epoch ${last.epoch} with ${final.nodes.length} sheep; writes ` +
      `acknowledged ${writer.counts.writesAcked}, writes lost ${lost}, divergent replicas ` +
      `${placed.divergent}; blocks verified on read ${writer.counts.readsVerified}; objects ` +
      `read back through every sheep ${readsFromEveryNode}; replicas on disk ${placed.files}; ` +
      `${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log(`recovery_chaos: schedule: ${events.join(", ")}`);
  assert.equal(lost, 0);
  assert.equal(placed.divergent, 0);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
