/**
 * Issue 5 on three real sheep (copies 2), feature by feature:
 *
 * - a client that plays QEMU's driver with raw requests writes while its VDI is snapshotted: the
 *   old object answers READONLY, the client reloads the inode and carries on in the new working
 *   VDI with a copy-on-write create; the snapshot keeps the old bytes; a snapshot's inode entries
 *   cannot be pointed elsewhere;
 * - QEMU's savevm: VM state objects written, the header updated, NEW_VDI; the VM state becomes
 *   read-only with the snapshot and is removed with it;
 * - attributes across snapshots;
 * - rollback (and `-R`), tree and graph;
 * - backup between two snapshots in v1.0's format, and restore;
 * - tgt exporting snapshots by tag and by id as read-only iSCSI LUNs.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Cluster,
  freePortBelow,
  run,
  startCluster,
  startTgt,
  tempDir,
} from "./harness/mod.ts";
import {
  assertSameBytes,
  connectSheep,
  createObj,
  objectFiles,
  randomBytes,
  readObj,
  writeObj,
} from "./harness/proto.ts";
import { SdReq } from "../core/proto/header.ts";
import { Flag, Op, Res, SD_INODE_HEADER_SIZE, SD_PROTO_VER } from "../core/proto/constants.ts";
import { vidToDataOid, vidToVdiOid, vidToVmstateOid } from "../core/hash/oid.ts";
import { lookupVdiId } from "../core/vdi_client/volume.ts";
import type { SheepClient } from "../core/net/client.ts";
import {
  BACKUP_HEADER_SIZE,
  decodeRecordHeader,
  END_IDX,
  isBackupHeader,
  RECORD_HEADER_SIZE,
} from "../core/vdi/backup_stream.ts";

const MIB = 1024 * 1024;
const OBJ = 4 * MIB;

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

async function dogOk(cl: Cluster, args: string[], stdin?: Uint8Array, node = 0) {
  const r = await cl.dog(args, { stdin, node });
  assert.equal(r.code, 0, `dog ${args.join(" ")} exited ${r.code}:\n${r.stderrText}`);
  return r;
}

/** A raw object request; returns the result code. */
async function raw(
  c: SheepClient,
  opcode: number,
  oid: bigint,
  offset: number,
  data: Uint8Array,
  cowOid = 0n,
): Promise<number> {
  let flags = Flag.CMD_WRITE;
  if (cowOid !== 0n) flags |= Flag.CMD_COW;
  const req = SdReq.of(opcode, SD_PROTO_VER, { flags, dataLength: data.length });
  req.obj.oid = oid;
  req.obj.cowOid = cowOid;
  req.obj.offset = offset;
  return (await c.request(req, data)).rsp.result;
}

function entry(inode: Uint8Array, idx: number): number {
  return new DataView(inode.buffer, inode.byteOffset).getUint32(
    SD_INODE_HEADER_SIZE + 4 * idx,
    true,
  );
}

function holders(cl: Cluster, oid: bigint): number {
  const name = oid.toString(16).padStart(16, "0");
  return cl.sheep.filter((s) => objectFiles(s.dir).includes(name)).length;
}

