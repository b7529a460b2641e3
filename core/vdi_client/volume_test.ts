import assert from "node:assert/strict";
import { Flag, Op, Res, SD_INODE_HEADER_SIZE, SD_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { vidToDataOid, vidToVdiOid } from "../hash/oid.ts";
import { type TestSheep, withTestSheep } from "../sheep/testdata/in_process_sheep.ts";
import { type SheepRequest, VdiIoError, VdiVolume } from "./volume.ts";

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

/** The sheep's request function, counting requests by opcode and object. */
function counting(
  t: TestSheep,
): { request: SheepRequest; seen: { opcode: number; oid: bigint }[] } {
  const seen: { opcode: number; oid: bigint }[] = [];
  return {
    seen,
    request: (req, data) => {
      seen.push({ opcode: req.opcode, oid: req.obj.oid });
      return t.request(req, data);
    },
  };
}

async function inodeEntries(t: TestSheep, vid: number, n: number): Promise<number[]> {
  const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4 * n });
  req.obj.oid = vidToVdiOid(vid);
  req.obj.offset = SD_INODE_HEADER_SIZE;
  const { rsp, data } = await t.request(req);
  assert.equal(rsp.result, Res.SUCCESS);
  return [...new Uint32Array(data.slice().buffer)];
}

async function objectExists(t: TestSheep, oid: bigint): Promise<boolean> {
  const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 1 });
  req.obj.oid = oid;
  const { rsp } = await t.request(req);
  return rsp.result === Res.SUCCESS;
}

Deno.test("VdiVolume reads holes as zeros and writes across objects with their inode entries", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 20 * MiB);
    const v = await VdiVolume.open(t.request, "vol");
    assert.equal(v.size, 20 * MiB);
    assert.equal(v.vid, vid);
    assert.equal(v.readOnly, false);
    assert.deepEqual(await v.read(OBJ - 10, 20), new Uint8Array(20));
    const data = pattern(OBJ + 1000, 1);
    await v.write(OBJ - 500, data);
    assert.deepEqual(await v.read(OBJ - 500, data.length), data);
    assert.deepEqual(await inodeEntries(t, vid, 4), [vid, vid, vid, 0]);
    // Reopened from the cluster, the data and the holes are the same.
    const again = await VdiVolume.open(t.request, "vol");
    const whole = await again.read(0, 20 * MiB);
    assert.deepEqual(whole.subarray(OBJ - 500, OBJ - 500 + data.length), data);
    assert.ok(whole.subarray(0, OBJ - 500).every((b) => b === 0));
    assert.ok(whole.subarray(OBJ - 500 + data.length).every((b) => b === 0));
  });
});

Deno.test("VdiVolume creates an object once when many writes to it are in flight", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 8 * MiB);
    const { request, seen } = counting(t);
    const v = await VdiVolume.open(request, "vol");
    seen.length = 0;
    const writes = Array.from({ length: 32 }, (_, i) => v.write(i * 8192, pattern(4096, i)));
    await Promise.all(writes);
    const creates = seen.filter((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ);
    assert.equal(creates.length, 1);
    assert.equal(creates[0].oid, vidToDataOid(vid, 0));
    const inodeWrites = seen.filter((s) => s.opcode === Op.WRITE_OBJ && s.oid === vidToVdiOid(vid));
    assert.equal(inodeWrites.length, 1);
    for (let i = 0; i < 32; i++) {
      assert.deepEqual(await v.read(i * 8192, 4096), pattern(4096, i), `write ${i}`);
      assert.deepEqual(await v.read(i * 8192 + 4096, 4096), new Uint8Array(4096));
    }
  });
});

