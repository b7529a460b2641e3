import assert from "node:assert/strict";
import { withTestSheep } from "../sheep/testdata/in_process_sheep.ts";
import { memoryLog } from "../sheep/log.ts";
import { VdiVolume } from "../vdi_client/volume.ts";
import { ClusterFlag } from "../proto/constants.ts";
import { Cmd, Errno, Opt, Rep, TxFlag } from "./protocol.ts";
import { NbdOpenRefused } from "./server.ts";
import { startNbdExport } from "./sheep_export.ts";
import { exportNameReadings, VdiExports } from "./vdi_exports.ts";
import { RawNbdClient } from "./testdata/raw_nbd_client.ts";

const MiB = 1024 * 1024;

Deno.test("exportNameReadings(): the whole name first, then NAME:ID or NAME:TAG", () => {
  const W = { id: 0, tag: "" };
  assert.deepEqual(exportNameReadings("vol"), [{ name: "vol", snap: W }]);
  assert.deepEqual(exportNameReadings("vol:3"), [
    { name: "vol:3", snap: W },
    { name: "vol", snap: { id: 3, tag: "" } },
  ]);
  assert.deepEqual(exportNameReadings("a:b:nightly"), [
    { name: "a:b:nightly", snap: W },
    { name: "a:b", snap: { id: 0, tag: "nightly" } },
  ]);
  assert.deepEqual(exportNameReadings("vol:0"), [{ name: "vol:0", snap: W }]);
  assert.deepEqual(exportNameReadings("vol:"), [{ name: "vol:", snap: W }]);
  assert.deepEqual(exportNameReadings(":x"), [{ name: ":x", snap: W }]);
  assert.deepEqual(exportNameReadings(""), []);
  assert.deepEqual(exportNameReadings("x".repeat(256)), []);
  assert.deepEqual(exportNameReadings("vol:99999999999"), [{ name: "vol:99999999999", snap: W }]);
});

Deno.test("VdiExports lists working VDIs and snapshots and opens them by name, tag or id", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 8 * MiB);
    await t.createVdi("other", 4 * MiB);
    const exports = new VdiExports(t.request);
    const vol = (await exports.open("vol"))!;
    assert.equal(vol.size, 8 * MiB);
    assert.equal(vol.readOnly, false);
    await vol.write(0, new Uint8Array([1, 2, 3]));
    await t.snapshot("vol", vid, 8 * MiB, "before");
    const list = await exports.list();
    assert.deepEqual(list.map((e) => e.name).sort(), ["other", "vol", "vol:1"]);
    assert.match(list.find((e) => e.name === "vol:1")!.description!, /before/);
    for (const name of ["vol:before", "vol:1"]) {
      const snap = (await exports.open(name))!;
      assert.ok(snap.readOnly, name);
      assert.deepEqual([...await snap.read(0, 3)], [1, 2, 3]);
      snap.close();
    }
    assert.equal(await exports.open("nosuch"), null);
    assert.equal(await exports.open("vol:nosuch"), null);
    assert.equal(await exports.open("vol:7"), null);
    // The working export follows the snapshot: writes go to the new working VDI.
    await vol.write(1, new Uint8Array([9]));
    const snap = (await exports.open("vol:1"))!;
    assert.deepEqual([...await snap.read(0, 3)], [1, 2, 3]);
    snap.close();
    const again = (await exports.open("vol"))!;
    assert.deepEqual([...await again.read(0, 3)], [1, 9, 3]);
    again.close();
    vol.close();
    assert.equal(exports.openVolumes, 0);
  });
});

