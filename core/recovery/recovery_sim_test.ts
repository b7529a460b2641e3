import assert from "node:assert/strict";
import { RecoverySim, type SimConfig } from "./recovery_sim.ts";
import { Prng } from "./prng.ts";

interface Schedule {
  /** Leaves keep within the tolerance, and every check is strict. */
  readonly lossless: boolean;
  readonly rounds: number;
  readonly maxNodes: number;
  readonly objects: number;
}

function configFor(seed: number, maxInFlight = 1): SimConfig {
  const r = new Prng(seed ^ 0x5eed);
  const copies = r.between(2, 3);
  return {
    seed,
    vdiCopies: [copies, r.chance(0.5) ? copies : r.between(2, copies), copies],
    zones: r.between(2, 6),
    initialNodes: r.between(3, 6),
    vnodes: [4, 24],
    gatewayChance: 0.15,
    transientFailureChance: r.chance(0.5) ? 0 : 0.1,
    maxInFlight,
  };
}

/** Runs one random schedule; throws with the seed and the last events on any violation. */
async function runSchedule(seed: number, s: Schedule): Promise<RecoverySim> {
  const sim = await RecoverySim.create(configFor(seed));
  const r = sim.rng;
  const fail = (msg: string): never => {
    throw new Error(`seed ${seed}: ${msg}\n  ${sim.events.slice(-80).join("\n  ")}`);
  };
  for (let i = 0; i < s.objects; i++) await sim.createObject();
  for (let round = 0; round < s.rounds; round++) {
    const x = r.float();
    if (x < 0.25) {
      const members = sim.members();
      const down = sim.downNodes();
      const y = r.float();
      if (y < 0.35 && members.length < s.maxNodes) {
        await sim.join();
      } else if (y < 0.6 && down.length > 0) {
        await sim.rejoin(r.pick(down).key);
      } else {
        const candidates = members.filter((m) =>
          s.lossless ? sim.canLeaveSafely(m.key) : sim.canLeave(m.key)
        );
        if (candidates.length > 0) await sim.leave(r.pick(candidates).key, r.chance(0.5));
      }
    } else if (x < 0.265) {
      await sim.restartAll();
    } else if (x < 0.45 && sim.truth.size > 0) {
      const oid = r.pick(sim.objects());
      const ok = await sim.writeObject(oid);
      if (s.lossless && !ok) fail(`write of ${oid.toString(16)} refused`);
    } else if (x < 0.5) {
      await sim.createObject();
    } else if (x < 0.7 && sim.truth.size > 0) {
      const oid = r.pick(sim.objects());
      const got = await sim.readObject(oid);
      if (s.lossless) {
        if (got === null) fail(`read of ${oid.toString(16)} failed`);
        assert.deepEqual(
          got,
          sim.truth.get(oid),
          `seed ${seed}: stale read of ${oid.toString(16)}`,
        );
      }
    } else {
      const n = r.between(1, 8);
      for (let k = 0; k < n; k++) if (!(await sim.step())) break;
    }
  }
  await sim.settle();
  await sim.check(s.lossless);
  return sim;
}

const SEEDS = Number(Deno.env.get("RECOVERY_SIM_SEEDS") ?? "150");
const ONE_SEED = Deno.env.get("RECOVERY_SIM_SEED");
const seeds = ONE_SEED !== undefined
  ? [Number(ONE_SEED)]
  : Array.from({ length: SEEDS }, (_, i) => i + 1);

Deno.test("with at most copies−1 nodes gone since the last full recovery, random schedules with interrupted recoveries lose no acknowledged write and end with exactly the ring's replicas", async () => {
  let acked = 0;
  let epochs = 0;
  for (const seed of seeds) {
    const sim = await runSchedule(seed, { lossless: true, rounds: 120, maxNodes: 8, objects: 30 });
    acked += sim.writesAcked;
    epochs += sim.epoch;
  }
  assert.ok(acked > seeds.length * 30 && epochs > seeds.length * 3, `${acked} ${epochs}`);
});

Deno.test("beyond the tolerance, recovery still never invents content and settles", async () => {
  for (const seed of seeds.slice(0, 80)) {
    await runSchedule(seed + 100_000, { lossless: false, rounds: 100, maxNodes: 7, objects: 20 });
  }
});

Deno.test("a long schedule of many membership changes with little recovery in between stays lossless", async () => {
  for (const seed of [7, 8, 9, 10, 11]) {
    const sim = await RecoverySim.create(configFor(seed));
    const r = sim.rng;
    for (let i = 0; i < 40; i++) await sim.createObject();
    for (let change = 0; change < 30; change++) {
      const down = sim.downNodes();
      const leavers = sim.members().filter((m) => sim.canLeaveSafely(m.key));
      const y = r.float();
      if (y < 0.3 && sim.members().length < 9) await sim.join();
      else if (y < 0.6 && down.length > 0) await sim.rejoin(r.pick(down).key);
      else if (leavers.length > 0) await sim.leave(r.pick(leavers).key, r.chance(0.5));
      // A few objects only: recovery is interrupted by the next change almost every time.
      for (let k = 0; k < 3; k++) await sim.step();
      const oid = r.pick(sim.objects());
      assert.ok(await sim.writeObject(oid), `seed ${seed}: write refused`);
      assert.deepEqual(await sim.readObject(oid), sim.truth.get(oid));
    }
    await sim.settle();
    await sim.check(true);
  }
});

Deno.test("several objects in flight per node give the same guarantees", async () => {
  for (const seed of seeds.slice(0, 40)) {
    const sim = await RecoverySim.create(configFor(seed + 200_000, 4));
    const r = sim.rng;
    for (let i = 0; i < 25; i++) await sim.createObject();
    for (let round = 0; round < 60; round++) {
      if (r.chance(0.2)) {
        const leavers = sim.members().filter((m) => sim.canLeaveSafely(m.key));
        if (r.chance(0.5) && leavers.length > 0) await sim.leave(r.pick(leavers).key, true);
        else if (sim.downNodes().length > 0) await sim.rejoin(r.pick(sim.downNodes()).key);
        else await sim.join();
      } else if (r.chance(0.5)) {
        assert.ok(await sim.writeObject(r.pick(sim.objects())));
      } else {
        await sim.step();
      }
    }
    await sim.settle();
    await sim.check(true);
  }
});

Deno.test("a whole-cluster restart in the middle of recovery plans again at the same epoch and completes it", async () => {
  for (const seed of seeds.slice(0, 30)) {
    const sim = await RecoverySim.create(configFor(seed + 300_000));
    const r = sim.rng;
    for (let i = 0; i < 30; i++) await sim.createObject();
    for (let change = 0; change < 3; change++) {
      const leavers = sim.members().filter((m) => sim.canLeaveSafely(m.key));
      if (r.chance(0.5) && leavers.length > 0) await sim.leave(r.pick(leavers).key, true);
      else await sim.join();
      for (let k = 0; k < 4; k++) await sim.step();
    }
    const epoch = sim.epoch;
    await sim.restartAll();
    assert.equal(sim.epoch, epoch);
    for (const oid of sim.objects()) {
      assert.deepEqual(await sim.readObject(oid), sim.truth.get(oid), `seed ${seed}`);
    }
    await sim.settle();
    await sim.check(true);
  }
});
