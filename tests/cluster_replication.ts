/**
 * Gateway forwarding, replication and cluster ops in total order with real sheep (issue 3 §3,
 * §4): three sheep (zones 0-2, copies 2, so every node is a replica of some objects and a plain
 * gateway for others) on a private local-driver path.
 *
 * - A VDI written through node 0 reads back identical through every node, with `dog vdi read`
 *   and with raw READ_OBJ, and through tgt (an independent client) attached to node 2; what tgt
 *   writes through node 2 reads back through the others.
 * - Two `dog vdi create X` started together on two nodes: exactly one succeeds (5 names).
 * - Two `dog vdi setattr -x` of one key started together on two nodes: exactly one wins, and
 *   every node reads the winner's value (5 keys).
 * - A fourth sheep that joins afterwards learns the VDI state: its `dog vdi list` equals the
 *   others', it reads the same data and attributes.
 * - `dog cluster info` prints the same epoch history on every node.
 *
 * The case runs on `local` (cluster_replication_test.ts) and on corosync and ZooKeeper
 * (cluster_on_*_test.ts).
 *
 * tgtd, tgtadm and qemu-img are required (`.ci/run` installs them).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Cluster,
  defaultClusterTemplate,
  freePortBelow,
  run,
  runDog,
  runDogOk,
  startCluster,
  startTgt,
  tempDir,
  waitUntil,
  withDeadline,
} from "./harness/mod.ts";
import {
  assertSameBytes,
  connectSheep,
  objectFiles,
  randomBytes,
  readObj,
} from "./harness/proto.ts";
import { vidToDataOid } from "../core/hash/oid.ts";
import { SdReq } from "../core/proto/header.ts";
import { encodeVdiAttr } from "../core/proto/vdi_attr.ts";
import {
  Flag,
  Op,
  Res,
  SD_ATTR_OBJ_SIZE,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../core/proto/constants.ts";
import type { SheepClient } from "../core/net/client.ts";
import { type RequiredTool, requireTools } from "./harness/tools.ts";

const MIB = 1024 * 1024;
const OBJ_SIZE = 4 * MIB;
const VDI = "rep";
const VDI_SIZE = 32 * MIB;
/** The first 5 objects get data; the rest of the VDI stays a hole. */
const WRITTEN = 5 * OBJ_SIZE;
const TOOL_DEADLINE_MS = 60_000;
const ROUNDS = 5;

const TOOLS: RequiredTool[] = [["tgtd", "tgt"], ["tgtadm", "tgt"], ["qemu-img", "qemu-utils"]];

async function bounded<T>(what: string, p: Promise<T>, ms = TOOL_DEADLINE_MS): Promise<T> {
  const r = await withDeadline(p, ms);
  if (!r.ok) throw new Error(`${what}: no result after ${ms} ms`);
  return r.value;
}

/** Reads the whole VDI through every node with dog and compares it with `image`. */
async function readEverywhere(cl: Cluster, image: Uint8Array, when: string): Promise<void> {
  const outs = await Promise.all(
    cl.ports.map((port) => runDogOk(["vdi", "read", VDI], { port, deadlineMs: TOOL_DEADLINE_MS })),
  );
  outs.forEach((o, i) =>
    assertSameBytes(o.stdout, image, `${when}: dog vdi read through node ${i}`)
  );
}

/** READ_OBJ of every written object through every node (whole object, and an odd slice). */
async function readObjectsEverywhere(cl: Cluster, vid: number, image: Uint8Array): Promise<void> {
  await Promise.all(cl.ports.map(async (port, i) => {
    const c = await connectSheep(port);
    try {
      for (let idx = 0; idx < WRITTEN / OBJ_SIZE; idx++) {
        const oid = vidToDataOid(vid, idx);
        const whole = await readObj(c, oid, 0, OBJ_SIZE);
        assertSameBytes(
          whole,
          image.subarray(idx * OBJ_SIZE, (idx + 1) * OBJ_SIZE),
          `READ_OBJ ${idx} via ${i}`,
        );
        const off = 12345 + idx * 777;
        const part = await readObj(c, oid, off, 70_001);
        const base = idx * OBJ_SIZE + off;
        assertSameBytes(
          part,
          image.subarray(base, base + 70_001),
          `READ_OBJ ${idx}+${off} via ${i}`,
        );
      }
    } finally {
      c.close();
    }
  }));
}

