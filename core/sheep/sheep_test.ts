import assert from "node:assert/strict";
import { withTestSheep } from "./testdata/in_process_sheep.ts";
import { Flag, Op, Res, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { encodeFixedString } from "../proto/strings.ts";
import { vidToDataOid, vidToVdiOid } from "../hash/oid.ts";
import { decodeInodeHeader } from "../proto/inode.ts";

const enc = new TextEncoder();

Deno.test("sheep creates a VDI once and refuses the same name again with VDI_EXIST", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("test", 100 << 20);
    assert.equal(vid, 0x7c2b25);
    const again = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
    again.vdi.vdiSize = 100n << 20n;
    const r = await t.request(again, encodeFixedString("test", 256));
    assert.equal(r.rsp.result, Res.VDI_EXIST);
    const rd = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 4664 });
    rd.obj.oid = vidToVdiOid(vid);
    assert.equal(decodeInodeHeader((await t.request(rd)).data).name, "test");
  });
});

Deno.test("sheep creates a data object from a partial write, zeros elsewhere", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("test", 100 << 20);
    const wr = SdReq.of(Op.CREATE_AND_WRITE_OBJ, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: 5,
    });
    wr.obj.oid = vidToDataOid(vid, 0);
    wr.obj.offset = 512;
    assert.equal((await t.request(wr, enc.encode("hello"))).rsp.result, Res.SUCCESS);
    const rd = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: 517 });
    rd.obj.oid = vidToDataOid(vid, 0);
    const r = await t.request(rd);
    assert.equal(new TextDecoder().decode(r.data.subarray(512)), "hello");
    assert.ok(r.data.subarray(0, 512).every((b) => b === 0));
  });
});

Deno.test("sheep looks a VDI up by name with GET_VDI_INFO and says NO_VDI for another", async () => {
  await withTestSheep(async (t) => {
    const vid = await t.createVdi("test", 1 << 20);
    const gi = SdReq.of(Op.GET_VDI_INFO, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 512 });
    let r = await t.request(gi, encodeFixedString("test", 512));
    assert.equal(r.rsp.result, Res.SUCCESS);
    assert.equal(r.rsp.vdi.vdiId, vid);
    const miss = SdReq.of(Op.GET_VDI_INFO, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: 512,
    });
    r = await t.request(miss, encodeFixedString("nosuch", 512));
    assert.equal(r.rsp.result, Res.NO_VDI);
  });
});

Deno.test("sheep answers a second MAKE_FS by wiping every VDI", async () => {
  await withTestSheep(async (t) => {
    await t.createVdi("test", 1 << 20);
    const fmt = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 6 });
    fmt.cluster.copies = 1;
    fmt.cluster.flags = 0x4;
    assert.equal((await t.request(fmt, enc.encode("plain\0"))).rsp.result, Res.SUCCESS);
    assert.equal(t.sheep.vdis.inUse.popcount, 0);
    assert.equal(t.sheep.cinfo.epoch, 1);
  });
});
