import assert from "node:assert/strict";
import { Flag, Op, Res, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "./constants.ts";
import { SdReq, SdRsp } from "./header.ts";

/** A 48-byte header with `bytes` placed at `off`, every other byte zero. */
function at(off: number, bytes: number[]): Uint8Array {
  const out = new Uint8Array(48);
  out.set(bytes, off);
  return out;
}

/** Each field: where it lives, a value, and that value's LE bytes written out by hand. */
interface FieldCase {
  view: string;
  field: string;
  off: number;
  value: number | bigint;
  bytes: number[];
}

const REQ_FIELDS: FieldCase[] = [
  { view: "", field: "protoVer", off: 0, value: 0x0a, bytes: [0x0a] },
  { view: "", field: "opcode", off: 1, value: 0xa4, bytes: [0xa4] },
  { view: "", field: "flags", off: 2, value: 0x0241, bytes: [0x41, 0x02] },
  { view: "", field: "epoch", off: 4, value: 0x01020304, bytes: [4, 3, 2, 1] },
  { view: "", field: "id", off: 8, value: 0xfedcba98, bytes: [0x98, 0xba, 0xdc, 0xfe] },
  { view: "", field: "dataLength", off: 12, value: 4198968, bytes: [0x38, 0x12, 0x40, 0x00] },
  {
    view: "obj",
    field: "oid",
    off: 16,
    value: 0x807c2b2500000000n,
    bytes: [0, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x80],
  },
  {
    view: "obj",
    field: "cowOid",
    off: 24,
    value: 0x007c2b250000000fn,
    bytes: [0x0f, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x00],
  },
  { view: "obj", field: "copies", off: 32, value: 3, bytes: [3] },
  { view: "obj", field: "copyPolicy", off: 33, value: 0x22, bytes: [0x22] },
  { view: "obj", field: "ecIndex", off: 34, value: 5, bytes: [5] },
  { view: "obj", field: "tgtEpoch", off: 36, value: 7, bytes: [7, 0, 0, 0] },
  { view: "obj", field: "offset", off: 40, value: 0x00401000, bytes: [0, 0x10, 0x40, 0] },
  {
    view: "vdi",
    field: "vdiSize",
    off: 16,
    value: 0x0000010000000000n,
    bytes: [0, 0, 0, 0, 0, 1, 0, 0],
  },
  { view: "vdi", field: "baseVdiId", off: 24, value: 0x7c2b25, bytes: [0x25, 0x2b, 0x7c, 0] },
  { view: "vdi", field: "copies", off: 28, value: 2, bytes: [2] },
  { view: "vdi", field: "copyPolicy", off: 29, value: 0x21, bytes: [0x21] },
  { view: "vdi", field: "storePolicy", off: 30, value: 1, bytes: [1] },
  { view: "vdi", field: "blockSizeShift", off: 31, value: 22, bytes: [22] },
  { view: "vdi", field: "snapid", off: 32, value: 0x10002, bytes: [2, 0, 1, 0] },
  { view: "vdi", field: "type", off: 36, value: 1, bytes: [1, 0, 0, 0] },
  {
    view: "cluster",
    field: "ctime",
    off: 24,
    value: 0x5f5e10003b9ac9ffn,
    bytes: [0xff, 0xc9, 0x9a, 0x3b, 0x00, 0x10, 0x5e, 0x5f],
  },
  { view: "cluster", field: "copies", off: 32, value: 3, bytes: [3] },
  { view: "cluster", field: "copyPolicy", off: 33, value: 0x42, bytes: [0x42] },
  { view: "cluster", field: "flags", off: 34, value: 0x0015, bytes: [0x15, 0] },
  { view: "cluster", field: "tag", off: 36, value: 0xdeadbeef, bytes: [0xef, 0xbe, 0xad, 0xde] },
  { view: "cluster", field: "nodesNr", off: 40, value: 6144, bytes: [0x00, 0x18, 0, 0] },
  { view: "cluster", field: "blockSizeShift", off: 44, value: 23, bytes: [23] },
  { view: "vdiState", field: "oldVid", off: 16, value: 0x7c2b25, bytes: [0x25, 0x2b, 0x7c, 0] },
  { view: "vdiState", field: "newVid", off: 20, value: 0x7c2b26, bytes: [0x26, 0x2b, 0x7c, 0] },
  { view: "vdiState", field: "copies", off: 24, value: 4, bytes: [4] },
  { view: "vdiState", field: "setBitmap", off: 25, value: 1, bytes: [1] },
  { view: "vdiState", field: "copyPolicy", off: 26, value: 0x12, bytes: [0x12] },
  { view: "vdiState", field: "blockSizeShift", off: 27, value: 20, bytes: [20] },
  {
    view: "ref",
    field: "oid",
    off: 16,
    value: 0x087c2b2500000000n,
    bytes: [0, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x08],
  },
  { view: "ref", field: "generation", off: 24, value: 2, bytes: [2, 0, 0, 0] },
  { view: "ref", field: "count", off: 28, value: 0xffffffff, bytes: [0xff, 0xff, 0xff, 0xff] },
  { view: "forw", field: "oid", off: 16, value: 1n, bytes: [1, 0, 0, 0, 0, 0, 0, 0] },
  { view: "forw", field: "port", off: 40, value: 7000, bytes: [0x58, 0x1b] },
  { view: "checkpoint", field: "get", off: 16, value: 1, bytes: [1, 0, 0, 0] },
  { view: "checkpoint", field: "tgtEpoch", off: 20, value: 9, bytes: [9, 0, 0, 0] },
  { view: "checkpoint", field: "vid", off: 24, value: 0xabcdef, bytes: [0xef, 0xcd, 0xab, 0] },
  { view: "coherence", field: "vid", off: 16, value: 0x123456, bytes: [0x56, 0x34, 0x12, 0] },
  { view: "coherence", field: "validate", off: 20, value: 1, bytes: [1, 0, 0, 0] },
];

const RSP_FIELDS: FieldCase[] = [
  { view: "", field: "protoVer", off: 0, value: 2, bytes: [2] },
  { view: "", field: "opcode", off: 1, value: 0x11, bytes: [0x11] },
  { view: "", field: "flags", off: 2, value: 0x0001, bytes: [1, 0] },
  { view: "", field: "epoch", off: 4, value: 12, bytes: [12, 0, 0, 0] },
  { view: "", field: "id", off: 8, value: 0x01000000, bytes: [0, 0, 0, 1] },
  { view: "", field: "dataLength", off: 12, value: 2097152, bytes: [0, 0, 0x20, 0] },
  { view: "", field: "result", off: 16, value: Res.NO_OBJ, bytes: [2, 0, 0, 0] },
  { view: "obj", field: "copies", off: 20, value: 3, bytes: [3] },
  {
    view: "obj",
    field: "offset",
    off: 24,
    value: 0x0102030405060708n,
    bytes: [8, 7, 6, 5, 4, 3, 2, 1],
  },
  { view: "vdi", field: "vdiId", off: 24, value: 0x7c2b25, bytes: [0x25, 0x2b, 0x7c, 0] },
  { view: "vdi", field: "attrId", off: 28, value: 0x89abcdef, bytes: [0xef, 0xcd, 0xab, 0x89] },
  { view: "vdi", field: "copies", off: 32, value: 3, bytes: [3] },
  { view: "vdi", field: "blockSizeShift", off: 33, value: 22, bytes: [22] },
  { view: "node", field: "nrNodes", off: 20, value: 5, bytes: [5, 0, 0, 0] },
  {
    view: "node",
    field: "storeSize",
    off: 32,
    value: 0x000000e8d4a51000n,
    bytes: [0x00, 0x10, 0xa5, 0xd4, 0xe8, 0, 0, 0],
  },
  {
    view: "node",
    field: "storeFree",
    off: 40,
    value: 0x0000001000000001n,
    bytes: [1, 0, 0, 0, 0x10, 0, 0, 0],
  },
  { view: "clusterDefault", field: "nrCopies", off: 20, value: 3, bytes: [3] },
  { view: "clusterDefault", field: "copyPolicy", off: 21, value: 0x22, bytes: [0x22] },
  { view: "clusterDefault", field: "blockSizeShift", off: 22, value: 22, bytes: [22] },
];

// deno-lint-ignore no-explicit-any
type Loose = Record<string, any>;

function target(h: SdReq | SdRsp, view: string): Loose {
  return (view === "" ? h : (h as unknown as Loose)[view]) as Loose;
}

function name(c: FieldCase): string {
  return c.view === "" ? c.field : `${c.view}.${c.field}`;
}

for (
  const [kind, cases, make] of [
    ["SdReq", REQ_FIELDS, (b?: Uint8Array) => new SdReq(b)],
    ["SdRsp", RSP_FIELDS, (b?: Uint8Array) => new SdRsp(b)],
  ] as const
) {
  for (const c of cases) {
    Deno.test(`${kind}.${name(c)} writes exactly bytes ${c.off}..${c.off + c.bytes.length - 1}`, () => {
      const h = make();
      target(h, c.view)[c.field] = c.value;
      assert.deepEqual(h.bytes, at(c.off, c.bytes));
    });
    Deno.test(`${kind}.${name(c)} reads its value from the bytes at ${c.off}`, () => {
      const h = make(at(c.off, c.bytes));
      assert.equal(target(h, c.view)[c.field], c.value);
    });
  }
}

Deno.test("SdReq.forw.addr is the 16 bytes at 24 and port follows at 40", () => {
  const req = new SdReq();
  const addr = new Uint8Array(16);
  addr.set([127, 0, 0, 1], 12);
  req.forw.addr = addr;
  req.forw.port = 7001;
  const exp = new Uint8Array(48);
  exp.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1, 0x59, 0x1b], 24);
  assert.deepEqual(req.bytes, exp);
  assert.deepEqual(new SdReq(exp.slice()).forw.addr, addr);
});