Deno.test({
  name: "snapshots: READONLY client, savevm, attributes, rollback, tree, backup, restore, tgt",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    // tgt keeps four digits of a tcp: port (its unix: form takes no snapshot suffix).
    const ports: number[] = [];
    while (ports.length < 3) {
      const p = freePortBelow(10_000);
      if (!ports.includes(p)) ports.push(p);
    }
    await using cl = await startCluster(3, { copies: 2, extraArgs: ["-n"], ports });
    const c = await connectSheep(cl.ports[1]);
    const request = (req: SdReq, data?: Uint8Array) => c.request(req, data);
    try {
      await t.step("a QEMU-like client follows the working VDI across a snapshot", async () => {
        await dogOk(cl, ["vdi", "create", "q", "64M"]);
        const vid = await lookupVdiId(request, "q");
        // QEMU reads the old-size inode (header + data_vdi_id).
        const inode = await readObj(c, vidToVdiOid(vid), 0, 4_198_968);
        assert.equal(entry(inode, 0), 0);
        const a = randomBytes(4096);
        await createObj(c, vidToDataOid(vid, 0), a, 0);
        await writeObj(c, vidToVdiOid(vid), SD_INODE_HEADER_SIZE, u32(vid));

        await dogOk(cl, ["vdi", "snapshot", "-s", "snap", "q"], undefined, 2);
        const b = randomBytes(4096);
        assert.equal(
          await raw(c, Op.WRITE_OBJ, vidToDataOid(vid, 0), 8192, b),
          Res.READONLY,
          "a write to the snapshotted object",
        );
        assert.equal(
          await raw(c, Op.CREATE_AND_WRITE_OBJ, vidToDataOid(vid, 1), 0, b),
          Res.READONLY,
          "a create in the snapshotted VDI",
        );
        // Reload: the name now leads to a new working VDI that still points at the old object.
        const nvid = await lookupVdiId(request, "q");
        assert.notEqual(nvid, vid);
        const ninode = await readObj(c, vidToVdiOid(nvid), 0, 4_198_968);
        assert.equal(entry(ninode, 0), vid);
        assert.equal(
          await raw(
            c,
            Op.CREATE_AND_WRITE_OBJ,
            vidToDataOid(nvid, 0),
            8192,
            b,
            vidToDataOid(vid, 0),
          ),
          Res.SUCCESS,
        );
        await writeObj(c, vidToVdiOid(nvid), SD_INODE_HEADER_SIZE, u32(nvid));
        const merged = await readObj(c, vidToDataOid(nvid, 0), 0, 12288);
        assertSameBytes(merged.subarray(0, 4096), a, "copied-on-write head");
        assertSameBytes(merged.subarray(8192), b, "new bytes");
        const snap = await dogOk(cl, ["vdi", "read", "-s", "snap", "q", "0", "12288"]);
        assertSameBytes(snap.stdout.subarray(0, 4096), a, "snapshot head");
        assert.equal(snap.stdout.subarray(4096).findIndex((x) => x !== 0), -1, "snapshot tail");
        // A snapshot's entries can be cleared (delete) but not pointed at other objects.
        assert.equal(
          await raw(c, Op.WRITE_OBJ, vidToVdiOid(vid), SD_INODE_HEADER_SIZE + 4, u32(nvid)),
          Res.READONLY,
        );
        // The old object is shared: one ledger says so, and both objects exist.
        assert.equal(holders(cl, vidToDataOid(vid, 0)), 2);
        assert.equal(holders(cl, vidToDataOid(vid, 0) | (1n << 59n)), 2);
      });

      await t.step("attributes keep working across snapshots", async () => {
        await dogOk(cl, ["vdi", "setattr", "q", "owner", "alice"]);
        await dogOk(cl, ["vdi", "snapshot", "-s", "attr", "q"]);
        assert.equal((await dogOk(cl, ["vdi", "getattr", "q", "owner"])).stdoutText, "alice");
        await dogOk(cl, ["vdi", "setattr", "-s", "attr", "q", "frozen", "yes"]);
        assert.equal(
          (await dogOk(cl, ["vdi", "getattr", "-s", "attr", "q", "frozen"])).stdoutText,
          "yes",
        );
        assert.equal((await cl.dog(["vdi", "getattr", "q", "frozen"])).code, 5);
      });

      await t.step("savevm: VM state objects are snapshotted and reclaimed", async () => {
        const vid = await lookupVdiId(request, "q");
        const state = randomBytes(100_000);
        await createObj(c, vidToVmstateOid(vid, 0), state, 0);
        await createObj(c, vidToVmstateOid(vid, 1), state.subarray(0, 10), 0);
        // QEMU writes tag and vm_state_size into the header, then NEW_VDI with snapid 1.
        const tag = new Uint8Array(256);
        tag.set(new TextEncoder().encode("vm1"));
        await writeObj(c, vidToVdiOid(vid), 256, tag);
        await writeObj(c, vidToVdiOid(vid), 544, u64(BigInt(OBJ + 10)));
        const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
        req.vdi.vdiSize = BigInt(64 * MIB);
        req.vdi.baseVdiId = vid;
        req.vdi.snapid = 1;
        const name = new Uint8Array(256);
        name.set(new TextEncoder().encode("q"));
        const { rsp } = await c.request(req, name);
        assert.equal(rsp.result, Res.SUCCESS);
        assert.equal(await raw(c, Op.WRITE_OBJ, vidToVmstateOid(vid, 0), 0, u32(1)), Res.READONLY);
        assertSameBytes(
          await readObj(c, vidToVmstateOid(vid, 0), 0, state.length),
          state,
          "vmstate",
        );
        assert.equal(holders(cl, vidToVmstateOid(vid, 0)), 2);
        await dogOk(cl, ["vdi", "delete", "-s", "vm1", "q"]);
        assert.equal(holders(cl, vidToVmstateOid(vid, 0)), 0);
        assert.equal(holders(cl, vidToVmstateOid(vid, 1)), 0);
      });

      await t.step("rollback, -R, tree and graph", async () => {
        await dogOk(cl, ["vdi", "create", "r", "16M"]);
        const x = randomBytes(5 * MIB);
        await dogOk(cl, ["vdi", "write", "r"], x);
        await dogOk(cl, ["vdi", "snapshot", "-s", "s1", "r"]);
        await dogOk(cl, ["vdi", "write", "r", "1000"], randomBytes(6 * MIB));
        const noS = await cl.dog(["vdi", "rollback", "r"]);
        assert.equal(noS.code, 64);
        assert.match(noS.stderrText, /^Please specify the '-s' option\n/);
        const v = await dogOk(cl, ["vdi", "rollback", "-f", "-v", "-s", "s1", "r"]);
        assert.match(v.stdoutText, /^New VDI ID of rollback VDI: [0-9a-f]+\n$/);
        assertSameBytes(
          (await dogOk(cl, ["vdi", "read", "r", "0", String(x.length)])).stdout,
          x,
          "rollback",
        );
        // Nothing of its own since the rollback: -R skips the snapshot.
        await dogOk(cl, ["vdi", "snapshot", "-R", "-s", "s2", "r"]);
        assert.equal((await cl.dog(["vdi", "read", "-s", "s2", "r", "0", "1"])).code, 1);
        const tree = (await dogOk(cl, ["vdi", "tree"])).stdoutText;
        assert.match(tree, /^r---\[\d{4}-\d\d-\d\d \d\d:\d\d\]---\(you are here\)$/m, tree);
        // q's savevm snapshot was deleted: its child starts a tree of its own, as in v1.0.
        assert.match(tree, /^q---\[[^\]]+\]---\[[^\]]+\]\nq---\(you are here\)$/m, tree);
        const graph = (await dogOk(cl, ["vdi", "graph"])).stdoutText;
        assert.ok(graph.startsWith("digraph G {\n"), graph);
        assert.ok(graph.endsWith("}\n"), graph);
        const rv = await lookupVdiId(request, "r");
        const s1 = await lookupVdiId(request, "r", { id: 0, tag: "s1" });
        assert.ok(graph.includes(`  "${s1.toString(16)}" -> "${rv.toString(16)}";\n`), graph);
        assert.ok(graph.includes('    color="red"\n'), graph);
      });

      const bImage = randomBytes(16 * MIB);
      let s1Image: Uint8Array;
      let s2Image: Uint8Array;
      let diff: Uint8Array;
      await t.step("backup between two snapshots, in v1.0's format", async () => {
        await dogOk(cl, ["vdi", "create", "b", "32M"]);
        await dogOk(cl, ["vdi", "write", "b"], bImage);
        await dogOk(cl, ["vdi", "snapshot", "-s", "s1", "b"]);
        s1Image = (await dogOk(cl, ["vdi", "read", "b"])).stdout;
        await dogOk(cl, ["vdi", "write", "b", "5000"], randomBytes(1000)); // object 0
        await dogOk(cl, ["vdi", "write", "b", String(3 * OBJ)], randomBytes(OBJ)); // object 3
        await dogOk(cl, ["vdi", "write", "b", String(5 * OBJ + 512)], randomBytes(512)); // new 5
        await dogOk(cl, ["vdi", "snapshot", "-s", "s2", "b"]);
        s2Image = (await dogOk(cl, ["vdi", "read", "b"])).stdout;
        diff = (await dogOk(cl, ["vdi", "backup", "-F", "s1", "-s", "s2", "b"])).stdout;
        assert.ok(isBackupHeader(diff.subarray(0, BACKUP_HEADER_SIZE)));
        const recs: [number, number, number][] = [];
        let at = BACKUP_HEADER_SIZE;
        for (;;) {
          const r = decodeRecordHeader(diff.subarray(at, at + RECORD_HEADER_SIZE));
          at += RECORD_HEADER_SIZE;
          if (r.idx === END_IDX) break;
          recs.push([r.idx, r.offset, r.length]);
          assertSameBytes(
            diff.subarray(at, at + r.length),
            s2Image.subarray(r.idx * OBJ + r.offset, r.idx * OBJ + r.offset + r.length),
            `record ${r.idx}`,
          );
          at += r.length;
        }
        assert.equal(at, diff.length, "bytes after the end record");
        assert.deepEqual(recs, [[0, 4608, 1536], [3, 0, OBJ], [5, 512, 512]]);
        const full = (await dogOk(cl, ["vdi", "backup", "-s", "s1", "b"])).stdout;
        assert.equal(full.length, 8 + 4 * (16 + OBJ) + 16, "a full backup of 4 objects");
        const noS = await cl.dog(["vdi", "backup", "-F", "s1", "b"]);
        assert.equal(noS.code, 64);
      });

      await t.step("restore a backup onto a snapshot", async () => {
        await dogOk(cl, ["vdi", "write", "b", "0"], randomBytes(MIB)); // discarded by restore
        const bad = await cl.dog(["vdi", "restore", "-s", "s1", "b"], {
          stdin: new Uint8Array(64),
        });
        assert.equal(bad.code, 2);
        assert.match(bad.stderrText, /The backup file is corrupted/);
        // The working VDI came back (from its parent, s2).
        assertSameBytes(
          (await dogOk(cl, ["vdi", "read", "b"])).stdout,
          s2Image,
          "after a bad restore",
        );
        await dogOk(cl, ["vdi", "restore", "-s", "s1", "b"], diff);
        // The restored VDI is the newest snapshot of b; the working VDI continues on s2.
        const list = (await dogOk(cl, ["vdi", "list", "-r", "b"])).stdoutText.trim().split("\n");
        const ids = list.filter((l) => l.startsWith("s ")).map((l) => Number(l.split(" ")[2]));
        const restored = Math.max(...ids);
        assertSameBytes(
          (await dogOk(cl, ["vdi", "read", "-s", String(restored), "b"])).stdout,
          s2Image,
          "restored snapshot",
        );
        assertSameBytes((await dogOk(cl, ["vdi", "read", "-s", "s1", "b"])).stdout, s1Image, "s1");
        assertSameBytes((await dogOk(cl, ["vdi", "read", "b"])).stdout, s2Image, "working after");
      });

      await t.step(
        "snapshots open by tag and id as read-only volumes (tgt's requests)",
        async () => {
          // tgt opens a backing store `…:VDI:TAG` / `…:VDI:ID` with LOCK_VDI (name + tag, snapid),
          // reads the inode and the objects; writes to a snapshot answer READONLY.
          for (const [tag, id, image] of [["s1", 0, s1Image!], ["", 2, s2Image!]] as const) {
            const payload = new Uint8Array(512);
            payload.set(new TextEncoder().encode("b"));
            payload.set(new TextEncoder().encode(tag), 256);
            const req = SdReq.of(Op.LOCK_VDI, 0x01, { flags: Flag.CMD_WRITE, dataLength: 512 });
            req.vdi.snapid = id;
            const { rsp } = await c.request(req, payload);
            assert.equal(rsp.result, Res.SUCCESS);
            const vid = rsp.vdi.vdiId;
            const inode = await readObj(c, vidToVdiOid(vid), 0, 4_198_968);
            for (let idx = 0; idx < 6; idx++) {
              const owner = entry(inode, idx);
              const want = image.subarray(idx * OBJ, (idx + 1) * OBJ);
              const got = owner === 0
                ? new Uint8Array(OBJ)
                : await readObj(c, vidToDataOid(owner, idx), 0, OBJ);
              assertSameBytes(got, want, `b:${tag || id} object ${idx}`);
            }
            const own = [0, 1, 2, 3, 4, 5].find((i) => entry(inode, i) === vid);
            if (own !== undefined) {
              assert.equal(
                await raw(c, Op.WRITE_OBJ, vidToDataOid(vid, own), 0, u32(1)),
                Res.READONLY,
              );
            }
            const release = SdReq.of(Op.RELEASE_VDI, 0x01, {});
            release.vdi.baseVdiId = vid;
            assert.equal((await c.request(release)).rsp.result, Res.SUCCESS);
          }
        },
      );

      await t.step(
        "tgt exports a snapshot as a LUN, if its path parser takes the suffix",
        async () => {
          // Debian's tgt 1.0.85 refuses `:TAG` and `:ID` after the VDI name ("unexpected token"):
          // then there is nothing more to check with it.
          await using tmp = await tempDir("tgtsnap");
          for (const [snapshot, image] of [["s1", s1Image!], [2, s2Image!]] as const) {
            let exp;
            try {
              exp = await startTgt({ sheepPort: cl.ports[0], vdi: "b", snapshot });
            } catch (e) {
              if (/unexpected token/.test(String(e))) {
                console.log(`tgt refuses the snapshot suffix of b:${snapshot}; skipped`);
                return;
              }
              throw e;
            }
            try {
              const out = `${tmp.path}/lun.img`;
              const r = await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", exp.url, out], {
                deadlineMs: 60_000,
              });
              assert.equal(r.code, 0, r.stderrText);
              assertSameBytes(await Deno.readFile(out), image, `LUN of b:${snapshot}`);
            } finally {
              await exp.stop();
            }
          }
        },
      );
    } finally {
      c.close();
    }
  },
});
