/**
 * The recovery and consistency tools with real sheep (issue 4 §1, §3):
 *
 * - `sheep -R max=N,interval=MS`, `dog node recovery get-throttle|set-throttle`;
 * - `dog cluster recover disable`: after a SIGKILL the survivors do not re-replicate (they show
 *   in `dog node recovery`), yet every block the writer reads or writes is
 *   served (a request fetches its object first); `enable` finishes the recovery and every object
 *   is then where the ring says;
 * - `dog vdi check` repairs a corrupted replica (majority of SHA-1s) and a missing one, `-e`
 *   repairs missing replicas only, `dog cluster check` walks every VDI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { buildRing } from "../core/placement/ring.ts";
import { vidToDataOid } from "../core/hash/oid.ts";
import { runDogOk, sleep } from "./harness/mod.ts";
import { randomBytes } from "./harness/proto.ts";
import {
  checkPlacement,
  createVdi,
  once,
  rawClusterInfo,
  Slots,
  waitRecovered,
  Writer,
} from "./recovery_support.ts";

Deno.test({
  name: "tools: recovery throttle from -R and dog, recover disable/enable under writes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const n = 4;
    const copies = 3;
    await using slots = await Slots.create(n, ["-n", "-R", "max=4,interval=100"]);
    await slots.startAll();
    await slots.format(copies);
    const s0 = slots.slots[0];

    assert.equal(
      (await s0.dog(["node", "recovery", "get-throttle"])).stdoutText,
      "Recovery throttling: max 4 objects per 100 ms\n",
    );
    await runDogOk(["node", "recovery", "set-throttle", "2", "50"], { port: s0.port });
    assert.equal(
      (await s0.dog(["node", "recovery", "get-throttle"])).stdoutText,
      "Recovery throttling: max 2 objects per 50 ms\n",
    );
    await runDogOk(["node", "recovery", "set-throttle", "0", "0"], { port: s0.port });
    assert.equal(
      (await s0.dog(["node", "recovery", "get-throttle"])).stdoutText,
      "Recovery throttling: off\n",
    );
    const idle = await s0.dog(["node", "recovery"]);
    assert.equal(
      idle.stdoutText,
      "Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n",
    );

    const vid = await createVdi(s0.port, "d", "64M");
    const gateways = () => slots.up().slice(0, n - 1).map((s) => s.port);
    const writer = new Writer([vid], 4, 7, gateways);
    await writer.createAll();
    // Objects nobody touches while recovery is disabled: they wait for enable.
    const quiet = new Writer([await createVdi(s0.port, "q", "64M")], 12, 8, gateways);
    await quiet.createAll();

    const off = await runDogOk(["cluster", "recover", "disable"], { port: s0.port });
    assert.equal(off.stdoutText, "Cluster recovery: disable\n");
    const info = await runDogOk(["cluster", "info"], { port: slots.slots[1].port });
    assert.match(info.stdoutText, /^Cluster status: running, auto-recovery disabled\n/);

    writer.start();
    await slots.slots[n - 1].kill();
    await sleep(3000);
    // Recovery is paused: some survivor still has objects to get, and stale copies are kept.
    const table = (await s0.dog(["node", "recovery"])).stdoutText.split("\n").slice(2)
      .filter((l) => l !== "");
    assert.ok(table.length > 0, "no node in recovery while it is disabled");
    for (const row of table) assert.match(row, /^\s+\d+ 127\.0\.0\.1:\d+\s+\d+\s+\d+\s+\d+\.\d%$/);
    const raw = (await s0.dog(["node", "recovery", "-r"])).stdoutText.trim().split("\n");
    assert.equal(raw.length, table.length);
    assert.deepEqual(writer.counts.errors, [], "client-visible errors while recovery is disabled");

    const on = await runDogOk(["cluster", "recover", "enable"], { port: s0.port });
    assert.equal(on.stdoutText, "Cluster recovery: enable\n");
    const done = await waitRecovered(slots, n - 1, 60_000);
    await writer.stop();
    assert.deepEqual(writer.counts.errors, [], "client-visible errors");
    const placed = checkPlacement(slots, done.nodes, copies, writer);
    const placedQuiet = checkPlacement(slots, done.nodes, copies, quiet);
    console.log(
      `recovery_tools: recovery held while disabled (${table.length} nodes waiting), finished after enable: ${
        placed.files + placedQuiet.files
      } replicas placed; writes ` +
        `acknowledged ${writer.counts.writesAcked}, reads verified ${writer.counts.readsVerified}`,
    );
  },
});

Deno.test({
  name: "tools: dog vdi check repairs corrupted and missing replicas, -e missing ones, and " +
    "dog cluster check walks every VDI",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using slots = await Slots.create(4);
    await slots.startAll();
    await slots.format(3);
    const port = slots.slots[0].port;
    const vid = await createVdi(port, "chk", "16M");
    const image = randomBytes(12 * 1024 * 1024);
    await runDogOk(["vdi", "write", "chk"], { port, stdin: image });
    const ci = await once(port, rawClusterInfo);
    const ring = buildRing(ci.nodes);
    const byAddr = new Map(slots.slots.map((s) => [s.addr, s]));
    const holders = (oid: bigint) =>
      ring.place(oid, 3).map((n) =>
        byAddr.get(`${[...n.nid.addr.subarray(12)].join(".")}:${n.nid.port}`)!
      );
    const file = (s: { dir: string }, oid: bigint) =>
      `${s.dir}/obj/${oid.toString(16).padStart(16, "0")}`;
    const [a, b, c] = [0, 1, 2].map((i) => vidToDataOid(vid, i));

    // A corrupted replica of a, a missing replica of b.
    const bad = holders(a)[0];
    const f = await Deno.open(file(bad, a), { write: true });
    await f.write(new Uint8Array(100).fill(0xee));
    f.close();
    await Deno.remove(file(holders(b)[2], b));
    const check = await runDogOk(["vdi", "check", "chk"], { port });
    const lines = check.stdoutText.trim().split("\n").sort();
    assert.deepEqual(lines, [
      `finish check&repair chk`,
      `fixed missing ${b.toString(16)}`,
      `fixed replica ${a.toString(16)}`,
    ]);
    for (const oid of [a, b, c]) {
      const want = await Deno.readFile(file(holders(oid)[1], oid));
      for (const h of holders(oid)) assert.deepEqual(await Deno.readFile(file(h, oid)), want);
    }
    const read = await runDogOk(["vdi", "read", "chk", "0", String(image.length)], { port });
    assert.deepEqual(read.stdout, image);

    // -e only looks at existence.
    await Deno.remove(file(holders(c)[1], c));
    const exist = await runDogOk(["vdi", "check", "-e", "chk"], { port });
    assert.equal(exist.stdoutText, `fixed missing ${c.toString(16)}\nfinish check&repair chk\n`);
    assert.ok((await Deno.stat(file(holders(c)[1], c))).isFile);

    const all = await runDogOk(["cluster", "check"], { port });
    assert.equal(all.stdoutText, "fix vdi chk\nfinish check&repair chk\n");
  },
});