Deno.test("SdRsp.hash.digest is the 20 bytes at 24", () => {
  const rsp = new SdRsp();
  const digest = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
  rsp.hash.digest = digest;
  const exp = new Uint8Array(48);
  exp.set(digest, 24);
  assert.deepEqual(rsp.bytes, exp);
  assert.deepEqual(new SdRsp(exp.slice()).hash.digest, digest);
});

Deno.test("SdReq union views share the same bytes (obj.oid is vdi.vdiSize is ref.oid)", () => {
  const req = new SdReq();
  req.obj.oid = 0x1122334455667788n;
  assert.equal(req.vdi.vdiSize, 0x1122334455667788n);
  assert.equal(req.ref.oid, 0x1122334455667788n);
  assert.equal(req.forw.oid, 0x1122334455667788n);
  assert.equal(req.vdiState.oldVid, 0x55667788);
  assert.equal(req.vdiState.newVid, 0x11223344);
});

Deno.test("SdReq.obj reads tgt's header (u32 copies at 32, u32 rsvd at 36, u64 offset at 40)", () => {
  // tgt bs_sheepdog.c: struct { u64 oid; u64 cow_oid; u32 copies; u32 rsvd; u64 offset; }.
  // deno-fmt-ignore
  const bytes = new Uint8Array([
    0x01, 0x03, 0x01, 0x00, 0, 0, 0, 0, // proto_ver 1, WRITE_OBJ, flags WRITE, epoch 0
    0x2a, 0, 0, 0, 0x00, 0x02, 0, 0, // id 42, data_length 512
    0x05, 0, 0, 0, 0x25, 0x2b, 0x7c, 0, // oid 007c2b2500000005
    0, 0, 0, 0, 0, 0, 0, 0, // cow_oid 0
    0x03, 0, 0, 0, // copies = 3 as u32
    0, 0, 0, 0, // rsvd
    0x00, 0x02, 0x3f, 0x00, 0, 0, 0, 0, // offset = 0x3f0200 as u64
  ]);
  const req = new SdReq(bytes);
  assert.equal(req.protoVer, 1);
  assert.equal(req.opcode, Op.WRITE_OBJ);
  assert.equal(req.flags, Flag.CMD_WRITE);
  assert.equal(req.id, 42);
  assert.equal(req.dataLength, 512);
  assert.equal(req.obj.oid, 0x007c2b2500000005n);
  assert.equal(req.obj.cowOid, 0n);
  assert.equal(req.obj.copies, 3);
  assert.equal(req.obj.copyPolicy, 0);
  assert.equal(req.obj.ecIndex, 0);
  assert.equal(req.obj.tgtEpoch, 0);
  assert.equal(req.obj.offset, 0x3f0200);
});