Deno.test("VdiVolume zero() releases whole objects and writes zeros over partial ranges", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 16 * MiB);
    const v = await VdiVolume.open(t.request, "vol");
    await v.write(0, pattern(16 * MiB, 2));
    // [1 MiB, 13 MiB): objects 1 and 2 whole, 0 and 3 in part.
    await v.zero(MiB, 12 * MiB, { unmap: true });
    assert.deepEqual(await inodeEntries(t, vid, 4), [vid, 0, 0, vid]);
    assert.equal(await objectExists(t, vidToDataOid(vid, 1)), false, "released");
    const back = await v.read(0, 16 * MiB);
    assert.deepEqual(back.subarray(0, MiB), pattern(16 * MiB, 2).subarray(0, MiB));
    assert.ok(back.subarray(MiB, 13 * MiB).every((b) => b === 0));
    assert.deepEqual(back.subarray(13 * MiB), pattern(16 * MiB, 2).subarray(13 * MiB));
    // Without unmap (NO_HOLE) zeros are written and the object stays allocated.
    await v.zero(12 * MiB, OBJ, { unmap: false });
    assert.deepEqual(await inodeEntries(t, vid, 4), [vid, 0, 0, vid]);
    assert.ok((await v.read(12 * MiB, OBJ)).every((b) => b === 0));
    // A fresh volume sees the released objects as holes.
    const again = await VdiVolume.open(t.request, "vol");
    assert.equal(again.owner(1), 0);
    assert.ok((await again.read(MiB, 12 * MiB)).every((b) => b === 0));
  });
});

Deno.test("VdiVolume of a snapshot is read-only; the working volume follows the snapshot", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 8 * MiB);
    const v = await VdiVolume.open(t.request, "vol");
    await v.write(0, pattern(OBJ, 3));
    const newVid = await t.snapshot("vol", vid, 8 * MiB, "before");
    assert.notEqual(newVid, vid);
    // The next write finds the old vid read-only, follows the name and copies on write.
    await v.write(100, pattern(100, 4));
    assert.equal(v.vid, newVid);
    const expected = pattern(OBJ, 3);
    expected.set(pattern(100, 4), 100);
    assert.deepEqual(await v.read(0, OBJ), expected);
    // The snapshot, by tag and by id, still has the old bytes and refuses writes.
    const snapByTag = await VdiVolume.open(t.request, "vol", { id: 0, tag: "before" });
    const snapById = await VdiVolume.open(t.request, "vol", { id: 1, tag: "" });
    assert.equal(snapByTag.vid, vid);
    assert.equal(snapById.vid, vid);
    assert.ok(snapByTag.readOnly);
    assert.deepEqual(await snapByTag.read(0, OBJ), pattern(OBJ, 3));
    await assert.rejects(
      snapByTag.write(0, new Uint8Array(1)),
      (e) => e instanceof SdError && e.result === Res.READONLY,
    );
    await assert.rejects(
      snapByTag.zero(0, OBJ, { unmap: true }),
      (e) => e instanceof SdError && e.result === Res.READONLY,
    );
    // Discarding in the working VDI leaves the snapshot's object alone.
    await v.zero(OBJ, OBJ, { unmap: true });
    await v.zero(0, OBJ, { unmap: true });
    assert.ok((await v.read(0, OBJ)).every((b) => b === 0));
    assert.deepEqual(await snapById.read(0, OBJ), pattern(OBJ, 3));
  });
});

Deno.test("VdiVolume refuses ranges past the end and reports failed object requests", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("vol", 6 * MiB);
    const v = await VdiVolume.open(t.request, "vol");
    for (const p of [v.read(6 * MiB - 1, 2), v.write(6 * MiB, new Uint8Array(1)), v.read(-1, 1)]) {
      await assert.rejects(p, (e) => e instanceof SdError && e.result === Res.INVALID_PARMS);
    }
    // The last object is short: a zero of the VDI's tail is a whole-object release.
    await v.write(4 * MiB, pattern(2 * MiB, 5));
    await v.zero(4 * MiB, 2 * MiB, { unmap: true });
    assert.equal(v.owner(1), 0);
    await assert.rejects(
      VdiVolume.open(t.request, "nosuch"),
      (e) => e instanceof SdError && e.result === Res.NO_VDI,
    );
    await v.write(0, new Uint8Array([1]));
    const broken = await VdiVolume.open(async (req, data) => {
      if (req.opcode === Op.READ_OBJ && req.obj.oid !== vidToVdiOid(v.vid)) {
        throw new Error("connection reset");
      }
      return await t.request(req, data);
    }, "vol");
    await assert.rejects(
      broken.read(0, 10),
      (e) =>
        e instanceof VdiIoError && e.op === "read" && e.result === Res.NETWORK_ERROR &&
        e.oid === vidToDataOid(v.vid, 0),
    );
    // A hole needs no request.
    assert.deepEqual(await broken.read(4 * MiB, 10), new Uint8Array(10));
  });
});

