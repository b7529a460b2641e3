import assert from "node:assert/strict";
import {
  MAX_DATA_OBJS,
  Res,
  SD_INODE_GREF_OFFSET,
  SD_INODE_HEADER_SIZE,
  SD_INODE_OLD_SIZE,
  SD_INODE_SIZE,
} from "./constants.ts";
import {
  dataObjectCount,
  decodeInodeHeader,
  emptyInodeHeader,
  encodeInodeHeader,
  Inode,
  type InodeHeader,
  isSnapshot,
} from "./inode.ts";
import { SdError } from "./sd_error.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

/** A snapshot of "test" (vid 0x7c2b25) with every header field set. */
const HEADER: InodeHeader = {
  name: "test",
  tag: "snap1",
  createTime: 0x655f1a2b1dcd6500n,
  snapCtime: 0x655f1b0000000001n,
  vmClockNsec: 0x0102030405060708n,
  vdiSize: 10n << 30n,
  vmStateSize: 0x1000n,
  copyPolicy: 0x22,
  storePolicy: 1,
  nrCopies: 6,
  blockSizeShift: 22,
  snapId: 3,
  vdiId: 0x7c2b25,
  parentVdiId: 0x7c2b24,
  btreeCounter: 0x0a0b0c0d,
};

/** HEADER's 4,664 bytes, set one spec offset at a time. */
function headerBytes(): Uint8Array {
  const b = new Uint8Array(SD_INODE_HEADER_SIZE);
  b.set([0x74, 0x65, 0x73, 0x74], 0); // name "test"
  b.set([0x73, 0x6e, 0x61, 0x70, 0x31], 256); // tag "snap1"
  b.set([0x00, 0x65, 0xcd, 0x1d, 0x2b, 0x1a, 0x5f, 0x65], 512); // create_time
  b.set([0x01, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x5f, 0x65], 520); // snap_ctime
  b.set([0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01], 528); // vm_clock_nsec
  b.set([0x00, 0x00, 0x00, 0x80, 0x02, 0x00, 0x00, 0x00], 536); // vdi_size 10 GiB
  b.set([0x00, 0x10, 0, 0, 0, 0, 0, 0], 544); // vm_state_size
  b[552] = 0x22; // copy_policy
  b[553] = 1; // store_policy
  b[554] = 6; // nr_copies
  b[555] = 22; // block_size_shift
  b.set([3, 0, 0, 0], 556); // snap_id
  b.set([0x25, 0x2b, 0x7c, 0x00], 560); // vdi_id
  b.set([0x24, 0x2b, 0x7c, 0x00], 564); // parent_vdi_id
  b.set([0x0d, 0x0c, 0x0b, 0x0a], 568); // btree_counter
  return b;
}

Deno.test("encodeInodeHeader() lays every field at its spec offset in 4,664 bytes", () => {
  const b = encodeInodeHeader(HEADER);
  assert.equal(b.length, 4664);
  assert.deepEqual(b, headerBytes());
});

Deno.test("decodeInodeHeader() reads every field from a hand-built header", () => {
  assert.deepEqual(decodeInodeHeader(headerBytes()), HEADER);
});

Deno.test("decodeInodeHeader() reads the 572-byte prefix that holds all fields", () => {
  assert.deepEqual(decodeInodeHeader(headerBytes().subarray(0, 572)), HEADER);
});

Deno.test("decodeInodeHeader() reads v1.0 lookup's 568 bytes with btree_counter 0", () => {
  assert.deepEqual(decodeInodeHeader(headerBytes().subarray(0, 568)), {
    ...HEADER,
    btreeCounter: 0,
  });
});

Deno.test("decodeInodeHeader() refuses fewer than 568 bytes with SdError(INVALID_PARMS)", () => {
  assert.throws(() => decodeInodeHeader(new Uint8Array(567)), invalidParms);
});

