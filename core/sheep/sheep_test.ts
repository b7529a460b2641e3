import assert from "node:assert/strict";
import { Sheep } from "./sheep.ts";
import { SoloDriver } from "./testdata/solo_driver.ts";
import { memoryLog } from "./log.ts";
import { memoryMetaFiles } from "./meta_files.ts";
import { PlainStore } from "../store/plain_store.ts";
import { makeNode } from "../proto/node.ts";
import { SheepServer } from "../net/server.ts";
import { SheepClient } from "../net/client.ts";
import { Flag, Op, Res, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { encodeFixedString } from "../proto/strings.ts";
import { vidToDataOid, vidToVdiOid } from "../hash/oid.ts";
import { decodeInodeHeader } from "../proto/inode.ts";

async function withSheep(fn: (c: SheepClient, s: Sheep) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sheep_test_" });
  const store = await PlainStore.open(dir, { nosync: true });
  let server: SheepServer | null = null;
  const sheep = new Sheep(
    {
      node: makeNode("127.0.0.1", 7000, { zone: 0 }),
      space: 1n << 40n,
      fixedVnodes: false,
      nosync: true,
    },
    {
      store,
      meta: memoryMetaFiles(),
      driver: new SoloDriver(),
      log: memoryLog(),
      now: () => Date.UTC(2026, 10, 21, 4, 19, 4),
      random: () => 0.5,
      exit: () => {},
      stopListening: () => server?.stopListening(),
    },
  );
  await sheep.load();
  await sheep.join();
  server = SheepServer.listen(
    { tcp: { hostname: "127.0.0.1", port: 0 } },
    (r, d, c) => sheep.handle(r, d, c),
  );
  const client = await SheepClient.connect({ host: "127.0.0.1", port: server.tcpPort! });
  try {
    await fn(client, sheep);
  } finally {
    client.close();
    await server.close(1000);
    await sheep.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function formatReq(copies: number): SdReq {
  const req = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, {
    flags: Flag.CMD_WRITE,
    dataLength: 6,
  });
  req.cluster.copies = copies;
  req.cluster.flags = 0x4;
  return req;
}

Deno.test("sheep serves format, VDI create, object write and read on one node", async () => {
  await withSheep(async (c, s) => {
    let r = await c.request(
      SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 }),
      encodeFixedString("test", 256),
    );
    assert.equal(r.rsp.result, Res.WAIT_FOR_FORMAT);
    r = await c.request(formatReq(1), new TextEncoder().encode("plain\0"));
    assert.equal(r.rsp.result, Res.SUCCESS);
    assert.equal(s.cinfo.epoch, 1);
    const nv = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
    nv.vdi.vdiSize = 100n << 20n;
    r = await c.request(nv, encodeFixedString("test", 256));
    assert.equal(r.rsp.result, Res.SUCCESS);
    assert.equal(r.rsp.vdi.vdiId, 0x7c2b25);
    const nv2 = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
    nv2.vdi.vdiSize = 100n << 20n;
    r = await c.request(nv2, encodeFixedString("test", 256));
    assert.equal(r.rsp.result, Res.VDI_EXIST);
    const rd = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4664 });
    rd.obj.oid = vidToVdiOid(0x7c2b25);
    r = await c.request(rd);
    assert.equal(r.rsp.result, Res.SUCCESS);
    assert.equal(decodeInodeHeader(r.data).name, "test");
    const wr = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: 5,
    });
    wr.obj.oid = vidToDataOid(0x7c2b25, 0);
    wr.obj.offset = 512;
    r = await c.request(wr, new TextEncoder().encode("hello"));
    assert.equal(r.rsp.result, Res.SUCCESS);
    const rd2 = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 517 });
    rd2.obj.oid = vidToDataOid(0x7c2b25, 0);
    r = await c.request(rd2);
    assert.equal(new TextDecoder().decode(r.data.subarray(512)), "hello");
    assert.equal(r.data[0], 0);
    const gi = SdReq.of(Op.GET_VDI_INFO, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 512 });
    r = await c.request(gi, encodeFixedString("test", 512));
    assert.equal(r.rsp.result, Res.SUCCESS);
    assert.equal(r.rsp.vdi.vdiId, 0x7c2b25);
  });
});