/** NEW_VDI over a raw connection; returns the result code. */
async function rawNewVdi(c: SheepClient, name: string): Promise<number> {
  const payload = new Uint8Array(256);
  payload.set(new TextEncoder().encode(name));
  const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
  req.vdi.vdiSize = BigInt(16 * MIB);
  return (await c.request(req, payload)).rsp.result;
}

/** GET_VDI_ATTR with CREAT|EXCL (what `setattr -x` sends first); returns the result code. */
async function rawExclusiveAttr(c: SheepClient, key: string, value: string): Promise<number> {
  const v = new TextEncoder().encode(value);
  const payload = encodeVdiAttr({
    name: VDI,
    tag: "",
    ctime: 0n,
    snapId: 0,
    valueLen: v.length,
    key,
    value: v,
  });
  const req = SdReq.of(Op.GET_VDI_ATTR, SD_SHEEP_PROTO_VER, {
    flags: Flag.CMD_WRITE | Flag.CMD_CREAT | Flag.CMD_EXCL,
    dataLength: SD_ATTR_OBJ_SIZE,
  });
  return (await c.request(req, payload)).rsp.result;
}

/**
 * Sends `op` on connections to two nodes at the same instant (both connections open first);
 * exactly one must succeed and the other get `loses`.
 */
async function rawRace(
  cl: Cluster,
  a: number,
  b: number,
  what: string,
  op: (c: SheepClient) => Promise<number>,
  loses: number,
): Promise<void> {
  const [ca, cb] = await Promise.all([connectSheep(cl.ports[a]), connectSheep(cl.ports[b])]);
  try {
    const results = await Promise.all([op(ca), op(cb)]);
    const ok = results.filter((r) => r === Res.SUCCESS).length;
    assert.equal(ok, 1, `${what}: results ${results} (nodes ${a} and ${b})`);
    assert.ok(results.includes(loses), `${what}: results ${results}, want one ${loses}`);
  } finally {
    ca.close();
    cb.close();
  }
}

/** `dog vdi list -r` of every node. */
async function vdiLists(cl: Cluster): Promise<string[]> {
  const outs = await Promise.all(cl.ports.map((port) => runDogOk(["vdi", "list", "-r"], { port })));
  return outs.map((o) => o.stdoutText);
}

/** The `dog cluster info` table (from the Epoch header on) of every node. */
async function clusterInfos(cl: Cluster): Promise<string[]> {
  const outs = await Promise.all(cl.ports.map((port) => runDogOk(["cluster", "info"], { port })));
  return outs.map((o) => o.stdoutText);
}

/** Epoch number → node list, from a `dog cluster info` output. */
function epochHistory(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of text.split("\n")) {
    const r = line.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\d+) \[(.*)\]$/);
    if (r) m.set(Number(r[1]), r[2]);
  }
  return m;
}

/** The name of the replication case (its runners add the driver). */
export const REPLICATION_NAME =
  "replication: data written through one node reads back through every node and tgt; " +
  "racing creates and exclusive setattrs have one winner; a late joiner learns the VDIs";

/**
 * The replication case on the cluster driver of `driver` (a `-c` template, see
 * `expandClusterSpec`; the local driver unless $SHEEPDOG_TEST_CLUSTER says otherwise), as the steps of test `t`.
 */