Deno.test("decodeInodeHeader() reads the old u16 copy_policy at 552 as copy_policy + store_policy", () => {
  const b = new Uint8Array(572);
  b.set([0x02, 0x01], 552); // 0.8's u16 copy_policy = 0x0102 (LE)
  const h = decodeInodeHeader(b);
  assert.equal(h.copyPolicy, 2);
  assert.equal(h.storePolicy, 1);
});

Deno.test("decodeInodeHeader() ignores what follows the NUL inside the name and tag fields", () => {
  const b = headerBytes();
  b.set([0x78, 0x79], 5); // bytes after "test\0"
  b.set([0x7a], 300);
  const h = decodeInodeHeader(b);
  assert.equal(h.name, "test");
  assert.equal(h.tag, "snap1");
});

Deno.test("decodeInodeHeader() reads a 256-byte name with no NUL (foreign writer) in full", () => {
  const b = new Uint8Array(572);
  b.fill(0x6e, 0, 256);
  assert.equal(decodeInodeHeader(b).name, "n".repeat(256));
  assert.equal(decodeInodeHeader(b).tag, "");
});

Deno.test("encodeInodeHeader() accepts 255-byte names and tags and refuses 256 (SdError)", () => {
  const b = encodeInodeHeader({ ...HEADER, name: "a".repeat(255), tag: "b".repeat(255) });
  assert.equal(b[254], 0x61);
  assert.equal(b[255], 0);
  assert.equal(b[510], 0x62);
  assert.equal(b[511], 0);
  assert.throws(() => encodeInodeHeader({ ...HEADER, name: "a".repeat(256) }), invalidParms);
  assert.throws(() => encodeInodeHeader({ ...HEADER, tag: "ü".repeat(128) }), invalidParms);
});

Deno.test("encodeInodeHeader() writes into out at 0, zeroes 572-4663 and leaves the rest", () => {
  const out = new Uint8Array(SD_INODE_HEADER_SIZE + 8).fill(0xcc);
  const view = encodeInodeHeader(HEADER, out);
  assert.equal(view.length, SD_INODE_HEADER_SIZE);
  assert.equal(view.buffer, out.buffer);
  assert.deepEqual(out.subarray(0, SD_INODE_HEADER_SIZE), headerBytes());
  assert.deepEqual([...out.subarray(SD_INODE_HEADER_SIZE)], new Array(8).fill(0xcc));
});

Deno.test("encodeInodeHeader() leaves out untouched when the name is too long", () => {
  const out = new Uint8Array(SD_INODE_HEADER_SIZE).fill(0xcc);
  assert.throws(() => encodeInodeHeader({ ...HEADER, name: "a".repeat(300) }, out), invalidParms);
  assert.ok(out.every((b) => b === 0xcc));
});

Deno.test("encodeInodeHeader() asserts on numbers out of their field's range", () => {
  assert.throws(() => encodeInodeHeader({ ...HEADER, nrCopies: 256 }), /u8/);
  assert.throws(() => encodeInodeHeader({ ...HEADER, vdiId: -1 }), /u32/);
  assert.throws(() => encodeInodeHeader({ ...HEADER, snapId: 2 ** 32 }), /u32/);
  assert.throws(() => encodeInodeHeader({ ...HEADER, vdiSize: 1n << 64n }), /u64/);
  assert.throws(() => encodeInodeHeader({ ...HEADER, snapCtime: -1n }), /u64/);
});

Deno.test("emptyInodeHeader() encodes as 4,664 zero bytes", () => {
  assert.deepEqual(encodeInodeHeader(emptyInodeHeader()), new Uint8Array(SD_INODE_HEADER_SIZE));
});

Deno.test("emptyInodeHeader() returns a fresh object each time", () => {
  const a = emptyInodeHeader();
  a.name = "x";
  assert.equal(emptyInodeHeader().name, "");
});

