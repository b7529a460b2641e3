/**
 * Recovery and full disks with real sheep, each on its own small tmpfs (we run as root):
 *
 * - avoid-diskfull (`dog cluster format -F`): 3 sheep, copies 2, filled so that after the loss of
 *   one (SIGKILL) the survivors would have to hold every object, which does not fit. Their
 *   recovery is not started: `dog cluster info` says degraded on every sheep, every acknowledged
 *   write reads back through every gateway, no sheep crashed and no tmpfs is full. Then a sheep
 *   with room joins: recovery runs, the status is back to normal and every object is on exactly
 *   its holders.
 * - without -F: the same loss makes the survivors recover until their disks are full; the
 *   daemons stay up, the data stays readable, and the cluster says its recovery is stalled.
 *
 * The object placement depends on the ports, so the slots are drawn again until the placement
 * makes the scenario hold (see `fits`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { statfsSync } from "node:fs";
import { runDog, runDogOk, sleep, waitUntil } from "./harness/mod.ts";
import { createVdi, Slot, Slots, waitRecovered } from "./recovery_support.ts";
import { buildRing } from "../core/placement/ring.ts";
import { makeNode } from "../core/proto/node.ts";
import { vidOfName, vidToDataOid } from "../core/hash/oid.ts";
import { objectFileName } from "../core/store/object_names.ts";
import { objectFiles } from "./harness/proto.ts";

const MIB = 1024 * 1024;
const OBJ = 4 * MIB;

async function sh(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Small file systems under the slots' directories, always unmounted. */
class Mounts {
  readonly #dirs: string[] = [];
  async tmpfs(dir: string, mib: number): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    await sh("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir]);
    this.#dirs.push(dir);
  }
  async unmountAll(): Promise<void> {
    for (const d of this.#dirs.splice(0).reverse()) {
      await sh("umount", ["-l", d]).catch((e) => console.error(String(e)));
    }
  }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Whether, with these ports, the objects of VDI "a" (`n` of them, copies 2) land so that: no
 * sheep holds more than `maxHeld` at first (they fit their disks), and once slot 2 is replaced by
 * slot 3 each survivor needs at most `maxUnion` objects in all (what it held, kept until the
 * whole cluster has recovered, and what it must now hold), so that recovery then fits.
 */
function fits(slots: Slot[], n: number, maxHeld: number, maxUnion: number): boolean {
  const nodes = slots.map((s) => makeNode("127.0.0.1", s.port, { zone: s.zone }));
  const before = buildRing(nodes.slice(0, 3));
  const after = buildRing([nodes[0], nodes[1], nodes[3]]);
  const vid = vidOfName("a");
  const oids = [...Array(n).keys()].map((i) => vidToDataOid(vid, i));
  for (let s = 0; s < 3; s++) {
    const port = slots[s].port;
    const on = (r: typeof before, o: bigint) => r.place(o, 2).some((x) => x.nid.port === port);
    const held = oids.filter((o) => on(before, o));
    if (held.length > maxHeld) return false;
    if (s === 2) continue;
    const union = new Set([...held, ...oids.filter((o) => on(after, o))]);
    if (union.size > maxUnion) return false;
  }
  return true;
}

async function drawSlots(n: number, maxHeld: number, maxUnion: number): Promise<Slots> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const slots = await Slots.create(4, ["-n"], "diskfull");
    if (fits(slots.slots, n, maxHeld, maxUnion)) return slots;
    await slots[Symbol.asyncDispose]();
  }
  throw new Error("no port draw gives the placement the scenario needs");
}

function pattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

/**
 * Reads VDI a through `slot` and checks it equals `want`, except that a block of `unsure` (a write
 * that failed: undefined content, as on any block device) may hold either `want` or its
 * alternative; `want` is then updated to what was read, so later reads must agree with it.
 */
async function readsBack(
  slot: Slot,
  want: Uint8Array,
  unsure: Map<number, Uint8Array> = new Map(),
): Promise<void> {
  const r = await runDogOk(["vdi", "read", "a", "0", String(want.length)], {
    port: slot.port,
    deadlineMs: 120_000,
  });
  assert.equal(r.stdout.length, want.length, `read through ${slot.addr}`);
  const got = r.stdout;
  for (const [off, alt] of unsure) {
    const seg = got.subarray(off, off + alt.length);
    if (seg.every((b, i) => b === alt[i])) want.set(alt, off);
  }
  unsure.clear();
  const same = got.every((b, i) => b === want[i]);
  assert.ok(same, `VDI a reads back what was acknowledged through ${slot.addr}`);
}

/** Creates VDI a of `n` objects and writes all of it through `slot`; returns what was written. */
async function fillVdiA(slot: Slot, n: number, seed: number): Promise<Uint8Array> {
  await createVdi(slot.port, "a", `${n * 4}M`);
  const data = pattern(n * OBJ, seed);
  await runDogOk(["vdi", "write", "a", "0", String(data.length)], {
    port: slot.port,
    stdin: data,
    deadlineMs: 120_000,
  });
  return data;
}

async function clusterStatus(slot: Slot): Promise<string> {
  const r = await runDogOk(["cluster", "info"], { port: slot.port });
  return r.stdoutText.split("\n")[0];
}

async function stopAll(slots: Slots): Promise<void> {
  await Promise.all(slots.slots.map((s) => s.proc?.stop(10_000).catch(() => {})));
}