Deno.test("VdiExports shares one volume between the connections of a VDI", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("vol", 8 * MiB);
    const exports = new VdiExports(t.request);
    const a = (await exports.open("vol"))!;
    const [b, c] = await Promise.all([exports.open("vol"), exports.open("vol")]);
    assert.equal(exports.openVolumes, 1);
    // Concurrent writes to one unallocated object from three "connections".
    await Promise.all([
      a.write(0, new Uint8Array(4096).fill(1)),
      b!.write(8192, new Uint8Array(4096).fill(2)),
      c!.write(16384, new Uint8Array(4096).fill(3)),
    ]);
    const back = await a.read(0, 20480);
    assert.ok(back.subarray(0, 4096).every((x) => x === 1));
    assert.ok(back.subarray(8192, 12288).every((x) => x === 2));
    assert.ok(back.subarray(16384).every((x) => x === 3));
    assert.ok(back.subarray(4096, 8192).every((x) => x === 0));
    a.close();
    b!.close();
    assert.equal(exports.openVolumes, 1);
    c!.close();
    c!.close();
    assert.equal(exports.openVolumes, 0);
  });
});

Deno.test("sheep NBD export: a VDI over NBD in process, read back through the volume as dog does", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("vol", 8 * MiB);
    const server = startNbdExport(
      { hostname: "127.0.0.1", port: 0 },
      (req, data, conn) => t.sheep.handle(req, data, conn),
      memoryLog(),
    );
    try {
      const c = await RawNbdClient.open(server.port);
      const info = await c.goOrInfo(Opt.INFO, "vol");
      assert.ok(!("error" in info));
      assert.equal(info.size, BigInt(8 * MiB));
      const missing = await c.goOrInfo(Opt.GO, "nosuch");
      assert.ok("error" in missing && missing.error === Rep.ERR_UNKNOWN);
      const go = await c.goOrInfo(Opt.GO, "vol");
      assert.ok(!("error" in go));
      assert.equal(go.flags & TxFlag.READ_ONLY, 0);
      const payload = new Uint8Array(3 * MiB).map((_, i) => (i * 7) & 0xff);
      const w = await c.call(Cmd.WRITE, 3 * MiB, payload.length, { payload });
      assert.equal(w.error, 0);
      assert.equal((await c.call(Cmd.FLUSH, 0, 0)).error, 0);
      assert.equal((await c.call(Cmd.READ, 8 * MiB - 1, 2)).error, Errno.EINVAL);
      const r = await c.call(Cmd.READ, 3 * MiB, payload.length);
      assert.deepEqual(r.data, payload);
      assert.equal((await c.call(Cmd.TRIM, 4 * MiB, 4 * MiB)).error, 0);
      c.close();
      const v = await VdiVolume.open(t.request, "vol");
      assert.equal(v.owner(1), 0, "the trimmed object is released");
      const back = await v.read(3 * MiB, MiB);
      assert.deepEqual(back, payload.subarray(0, MiB));
    } finally {
      await server.close(2000);
    }
  });
});

Deno.test("VdiExports on a locking cluster: a working VDI has one writer, released at close", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("vol", 8 * MiB);
    await t.snapshot("vol", vid, 8 * MiB, "snap");
    const exports = new VdiExports(t.request);
    const a = (await exports.open("vol"))!;
    assert.equal(a.multiConn, false);
    await assert.rejects(exports.open("vol"), NbdOpenRefused);
    await assert.rejects(exports.open("vol", { use: true }), /locked/);
    const info = (await exports.open("vol", { use: false }))!;
    assert.equal(info.multiConn, false);
    info.close();
    const snap = (await exports.open("vol:snap"))!;
    assert.ok(snap.readOnly);
    snap.close();
    a.close();
    await exports.settled();
    const b = (await exports.open("vol"))!;
    await b.write(0, new Uint8Array([5]));
    b.close();
    await exports.settled();
    assert.equal(exports.openVolumes, 0);
  }, { clusterFlags: ClusterFlag.USE_LOCK });
});

Deno.test("VdiExports without locking offers multi-conn and shares a working VDI", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("vol", 8 * MiB);
    const exports = new VdiExports(t.request);
    const a = (await exports.open("vol"))!;
    const b = (await exports.open("vol"))!;
    assert.equal(a.multiConn, true);
    a.close();
    b.close();
    await exports.settled();
  });
});
