/**
 * Issue 5, `dog cluster format -R` (RECYCLE_VID) on three real sheep, copies 2: a family of
 * snapshots and clones keeps its inodes while any member lives; once the last member is deleted,
 * no data, ledger or inode object of the family remains, its vids leave the in-use and deleted
 * bitmaps, and a new VDI takes the lowest free vid again.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runDogOk, startCluster } from "./harness/mod.ts";
import { connectSheep, objectFiles, randomBytes } from "./harness/proto.ts";
import { isVdiObj, oidToVid, parseOid } from "../core/hash/oid.ts";
import { SdReq } from "../core/proto/header.ts";
import {
  Op,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
  SD_VDI_BITMAP_SIZE,
} from "../core/proto/constants.ts";
import { assertNoDataLeft } from "./snapshot_model.ts";

const MIB = 1024 * 1024;

Deno.test({
  name: "recycle: a deleted family is reclaimed whole, inodes and vids included",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using cl = await startCluster(3, { extraArgs: ["-n"] });
    const port = cl.ports[0];
    await runDogOk(["cluster", "format", "-c", "2", "-R"], { port });
    const dog = (args: string[], stdin?: Uint8Array) => runDogOk(args, { port, stdin });
    const inodeVids = () => {
      const vids = new Set<number>();
      for (const s of cl.sheep) {
        for (const n of objectFiles(s.dir)) {
          const oid = parseOid(n);
          if (isVdiObj(oid)) vids.add(oidToVid(oid));
        }
      }
      return [...vids].sort((a, b) => a - b);
    };
    const bitmaps = async () => {
      const c = await connectSheep(cl.ports[2]);
      try {
        const out: number[][] = [];
        for (const op of [Op.READ_VDIS, Op.READ_DEL_VDIS]) {
          const ver = op < 0x80 ? SD_PROTO_VER : SD_SHEEP_PROTO_VER;
          const req = SdReq.of(op, ver, { dataLength: SD_VDI_BITMAP_SIZE });
          const { data } = await c.request(req);
          const set: number[] = [];
          data.forEach((b, i) => {
            for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) set.push(i * 8 + bit);
          });
          out.push(set);
        }
        return out;
      } finally {
        c.close();
      }
    };

    // A standalone VDI that must survive everything below.
    await dog(["vdi", "create", "keep", "8M"]);
    await dog(["vdi", "write", "keep"], randomBytes(MIB));
    // The family: fam (snapshots f1, f2), a clone of f1, a snapshot of the clone.
    await dog(["vdi", "create", "fam", "16M"]);
    await dog(["vdi", "write", "fam"], randomBytes(6 * MIB));
    await dog(["vdi", "snapshot", "-s", "f1", "fam"]);
    await dog(["vdi", "write", "fam", String(4 * MIB)], randomBytes(MIB));
    await dog(["vdi", "snapshot", "-s", "f2", "fam"]);
    await dog(["vdi", "clone", "-s", "f1", "fam", "kid"]);
    await dog(["vdi", "write", "kid", "100"], randomBytes(1000));
    await dog(["vdi", "snapshot", "-s", "k1", "kid"]);
    // With RECYCLE_VID the first free bit from 1 is taken: keep 1, fam 2 (f1) → 3 (f2) → 4,
    // kid 5 (k1) → 6.
    assert.deepEqual(inodeVids(), [1, 2, 3, 4, 5, 6]);

    await dog(["vdi", "delete", "fam"]);
    await dog(["vdi", "delete", "-s", "f1", "fam"]);
    await dog(["vdi", "delete", "kid"]);
    await dog(["vdi", "delete", "-s", "f2", "fam"]);
    // k1 still lives: the family keeps its inodes.
    assert.deepEqual(inodeVids(), [1, 2, 3, 4, 5, 6]);
    const [, deleted] = await bitmaps();
    assert.deepEqual(deleted, [2, 3, 4, 6]);
    await dog(["vdi", "delete", "-s", "k1", "kid"]);
    assert.deepEqual(inodeVids(), [1]);
    const [inUse, del] = await bitmaps();
    assert.deepEqual(inUse, [1]);
    assert.deepEqual(del, []);
    const list = (await dog(["vdi", "list", "-r"])).stdoutText;
    assert.match(list, /^= keep 0 8388608 4194304 0 \d+ 1 2 {2}22\n$/);

    // The vids are free again: a new VDI takes 2.
    await dog(["vdi", "create", "next", "4M"]);
    assert.match((await dog(["vdi", "list", "-r", "next"])).stdoutText, / 2 2 {2}22\n$/);
    await dog(["vdi", "delete", "next"]);
    await dog(["vdi", "delete", "keep"]);
    assertNoDataLeft(cl, "recycle");
    assert.deepEqual(inodeVids(), []);
  },
});