export async function replicationCase(
  t: Deno.TestContext,
  driver = defaultClusterTemplate(),
): Promise<void> {
  requireTools(TOOLS);
  const t0 = Date.now();
  // tgt keeps only four digits of a tcp: port.
  const ports = [0, 1, 2].map(() => freePortBelow(10_000));
  const cl = await startCluster(3, {
    clusterTemplate: driver,
    ports,
    extraArgs: ["-n"],
    copies: 2,
  });
  await using tmp = await tempDir("repl");
  try {
    const image = new Uint8Array(VDI_SIZE);
    let vid = 0;

    await t.step("written through node 0, identical through every node", async () => {
      await runDogOk(["vdi", "create", VDI, String(VDI_SIZE)], { port: ports[0] });
      const data = randomBytes(WRITTEN);
      image.set(data);
      await bounded(
        "vdi write",
        runDogOk(["vdi", "write", VDI, "0", String(WRITTEN)], { port: ports[0], stdin: data }),
      );
      // An unaligned write across an object boundary, also through node 0.
      const patch = randomBytes(MIB + 333);
      const at = 2 * OBJ_SIZE - 4097;
      image.set(patch, at);
      await runDogOk(["vdi", "write", VDI, String(at), String(patch.length)], {
        port: ports[0],
        stdin: patch,
      });
      const list = (await runDogOk(["vdi", "list", "-r", VDI], { port: ports[1] })).stdoutText;
      vid = parseInt(list.trim().split(" ")[7], 16);
      assert.ok(vid > 0, list);

      // Copies 2 of 3 nodes: each object is on exactly two disks.
      for (let idx = 0; idx < WRITTEN / OBJ_SIZE; idx++) {
        const name = vidToDataOid(vid, idx).toString(16).padStart(16, "0");
        const holders = cl.sheep.filter((s) => objectFiles(s.dir).includes(name)).length;
        assert.equal(holders, 2, `object ${name} is on ${holders} nodes, not 2`);
      }
      await readEverywhere(cl, image, "after the writes");
      await readObjectsEverywhere(cl, vid, image);
    });

    await t.step(
      "tgt attached to node 2 reads it, and what it writes reads back elsewhere",
      async () => {
        const exp = await startTgt({ sheepPort: ports[2], vdi: VDI });
        try {
          const out = `${tmp.path}/lun.out`;
          const r = await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", exp.url, out], {
            deadlineMs: TOOL_DEADLINE_MS,
          });
          assert.ok(r.success, `qemu-img read of the LUN: ${r.stderrText}`);
          assertSameBytes(await Deno.readFile(out), image, "qemu-img read through tgt on node 2");

          const fresh = randomBytes(3 * MIB);
          const src = `${tmp.path}/fresh.img`;
          await Deno.writeFile(src, fresh);
          const w = await run(
            "qemu-img",
            ["convert", "-n", "-f", "raw", "-O", "raw", src, exp.url],
            { deadlineMs: TOOL_DEADLINE_MS },
          );
          assert.ok(w.success, `qemu-img write into the LUN: ${w.stderrText}`);
          image.set(fresh, 0);
        } finally {
          await exp.stop();
        }
        await readEverywhere(cl, image, "after tgt wrote through node 2");
      },
    );

    await t.step(
      "two vdi create of one name at once on two nodes: exactly one succeeds",
      async () => {
        for (let k = 0; k < ROUNDS; k++) {
          const name = `race-${k}`;
          const a = k % 3;
          const b = (k + 1) % 3;
          const [ra, rb] = await Promise.all([
            runDog(["vdi", "create", name, "16M"], { port: ports[a] }),
            runDog(["vdi", "create", name, "16M"], { port: ports[b] }),
          ]);
          const results = [ra, rb];
          const ok = results.filter((r) => r.code === 0);
          const lost = results.filter((r) => r.code !== 0);
          assert.equal(
            ok.length,
            1,
            `${name}: exits ${ra.code} (node ${a}) and ${rb.code} (node ${b})\n` +
              `${ra.stderrText}\n${rb.stderrText}`,
          );
          assert.equal(lost[0].code, 1, lost[0].stderrText);
          assert.equal(lost[0].stderrText, `Failed to create VDI ${name}: VDI exists already\n`);
        }
        // The same over raw connections opened beforehand: both NEW_VDI leave at one instant.
        for (let k = 0; k < ROUNDS; k++) {
          const name = `raw-race-${k}`;
          await rawRace(cl, k % 3, (k + 2) % 3, name, (c) => rawNewVdi(c, name), Res.VDI_EXIST);
        }
        const lists = await vdiLists(cl);
        for (const [i, l] of lists.entries()) {
          assert.equal(l, lists[0], `vdi list -r on node ${i} differs from node 0`);
          for (let k = 0; k < ROUNDS; k++) {
            for (const name of [`race-${k}`, `raw-race-${k}`]) {
              const rows = l.split("\n").filter((r) => r.split(" ")[1] === name);
              assert.equal(
                rows.length,
                1,
                `${name} listed ${rows.length} times on node ${i}:\n${l}`,
              );
            }
          }
        }
      },
    );

    const winners = new Map<string, string>();
    await t.step(
      "two setattr -x of one key at once on two nodes: exactly one winner",
      async () => {
        for (let k = 0; k < ROUNDS; k++) {
          const key = `key-${k}`;
          const a = (k + 2) % 3;
          const b = k % 3;
          const va = `value of node ${a} in round ${k}`;
          const vb = `value of node ${b} in round ${k}`;
          const [ra, rb] = await Promise.all([
            runDog(["vdi", "setattr", "-x", VDI, key, va], { port: ports[a] }),
            runDog(["vdi", "setattr", "-x", VDI, key, vb], { port: ports[b] }),
          ]);
          const ok = [ra, rb].filter((r) => r.code === 0);
          assert.equal(
            ok.length,
            1,
            `${key}: exits ${ra.code} and ${rb.code}\n${ra.stderrText}\n${rb.stderrText}`,
          );
          const loser = ra.code === 0 ? rb : ra;
          assert.equal(loser.code, 3, `the loser's exit code\n${loser.stderrText}`);
          assert.equal(loser.stderrText, `The attribute '${key}' already exists\n`);
          winners.set(key, ra.code === 0 ? va : vb);
        }
        for (let k = 0; k < ROUNDS; k++) {
          const key = `raw-key-${k}`;
          await rawRace(
            cl,
            (k + 1) % 3,
            k % 3,
            key,
            (c) => rawExclusiveAttr(c, key, `raw ${k}`),
            Res.VDI_EXIST,
          );
        }
        await Promise.all(cl.ports.map(async (port, i) => {
          for (const [key, value] of winners) {
            const g = await runDogOk(["vdi", "getattr", VDI, key], { port });
            assert.equal(g.stdoutText, value, `getattr ${key} through node ${i}`);
          }
        }));
      },
    );

    await t.step(
      "a node that joins later learns the VDIs; cluster info agrees everywhere",
      async () => {
        const before = await vdiLists(cl);
        const late = await cl.addSheep({ extraArgs: ["-n"] });
        await waitUntil(
          async () => {
            const infos = await clusterInfos(cl);
            return infos.every((i) => epochHistory(i).has(2));
          },
          15_000,
          "every node at epoch 2 after the join",
        );
        const after = await vdiLists(cl);
        assert.equal(after[3], before[0], `vdi list -r on the late node (${late.addr})`);
        for (const [i, l] of after.entries()) {
          assert.equal(l, before[0], `vdi list -r on node ${i}`);
        }
        const d = await runDogOk(["vdi", "read", VDI], {
          port: late.port,
          deadlineMs: TOOL_DEADLINE_MS,
        });
        assertSameBytes(d.stdout, image, "dog vdi read through the late node");
        for (const [key, value] of winners) {
          const g = await runDogOk(["vdi", "getattr", VDI, key], { port: late.port });
          assert.equal(g.stdoutText, value, `getattr ${key} through the late node`);
        }
        // A create through the late node is seen by all, and its name is taken everywhere.
        await runDogOk(["vdi", "create", "late", "8M"], { port: late.port });
        const again = await runDog(["vdi", "create", "late", "8M"], { port: ports[0] });
        assert.equal(again.code, 1, again.stderrText);

        // Same epoch history on every node: epoch numbers, node lists and (once the master's
        // time has reached everyone) the times.
        // Host:Port only: auto vnodes follow each node's free space at its first start.
        const addrs = (ps: number[]) =>
          [...ps].sort((a, b) => a - b).map((p) => `127.0.0.1:${p}`).join(", ");
        const strip = (list: string | undefined) => list?.replace(/:\d+(?=,|$)/g, "");
        let infos: string[] = [];
        await waitUntil(
          async () => {
            infos = await clusterInfos(cl);
            return infos.every((i) => i === infos[0]);
          },
          5_000,
          "the same cluster info on every node",
        ).catch((e) => {
          throw new Error(`${e.message}\n${infos.map((x, i) => `--- node ${i}\n${x}`).join("")}`);
        });
        const h = epochHistory(infos[0]);
        assert.deepEqual([...h.keys()], [2, 1], infos[0]);
        assert.equal(strip(h.get(1)), addrs(cl.ports.slice(0, 3)), infos[0]);
        assert.equal(strip(h.get(2)), addrs(cl.ports), infos[0]);
        for (const s of cl.sheep) {
          const files = [...Deno.readDirSync(`${s.dir}/epoch`)].map((e) => e.name).sort();
          assert.deepEqual(files, ["00000001", "00000002"], `epoch files of ${s.addr}`);
        }
      },
    );

    for (const s of cl.sheep) assert.ok(s.running, `${s.addr} died:\n${s.process.logTail()}`);
    console.log(`cluster_replication (${cl.clusterSpec.split(":")[0]}): ${Date.now() - t0} ms`);
  } finally {
    await cl.stopAll();
  }
}
