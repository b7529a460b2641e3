import assert from "node:assert/strict";
import {
  decodeGoRequest,
  decodeOptionHeader,
  decodeRequest,
  encodeExportNameReply,
  encodeGoRequest,
  encodeGreeting,
  encodeInfoExport,
  encodeOptionHeader,
  encodeOptionReply,
  encodeRequest,
  encodeServerReplyData,
  encodeSimpleReply,
  IHAVEOPT,
  Info,
  Opt,
  Rep,
} from "./protocol.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("NBD greeting is NBDMAGIC, IHAVEOPT and the handshake flags, big-endian", () => {
  assert.equal(hex(encodeGreeting(3)), "4e42444d41474943" + "49484156454f5054" + "0003");
});

Deno.test("NBD option headers and replies have the protocol's layout", () => {
  const h = encodeOptionHeader(Opt.GO, 0x0102);
  assert.equal(hex(h), "49484156454f5054" + "00000007" + "00000102");
  assert.deepEqual(decodeOptionHeader(h), { magic: IHAVEOPT, option: Opt.GO, length: 0x102 });
  const r = encodeOptionReply(Opt.LIST, Rep.ERR_UNSUP, new Uint8Array([0xaa]));
  assert.equal(hex(r), "0003e889045565a9" + "00000003" + "80000001" + "00000001" + "aa");
  assert.equal(hex(encodeServerReplyData("ab", "c")), "00000002" + "6162" + "63");
  assert.equal(hex(encodeInfoExport(0x10000, 0x0123)), "0000" + "0000000000010000" + "0123");
  assert.equal(encodeExportNameReply(1, 2, false).length, 134);
  assert.equal(hex(encodeExportNameReply(1, 2, true)), "0000000000000001" + "0002");
});

Deno.test("NBD_OPT_GO data round-trips and malformed data is rejected", () => {
  const data = encodeGoRequest("vdi:snap", [Info.NAME, Info.BLOCK_SIZE]);
  assert.deepEqual(decodeGoRequest(data), {
    name: "vdi:snap",
    infos: [Info.NAME, Info.BLOCK_SIZE],
  });
  assert.deepEqual(decodeGoRequest(encodeGoRequest("")), { name: "", infos: [] });
  assert.equal(decodeGoRequest(new Uint8Array(5)), null, "too short");
  assert.equal(decodeGoRequest(data.subarray(0, data.length - 1)), null, "truncated info list");
  assert.equal(decodeGoRequest(new Uint8Array([...data, 0])), null, "trailing byte");
  const longName = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0]);
  assert.equal(decodeGoRequest(longName), null, "name longer than the data");
  const badUtf8 = new Uint8Array([0, 0, 0, 1, 0xff, 0, 0]);
  assert.equal(decodeGoRequest(badUtf8), null, "not UTF-8");
});

Deno.test("NBD requests and simple replies have the protocol's layout", () => {
  const req = encodeRequest(1, 0x1122334455667788n, 0x1000n, 512, 1);
  assert.equal(
    hex(req),
    "25609513" + "0001" + "0001" + "1122334455667788" + "0000000000001000" + "00000200",
  );
  const d = decodeRequest(req);
  assert.deepEqual(
    { ...d, handle: hex(d.handle) },
    {
      magic: 0x25609513,
      flags: 1,
      type: 1,
      handle: "1122334455667788",
      offset: 0x1000n,
      length: 512,
    },
  );
  const rep = encodeSimpleReply(22, d.handle, 2);
  assert.equal(hex(rep), "67446698" + "00000016" + "1122334455667788" + "0000");
});