Deno.test({
  name: "avoid-diskfull: a recovery that would fill the survivors' disks is not started; " +
    "the cluster serves degraded, then recovers once a sheep with room joins",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // 40 objects of 4 MiB, copies 2, disks of 164 MiB: after a loss each survivor needs all 40
    // (160 MiB + the reserve: does not fit); with a fresh sheep it needs at most 35 (fits).
    const n = 40;
    const disk = 164;
    const slots = await drawSlots(n, 37, 35);
    const mounts = new Mounts();
    try {
      for (const s of slots.slots.slice(0, 3)) await mounts.tmpfs(s.dir, disk);
      await mounts.tmpfs(slots.slots[3].dir, 512);
      const [a, b, victim, fresh] = slots.slots;
      await slots.startAll([a, b, victim]);
      await runDogOk(["cluster", "format", "-c", "2", "-F"], { port: a.port });
      const info = await runDogOk(["cluster", "info", "-v"], { port: b.port });
      assert.match(info.stdoutText, /^Cluster status: running, auto-recovery enabled\n/);
      const data = await fillVdiA(a, n, 7);

      await victim.kill();
      const degraded =
        /^Cluster status: running, degraded \(recovery not started: nodes? 127\.0\.0\.1:\d+(, 127\.0\.0\.1:\d+)? would be out of space\)$/;
      let last = "";
      await waitUntil(
        async () => {
          last = (await Promise.all([a, b].map(clusterStatus))).join(" | ");
          return [a, b].every((_, i) => degraded.test(last.split(" | ")[i]));
        },
        60_000,
        "the cluster to report itself degraded",
        200,
      ).catch((e) => {
        throw new Error(`${e.message}; last: ${last}`);
      });
      // Both survivors refused (each would have to hold all 40 objects).
      await waitUntil(
        async () =>
          (await clusterStatus(a)).includes(`nodes ${a.addr}, ${b.addr}`) ||
          (await clusterStatus(a)).includes(`nodes ${b.addr}, ${a.addr}`),
        30_000,
        "both survivors to refuse",
        200,
      );
      console.log(`avoid-diskfull: ${await clusterStatus(b)}`);
      const rec = await runDogOk(["node", "recovery"], { port: a.port });
      assert.match(rec.stdoutText, /not started/);

      for (const s of [a, b]) await readsBack(s, data);
      // A write either lands on every replica or fails cleanly (NO_SPACE where a replica was
      // never recovered); what reads back is the acknowledged state.
      const unsure = new Map<number, Uint8Array>();
      let failed = 0;
      for (let i = 0; i < n; i += 3) {
        const block = pattern(4096, 1000 + i);
        const w = await runDog(["vdi", "write", "a", String(i * OBJ), "4096"], {
          port: a.port,
          stdin: block,
        });
        if (w.success) data.set(block, i * OBJ);
        else {
          assert.match(w.stderrText, /space/i, `write ${i}: ${w.stderrText}`);
          unsure.set(i * OBJ, block);
          failed++;
        }
      }
      console.log(`avoid-diskfull: ${failed} of ${Math.ceil(n / 3)} writes failed cleanly`);
      await readsBack(a, data, unsure);
      await readsBack(b, data);
      for (const s of [a, b]) {
        assert.ok(s.up, `${s.addr} is still running`);
        assert.ok(freeBytes(s.dir) > 4 * MIB, `${s.dir} is not full`);
      }

      // A sheep with room joins: the recovery fits, runs and completes everywhere.
      await slots.startAll([fresh]);
      const done = await waitRecovered(slots, 3, 120_000);
      for (const s of [a, b, fresh]) {
        assert.match(await clusterStatus(s), /^Cluster status: running, auto-recovery enabled$/);
      }
      const ring = buildRing(done.nodes);
      const vid = vidOfName("a");
      for (let i = 0; i < n; i++) {
        const oid = vidToDataOid(vid, i);
        const name = objectFileName(oid);
        const holders = ring.place(oid, 2).map((x) => x.nid.port).sort();
        const have = [a, b, fresh].filter((s) => objectFiles(s.dir).includes(name)).map((s) =>
          s.port
        ).sort();
        assert.deepEqual(have, holders, `copies of ${name}`);
      }
      for (const s of [a, b, fresh]) await readsBack(s, data);
    } finally {
      await stopAll(slots);
      await mounts.unmountAll();
      await slots[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "without avoid-diskfull, a recovery that fills the disks keeps the daemons up and the " +
    "data readable, and the cluster says its recovery is stalled",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // 16 objects, copies 2, disks of 56 MiB: every sheep holds at most 12 at first; a survivor
    // would need all 16 (64 MiB).
    const n = 16;
    const disk = 56;
    const slots = await drawSlots(n, 12, n);
    const mounts = new Mounts();
    try {
      const [a, b, victim] = slots.slots;
      for (const s of [a, b, victim]) await mounts.tmpfs(s.dir, disk);
      await slots.startAll([a, b, victim]);
      await runDogOk(["cluster", "format", "-c", "2"], { port: a.port });
      const data = await fillVdiA(a, n, 11);
      await victim.kill();
      const stalled =
        /^Cluster status: running, degraded \(recovery stalled: nodes? 127\.0\.0\.1:\d+/;
      let last = "";
      await waitUntil(
        async () => {
          last = await clusterStatus(a);
          return stalled.test(last);
        },
        60_000,
        "the cluster to report a stalled recovery",
        200,
      ).catch((e) => {
        throw new Error(`${e.message}; last: ${last}`);
      });
      console.log(`no avoid-diskfull: ${last}`);
      await sleep(2000);
      for (const s of [a, b]) {
        assert.ok(s.up, `${s.addr} is still running`);
        await readsBack(s, data);
      }
    } finally {
      await stopAll(slots);
      await mounts.unmountAll();
      await slots[Symbol.asyncDispose]();
    }
  },
});