Deno.test("SdReq.obj reads QEMU's header (u8 copies, u8 copy_policy, reserved[6], u64 offset at 40)", () => {
  // deno-fmt-ignore
  const bytes = new Uint8Array([
    0x02, 0x01, 0x07, 0x00, 0, 0, 0, 0, // proto_ver 2, CREATE_AND_WRITE_OBJ, WRITE|COW|CACHE
    0x07, 0, 0, 0, 0x00, 0x10, 0, 0, // id 7, data_length 4096
    0x09, 0, 0, 0, 0x26, 0x2b, 0x7c, 0, // oid 007c2b2600000009
    0x09, 0, 0, 0, 0x25, 0x2b, 0x7c, 0, // cow_oid 007c2b2500000009
    0x02, 0x22, 0, 0, 0, 0, 0, 0, // copies 2, copy_policy 0x22, reserved
    0x00, 0x00, 0x3c, 0x00, 0, 0, 0, 0, // offset 0x3c0000
  ]);
  const req = new SdReq(bytes);
  assert.equal(req.protoVer, SD_PROTO_VER);
  assert.equal(req.opcode, Op.CREATE_AND_WRITE_OBJ);
  assert.equal(req.flags, Flag.CMD_WRITE | Flag.CMD_COW | Flag.CMD_CACHE);
  assert.equal(req.obj.oid, 0x007c2b2600000009n);
  assert.equal(req.obj.cowOid, 0x007c2b2500000009n);
  assert.equal(req.obj.copies, 2);
  assert.equal(req.obj.copyPolicy, 0x22);
  assert.equal(req.obj.ecIndex, 0);
  assert.equal(req.obj.tgtEpoch, 0);
  assert.equal(req.obj.offset, 0x3c0000);
});