Deno.test("VdiVolume creates each object once for a stream of pieces with an object in flight", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 3 * OBJ);
    const { request, seen } = counting(t);
    const v = await VdiVolume.open(request, "vol");
    seen.length = 0;
    const piece = 256 * 1024;
    const data = pattern(3 * OBJ, 5);
    // 16 pieces (an object's worth) in flight, as nbdcopy or a guest streaming a copy.
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < data.length) {
        const at = next;
        next += piece;
        await v.write(at, data.subarray(at, at + piece));
      }
    }));
    const creates = seen.filter((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ);
    assert.deepEqual(creates.map((c) => c.oid), [0, 1, 2].map((i) => vidToDataOid(vid, i)));
    // Only the very first piece starts no stream: it creates object 0 alone, and the other
    // pieces of object 0 go in place together; the other objects are created (nearly) whole.
    // Piece by piece, there would be 45 in-place writes.
    const dataWrites = seen.filter((s) => s.opcode === Op.WRITE_OBJ && s.oid !== vidToVdiOid(vid));
    assert.ok(
      dataWrites.length <= 8,
      `in-place writes: ${dataWrites.map((w) => w.oid.toString(16)).join(" ")}`,
    );
    const inodeWrites = seen.filter((s) => s.opcode === Op.WRITE_OBJ && s.oid === vidToVdiOid(vid));
    assert.ok(inodeWrites.length <= 3, `${inodeWrites.length} inode writes`);
    assert.deepEqual(await inodeEntries(t, vid, 3), [vid, vid, vid]);
    const again = await VdiVolume.open(t.request, "vol");
    assert.deepEqual(await again.read(0, data.length), data);
  });
});

Deno.test("VdiVolume with CMD_WRITEBACK: writes carry the flag, flush() sends FLUSH_NODES only after writes, and a flush started meanwhile waits for the running one, then flushes again what that one failed to", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("vol", 8 * MiB);
    const flags: number[] = [];
    let flushes = 0;
    let hold: PromiseWithResolvers<number> | null = null;
    const request: SheepRequest = async (req, data) => {
      if (req.opcode === Op.WRITE_OBJ || req.opcode === Op.CREATE_AND_WRITE_OBJ) {
        flags.push(req.flags);
      }
      if (req.opcode === Op.FLUSH_NODES) {
        flushes++;
        const reply = await t.request(req, data);
        if (hold !== null) reply.rsp.result = await hold.promise;
        return reply;
      }
      return await t.request(req, data);
    };
    const durable = await VdiVolume.open(request, "vol");
    await durable.write(0, pattern(4096, 1));
    await durable.flush();
    assert.equal(flushes, 0, "durable writes need no flush");

    const v = await VdiVolume.open(request, "vol", undefined, { writeFlags: Flag.CMD_WRITEBACK });
    flags.length = 0;
    await v.flush();
    assert.equal(flushes, 0, "nothing written yet");
    await v.write(OBJ - 100, pattern(200, 2));
    assert.ok(flags.length >= 3, "a write and a create and the inode entry");
    assert.ok(flags.every((f) => (f & Flag.CMD_WRITEBACK) !== 0), "every write is writeback");
    await v.flush();
    assert.equal(flushes, 1);
    await v.flush();
    assert.equal(flushes, 1, "nothing written since");

    await v.write(0, pattern(100, 3));
    hold = Promise.withResolvers<number>();
    const first = v.flush();
    const second = v.flush();
    let secondDone = false;
    second.then(() => secondDone = true, () => secondDone = true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(secondDone, false, "the second flush waits for the first");
    hold.resolve(Res.EIO);
    for (const p of [first, second]) {
      await assert.rejects(p, (e) => e instanceof VdiIoError && e.result === Res.EIO);
    }
    // The second one ran after the first failed, and sent its writes again (failing as well).
    assert.equal(flushes, 3);
    hold = null;
    await v.flush();
    assert.equal(flushes, 4, "the failed flushes' writes are flushed again");
    assert.deepEqual(await v.read(0, 100), pattern(100, 3));
  });
});