/** An inode with a few data_vdi_id and gref entries set. */
function sampleInode(): Inode {
  const inode = new Inode({ ...HEADER, storePolicy: 0 });
  inode.dataVdiId[0] = 0x7c2b25;
  inode.dataVdiId[1] = 0x7c2b24;
  inode.dataVdiId[MAX_DATA_OBJS - 1] = 0xffffff;
  inode.gref[0] = 1; // generation of index 0
  inode.gref[1] = -1; // count of index 0
  inode.gref[2 * (MAX_DATA_OBJS - 1) + 1] = 0x01020304;
  return inode;
}

Deno.test("Inode.encode() is 12,587,576 bytes with data_vdi_id at 4,664 and gref at 4,198,968", () => {
  const b = sampleInode().encode();
  assert.equal(b.length, 12_587_576);
  assert.equal(SD_INODE_SIZE, 12_587_576);
  assert.equal(SD_INODE_GREF_OFFSET, 4_198_968);
  assert.deepEqual(
    b.subarray(0, 556),
    headerBytes().subarray(0, 556).map((x, i) => i === 553 ? 0 : x),
  );
  assert.deepEqual([...b.subarray(4664, 4672)], [0x25, 0x2b, 0x7c, 0, 0x24, 0x2b, 0x7c, 0]);
  assert.deepEqual([...b.subarray(4_198_964, 4_198_968)], [0xff, 0xff, 0xff, 0]);
  assert.deepEqual([...b.subarray(4_198_968, 4_198_976)], [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  assert.deepEqual([...b.subarray(12_587_568)], [0, 0, 0, 0, 4, 3, 2, 1]);
  let nonZero = 0;
  for (let i = 4672; i < 4_198_964; i++) nonZero += b[i];
  assert.equal(nonZero, 0);
});

Deno.test("Inode.decode() round trips the full 12,587,576-byte object", () => {
  const inode = sampleInode();
  const back = Inode.decode(inode.encode());
  assert.deepEqual(back.header, inode.header);
  assert.deepEqual(back.dataVdiId, inode.dataVdiId);
  assert.deepEqual(back.gref, inode.gref);
});

Deno.test("Inode.decode() reads a 0.8-layout inode of 4,198,968 bytes with gref zero", () => {
  const full = sampleInode().encode();
  assert.equal(SD_INODE_OLD_SIZE, 4_198_968);
  const old = Inode.decode(full.subarray(0, 4_198_968));
  assert.equal(old.header.name, "test");
  assert.equal(old.dataVdiId[0], 0x7c2b25);
  assert.equal(old.dataVdiId[MAX_DATA_OBJS - 1], 0xffffff);
  assert.ok(old.gref.every((g) => g === 0));
});

Deno.test("Inode.decode() reads 4,198,976 bytes as the prefix: the extra 8 bytes are gref[0]", () => {
  const old = Inode.decode(sampleInode().encode().subarray(0, 4_198_976));
  assert.equal(old.gref[0], 1);
  assert.equal(old.gref[1], -1);
  assert.ok(old.gref.subarray(2).every((g) => g === 0));
});

Deno.test("Inode.decode() reads a header-only 4,664-byte inode with zero tables", () => {
  const inode = Inode.decode(headerBytes());
  assert.deepEqual(inode.header, HEADER);
  assert.ok(inode.dataVdiId.every((v) => v === 0));
  assert.ok(inode.gref.every((v) => v === 0));
});

Deno.test("Inode.decode() keeps the bytes present of an entry cut in the middle", () => {
  const b = new Uint8Array(SD_INODE_HEADER_SIZE + 6);
  b.set([0x01, 0x02, 0x03, 0x04, 0x05, 0x06], SD_INODE_HEADER_SIZE);
  const inode = Inode.decode(b);
  assert.equal(inode.dataVdiId[0], 0x04030201);
  assert.equal(inode.dataVdiId[1], 0x0605);
});

Deno.test("Inode.decode() refuses fewer than 4,664 or more than 12,587,576 bytes", () => {
  assert.throws(() => Inode.decode(new Uint8Array(4663)), invalidParms);
  assert.throws(() => Inode.decode(new Uint8Array(SD_INODE_SIZE + 1)), invalidParms);
});

Deno.test("Inode.decode() copies: changing the input afterwards does not change the inode", () => {
  const b = sampleInode().encode();
  const inode = Inode.decode(b);
  b[4664] = 0;
  b[SD_INODE_GREF_OFFSET] = 9;
  assert.equal(inode.dataVdiId[0], 0x7c2b25);
  assert.equal(inode.gref[0], 1);
});

Deno.test("Inode.empty() encodes as 12,587,576 zero bytes", () => {
  const b = Inode.empty().encode();
  assert.equal(b.length, SD_INODE_SIZE);
  assert.ok(b.every((x) => x === 0));
});

Deno.test("new Inode() asserts on tables of the wrong length", () => {
  assert.throws(() => new Inode(emptyInodeHeader(), new Uint32Array(10)), /2\^20/);
  assert.throws(
    () => new Inode(emptyInodeHeader(), new Uint32Array(MAX_DATA_OBJS), new Int32Array(5)),
    /2\^20/,
  );
});

Deno.test("Inode.readRange() equals the same bytes of encode() for ranges across every part", () => {
  const inode = sampleInode();
  const full = inode.encode();
  const ranges: [number, number][] = [
    [0, 0],
    [0, 4664],
    [0, 4_198_968], // what QEMU and tgt read
    [500, 100],
    [4600, 100], // header into data_vdi_id
    [4664, 8],
    [4_198_960, 16], // data_vdi_id into gref
    [4000, 4_198_976], // all three parts
    [12_587_568, 8], // last gref
    [12_587_576, 0],
    [0, 12_587_576],
  ];
  for (const [off, len] of ranges) {
    assert.deepEqual(inode.readRange(off, len), full.subarray(off, off + len), `${off}+${len}`);
  }
});

Deno.test("Inode.readRange() refuses a range past the end with SdError(INVALID_PARMS)", () => {
  const inode = Inode.empty();
  assert.throws(() => inode.readRange(12_587_576, 1), invalidParms);
  assert.throws(() => inode.readRange(0, 12_587_577), invalidParms);
  assert.throws(() => inode.readRange(-1, 1), /bad inode range/);
});

Deno.test("Inode.readRange() returns a copy, not a view of the tables", () => {
  const inode = sampleInode();
  const r = inode.readRange(4664, 4);
  r[0] = 0;
  assert.equal(inode.dataVdiId[0], 0x7c2b25);
});

Deno.test("Inode.writeRange() applies QEMU's data_vdi_id update at 4664 + 4·idx", () => {
  const inode = Inode.empty();
  // After creating objects 5..7 QEMU writes data_vdi_id[5..7] in one request.
  inode.writeRange(
    4664 + 4 * 5,
    new Uint8Array([0x26, 0x2b, 0x7c, 0, 0x26, 0x2b, 0x7c, 0, 0x26, 0x2b, 0x7c, 0]),
  );
  assert.deepEqual([...inode.dataVdiId.subarray(4, 9)], [0, 0x7c2b26, 0x7c2b26, 0x7c2b26, 0]);
});

Deno.test("Inode.writeRange() applies a header write (QEMU savevm sets tag and vm_state_size)", () => {
  const inode = sampleInode();
  const before = inode.header;
  const h = encodeInodeHeader({ ...inode.header, tag: "savevm-1", vmStateSize: 1n << 30n });
  inode.writeRange(0, h);
  assert.equal(inode.header, before, "the header object is updated in place");
  assert.equal(inode.header.tag, "savevm-1");
  assert.equal(inode.header.vmStateSize, 1n << 30n);
  assert.equal(inode.header.name, "test");
  assert.equal(inode.dataVdiId[0], 0x7c2b25);
});

Deno.test("Inode.writeRange() applies a write to a single header field", () => {
  const inode = sampleInode();
  inode.writeRange(520, new Uint8Array(8)); // clear snap_ctime
  assert.equal(inode.header.snapCtime, 0n);
  assert.ok(!isSnapshot(inode.header));
  inode.writeRange(554, new Uint8Array([2])); // nr_copies
  assert.equal(inode.header.nrCopies, 2);
  inode.writeRange(0, new Uint8Array([0x54])); // first name byte: "Test"
  assert.equal(inode.header.name, "Test");
});

Deno.test("Inode.writeRange() applies a write spanning header, data_vdi_id and gref", () => {
  const inode = Inode.empty();
  const data = new Uint8Array(SD_INODE_OLD_SIZE + 8 - 556);
  data.set([7, 0, 0, 0], 0); // snap_id at 556
  data.set([0x25, 0x2b, 0x7c, 0], 4664 - 556); // data_vdi_id[0]
  data.set([1, 0, 0, 0, 2, 0, 0, 0], SD_INODE_OLD_SIZE - 556); // gref[0]
  inode.writeRange(556, data);
  assert.equal(inode.header.snapId, 7);
  assert.equal(inode.dataVdiId[0], 0x7c2b25);
  assert.deepEqual([...inode.gref.subarray(0, 3)], [1, 2, 0]);
  assert.deepEqual(inode.readRange(556, data.length), data);
});

Deno.test("Inode.writeRange() applies gref writes, including negative counts", () => {
  const inode = Inode.empty();
  inode.writeRange(
    SD_INODE_GREF_OFFSET + 8 * 10,
    new Uint8Array([3, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]),
  );
  assert.equal(inode.gref[20], 3);
  assert.equal(inode.gref[21], -2);
});

Deno.test("Inode.writeRange() drops writes to the unused header bytes 572-4663", () => {
  const inode = sampleInode();
  inode.writeRange(572, new Uint8Array(4092).fill(0xaa));
  assert.ok(inode.readRange(572, 4092).every((b) => b === 0));
  assert.deepEqual(inode.header, { ...HEADER, storePolicy: 0 });
});

Deno.test("Inode.writeRange() refuses a write past the end and changes nothing", () => {
  const inode = sampleInode();
  assert.throws(() => inode.writeRange(SD_INODE_SIZE - 4, new Uint8Array(8).fill(1)), invalidParms);
  assert.equal(inode.gref[2 * MAX_DATA_OBJS - 1], 0x01020304);
});

Deno.test("Inode.writeRange() refuses a write leaving a 256-byte name without NUL, changing nothing", () => {
  const inode = sampleInode();
  const data = new Uint8Array(4664 + 4).fill(0x41);
  assert.throws(() => inode.writeRange(0, data), invalidParms);
  assert.equal(inode.header.name, "test");
  assert.equal(inode.dataVdiId[0], 0x7c2b25);
});

Deno.test("dataObjectCount() is ceil(vdi_size / 2^block_size_shift)", () => {
  assert.equal(dataObjectCount(0n, 22), 0);
  assert.equal(dataObjectCount(1n, 22), 1);
  assert.equal(dataObjectCount(4n << 20n, 22), 1);
  assert.equal(dataObjectCount((4n << 20n) + 1n, 22), 2);
  assert.equal(dataObjectCount(10n << 30n, 22), 2560);
  assert.equal(dataObjectCount(4n << 40n, 22), MAX_DATA_OBJS);
  assert.equal(dataObjectCount(1n << 30n, 20), 1024);
  assert.equal(dataObjectCount(16n << 50n, 22), 2 ** 32); // 16 PiB hyper volume
  assert.equal(dataObjectCount(5n, 0), 5);
});

Deno.test("isSnapshot() is true exactly when snap_ctime is non-zero", () => {
  assert.ok(isSnapshot(HEADER));
  assert.ok(!isSnapshot({ ...HEADER, snapCtime: 0n }));
  assert.ok(!isSnapshot(emptyInodeHeader()));
});