Deno.test("SdReq.obj.offset leaves bytes 44-47, the high half of old clients' u64 offset, alone", () => {
  const bytes = new Uint8Array(48);
  bytes.set([0xaa, 0xbb, 0xcc, 0xdd], 44);
  const req = new SdReq(bytes);
  req.obj.offset = 0xffffffff;
  assert.deepEqual([...req.bytes.subarray(40, 48)], [
    0xff,
    0xff,
    0xff,
    0xff,
    0xaa,
    0xbb,
    0xcc,
    0xdd,
  ]);
});

Deno.test("SdReq.of() sets proto_ver, opcode and the given common fields only", () => {
  const req = SdReq.of(Op.STAT_CLUSTER, SD_SHEEP_PROTO_VER, {
    flags: Flag.CMD_WRITE,
    epoch: 3,
    id: 0x0102,
    dataLength: 0x10000,
  });
  assert.deepEqual(
    req.bytes,
    at(0, [0x0a, 0x87, 0x01, 0x00, 3, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 1, 0]),
  );
  assert.deepEqual(SdReq.of(Op.READ_VDIS, 1).bytes, at(0, [0x01, 0x15]));
});

Deno.test("SdReq.clone() copies the bytes so the clone is independent", () => {
  const req = SdReq.of(Op.READ_OBJ, 2, { id: 5 });
  const copy = req.clone();
  copy.id = 6;
  copy.obj.oid = 9n;
  assert.equal(req.id, 5);
  assert.equal(req.obj.oid, 0n);
  assert.notEqual(copy.bytes.buffer, req.bytes.buffer);
});

Deno.test("SdReq works over a 48-byte window of a larger buffer", () => {
  const big = new Uint8Array(100).fill(0xee);
  const req = new SdReq(big.subarray(10, 58));
  req.obj.oid = 0n;
  req.opcode = Op.READ_PEER;
  assert.equal(big[11], Op.READ_PEER);
  assert.deepEqual([...big.subarray(26, 34)], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(big[9], 0xee);
  assert.equal(big[58], 0xee);
});

Deno.test("new SdReq() refuses a buffer that is not 48 bytes", () => {
  assert.throws(() => new SdReq(new Uint8Array(47)), /48 bytes/);
  assert.throws(() => new SdRsp(new Uint8Array(49)), /48 bytes/);
});

Deno.test("SdRsp.replyTo() echoes opcode and id, sets epoch, result, data_length, proto_ver 0", () => {
  const req = SdReq.of(Op.GET_VDI_INFO, 1, { id: 0xabcdef01, epoch: 0, flags: Flag.CMD_WRITE });
  req.vdi.snapid = 2;
  const rsp = SdRsp.replyTo(req, 9, Res.NO_TAG, 12);
  assert.deepEqual(
    rsp.bytes,
    at(0, [0, 0x14, 0, 0, 9, 0, 0, 0, 0x01, 0xef, 0xcd, 0xab, 12, 0, 0, 0, 0x0e, 0, 0, 0]),
  );
});

Deno.test("SdRsp of a LOCK_VDI reply carries vdi_id at 24, copies at 32, block_size_shift at 33", () => {
  const rsp = SdRsp.replyTo(SdReq.of(Op.LOCK_VDI, 1, { id: 3 }), 1, Res.SUCCESS);
  rsp.vdi.vdiId = 0x7c2b25;
  rsp.vdi.copies = 3;
  rsp.vdi.blockSizeShift = 22;
  // deno-fmt-ignore
  assert.deepEqual(
    rsp.bytes,
    new Uint8Array([
      0, 0x12, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, // common
      0, 0, 0, 0, 0, 0, 0, 0, // result SUCCESS, rsvd
      0x25, 0x2b, 0x7c, 0, 0, 0, 0, 0, // vdi_id, attr_id
      3, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]),
  );
});

Deno.test("SdReq setters wrap u32 fields modulo 2^32 and u64 fields modulo 2^64", () => {
  const req = new SdReq();
  req.epoch = -1;
  req.obj.oid = -1n;
  assert.equal(req.epoch, 0xffffffff);
  assert.equal(req.obj.oid, 0xffffffffffffffffn);
});
