import assert from "node:assert/strict";
import { SheepClient } from "../../core/net/client.ts";
import { Flag, Op, Res, SD_PROTO_VER } from "../../core/proto/constants.ts";
import { SdReq } from "../../core/proto/header.ts";
import { vidToDataOid } from "../../core/hash/oid.ts";
import { objectFileName } from "../../core/store/object_names.ts";
import { tempDir } from "../../tests/harness/mod.ts";
import { startFloorServer } from "./floor_server.ts";

Deno.test("floor server writes durably into the object file and reads it back", async () => {
  await using tmp = await tempDir("floor");
  const oid = vidToDataOid(0x7c2b, 3);
  const file = `${tmp.path}/${objectFileName(oid)}`;
  await Deno.writeFile(file, new Uint8Array(64 * 1024));
  const server = await startFloorServer(tmp.path);
  const client = await SheepClient.connect({ host: "127.0.0.1", port: server.port });
  try {
    const data = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    const w = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 4096 });
    w.obj.oid = oid;
    w.obj.offset = 8192;
    assert.equal((await client.request(w, data)).rsp.result, Res.SUCCESS);
    const onDisk = await Deno.readFile(file);
    assert.deepEqual(onDisk.subarray(8192, 8192 + 4096), data);
    assert.ok(onDisk.subarray(0, 8192).every((b) => b === 0));

    const r = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4096 });
    r.obj.oid = oid;
    r.obj.offset = 8192;
    const got = await client.request(r);
    assert.equal(got.rsp.result, Res.SUCCESS);
    assert.deepEqual(got.data, data);

    const missing = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4096 });
    missing.obj.oid = vidToDataOid(0x7c2b, 4);
    assert.equal((await client.request(missing)).rsp.result, Res.EIO);
  } finally {
    client.close();
    await server.stop();
  }
});

Deno.test("floor server with peers writes to every peer before it answers", async () => {
  await using a = await tempDir("floor-gw");
  await using b = await tempDir("floor-peer");
  const oid = vidToDataOid(0x51, 0);
  for (const d of [a, b]) {
    await Deno.writeFile(`${d.path}/${objectFileName(oid)}`, new Uint8Array(16 * 1024));
  }
  const peer = await startFloorServer(b.path);
  const gateway = await startFloorServer(a.path, [peer.port]);
  const client = await SheepClient.connect({ host: "127.0.0.1", port: gateway.port });
  try {
    const data = new Uint8Array(4096).fill(0xa5);
    const w = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 4096 });
    w.obj.oid = oid;
    w.obj.offset = 4096;
    assert.equal((await client.request(w, data)).rsp.result, Res.SUCCESS);
    for (const d of [a, b]) {
      const onDisk = await Deno.readFile(`${d.path}/${objectFileName(oid)}`);
      assert.deepEqual(onDisk.subarray(4096, 8192), data, d.path);
    }
    // The peer lacks this object: the gateway's write fails as a whole.
    await Deno.writeFile(
      `${a.path}/${objectFileName(vidToDataOid(0x51, 1))}`,
      new Uint8Array(8192),
    );
    const w2 = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 4096 });
    w2.obj.oid = vidToDataOid(0x51, 1);
    assert.equal((await client.request(w2, data)).rsp.result, Res.EIO);
  } finally {
    client.close();
    await gateway.stop();
    await peer.stop();
  }
});

Deno.test("floor server creates whole objects through the plain store, on every peer", async () => {
  await using a = await tempDir("floor-cgw");
  await using b = await tempDir("floor-cpeer");
  for (const d of [a, b]) await Deno.mkdir(`${d.path}/obj`);
  const peer = await startFloorServer(`${b.path}/obj`);
  const gateway = await startFloorServer(`${a.path}/obj`, [peer.port]);
  const client = await SheepClient.connect({ host: "127.0.0.1", port: gateway.port });
  try {
    const oid = vidToDataOid(0x52, 9);
    const data = new Uint8Array(4 << 20).map((_, i) => i % 251);
    const c = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: data.length,
    });
    c.obj.oid = oid;
    assert.equal((await client.request(c, data)).rsp.result, Res.SUCCESS);
    for (const d of [a, b]) {
      assert.deepEqual(await Deno.readFile(`${d.path}/obj/${objectFileName(oid)}`), data, d.path);
    }
    // A second create of the same object fails (the store's OID_EXIST), as a whole.
    assert.notEqual((await client.request(c, data)).rsp.result, Res.SUCCESS);
  } finally {
    client.close();
    await gateway.stop();
    await peer.stop();
  }
});
