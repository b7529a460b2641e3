/**
 * Objects reclaimed while a node was down must not come back when it returns: its copies are
 * older than the deletion, and recovery must not take them for the newest surviving copies.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Slots, staleFiles, waitRecovered } from "./recovery_support.ts";
import { objectFiles } from "./harness/proto.ts";
import { runDog } from "./harness/mod.ts";
import { isDataObj, isLedgerObj, isVmstateObj } from "../core/hash/oid.ts";

const N = 4;
const COPIES = 3;
const MIB = 1024 * 1024;

function dataFiles(dir: string): string[] {
  return objectFiles(dir).filter((name) => {
    const oid = BigInt(`0x${name}`);
    return isDataObj(oid) || isLedgerObj(oid) || isVmstateObj(oid);
  });
}

async function dogOk(slots: Slots, node: number, args: string[], stdin?: Uint8Array) {
  const r = await runDog(args, { port: slots.slots[node].port, deadlineMs: 60_000, stdin });
  assert.equal(r.code, 0, `dog ${args.join(" ")}: ${r.stderrText}${r.stdoutText}`);
  return r.stdoutText;
}

Deno.test({
  name: "a VDI deleted while a node is down does not come back with it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using slots = await Slots.create(N, ["-n"], "deleted");
    await slots.startAll();
    await slots.format(COPIES);
    const data = new Uint8Array(16 * MIB).map((_, i) => (i * 7 + 3) & 0xff);
    for (const v of ["gone", "kept"]) {
      await dogOk(slots, 0, ["vdi", "create", v, "16M"]);
      await dogOk(slots, 0, ["vdi", "write", v], data);
    }
    await dogOk(slots, 0, ["vdi", "snapshot", "-s", "snap", "gone"]);
    const victim = slots.slots[2];
    const before = dataFiles(victim.dir);
    assert.ok(before.length > 0, "the victim holds data objects");

    await victim.kill();
    await waitRecovered(slots, N - 1, 60_000);
    await dogOk(slots, 0, ["vdi", "delete", "gone"]);
    await dogOk(slots, 0, ["vdi", "delete", "-s", "snap", "gone"]);
    await waitRecovered(slots, N - 1, 60_000);

    await victim.start().waitReady(45_000);
    await waitRecovered(slots, N, 60_000);

    // Every data and ledger object left belongs to "kept", on exactly COPIES nodes, and no stale
    // copy is left once recovery completed everywhere.
    const kept = parseInt((await dogOk(slots, 0, ["vdi", "list", "-r", "kept"])).split(" ")[7], 16);
    const count = new Map<string, number>();
    for (const s of slots.slots) {
      assert.deepEqual(staleFiles(s.dir), [], `stale copies on sheep ${s.index}`);
      for (const name of dataFiles(s.dir)) {
        const vid = Number((BigInt(`0x${name}`) >> 32n) & 0xffffffn);
        assert.equal(vid, kept, `sheep ${s.index} keeps ${name} of a deleted VDI`);
        count.set(name, (count.get(name) ?? 0) + 1);
      }
    }
    assert.equal(count.size, 4, "kept's four data objects");
    for (const [name, n] of count) assert.equal(n, COPIES, `${name} has ${n} copies`);
    const back = await slots.slots[2].dog(["vdi", "read", "kept"], 60_000);
    assert.deepEqual(back.stdout, data);
  },
});
