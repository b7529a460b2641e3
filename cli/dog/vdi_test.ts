/**
 * Unit tests of `dog vdi …` against an in-process fake cluster (not the real daemon).
 */
import assert from "node:assert/strict";
import { Flag, Op, SD_INODE_HEADER_SIZE } from "../../core/proto/constants.ts";
import { vidOfName, vidToDataOid, vidToVdiOid } from "../../core/hash/oid.ts";
import type { FakeCluster } from "./fake_sheep.ts";
import { runDogCaptured, startFake } from "./test_harness.ts";
import { pieces } from "./vdi.ts";

const MiB = 1024 * 1024;
const TEST = vidOfName("test");

async function withCluster(copies: number, f: (fake: FakeCluster) => Promise<void>) {
  const fake = startFake(3);
  try {
    await runDogCaptured(["cluster", "format", "-c", String(copies)], { fake });
    fake.seen.length = 0;
    await f(fake);
  } finally {
    await fake.stop();
  }
}

function u32At(bytes: Uint8Array, off = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset + off, 4).getUint32(0, true);
}

Deno.test("pieces() cuts a range at object boundaries", () => {
  assert.deepEqual([...pieces(4n * BigInt(MiB) - 3n, 6n, 4 * MiB)], [
    { idx: 0, off: 4 * MiB - 3, len: 3 },
    { idx: 1, off: 0, len: 3 },
  ]);
  assert.deepEqual([...pieces(0n, 8n * BigInt(MiB), 4 * MiB)], [
    { idx: 0, off: 0, len: 4 * MiB },
    { idx: 1, off: 0, len: 4 * MiB },
  ]);
  assert.deepEqual([...pieces(5n, 0n, 4 * MiB)], []);
});

Deno.test("vdi create rejects a bad size with v1.0's lines, the usage and exit 64", async () => {
  await withCluster(2, async (fake) => {
    const run = await runDogCaptured(["vdi", "create", "x", "10MB"], { fake });
    assert.ok(run.stderr.startsWith(
      "Invalid size '10MB'\nYou may use k, M, G, T or P suffixes for kilobytes, megabytes, " +
        "gigabytes, terabytes and petabytes.\nUsage: dog vdi create ",
    ));
    assert.equal(run.code, 64);
    const none = await runDogCaptured(["vdi", "create", "x"], { fake });
    assert.ok(none.stderr.startsWith("Please specify the VDI size\nUsage: "));
    assert.equal(none.code, 64);
  });
});

Deno.test("vdi create limits a plain VDI to 2^20 objects of the chosen size", async () => {
  await withCluster(2, async (fake) => {
    const big = await runDogCaptured(["vdi", "create", "x", "5T"], { fake });
    assert.ok(big.stderr.startsWith(
      "VDI size is larger than 4.0 TB bytes, please use '-y' to create a hyper volume with size " +
        "up to 16 PB bytes\n",
    ));
    assert.equal(big.code, 64);
    const ok = await runDogCaptured(["vdi", "create", "-z", "23", "x", "5T"], { fake });
    assert.equal(ok.code, 0);
    const req = fake.seen.find((s) => s.opcode === Op.NEW_VDI)!;
    assert.equal(req.req.vdi.blockSizeShift, 23);
    assert.equal(req.req.vdi.vdiSize, 5n << 40n);
  });
});

Deno.test("vdi create refuses more copies than nodes", async () => {
  await withCluster(2, async (fake) => {
    const run = await runDogCaptured(["vdi", "create", "-c", "4", "x", "1M"], { fake });
    assert.ok(run.stderr.startsWith("There are not enough nodes(3) to hold the copies(4)\n"));
    assert.equal(run.code, 64);
    const ec = await runDogCaptured(["vdi", "create", "-c", "2:1", "y", "1M"], { fake });
    assert.equal(ec.code, 0);
    const req = fake.seen.find((s) => s.opcode === Op.NEW_VDI)!;
    assert.equal(req.req.vdi.copies, 3);
    assert.equal(req.req.vdi.copyPolicy, 0x11);
    assert.equal(req.req.protoVer, 0x02);
  });
});

Deno.test("vdi create -P creates every object and sets its inode entry", async () => {
  await withCluster(2, async (fake) => {
    const run = await runDogCaptured(["vdi", "create", "-P", "small", "10M"], { fake });
    assert.equal(run.code, 0);
    const vid = vidOfName("small");
    const creates = fake.seen.filter((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ);
    assert.deepEqual(creates.map((s) => s.req.obj.oid), [0, 1, 2].map((i) => vidToDataOid(vid, i)));
    assert.ok(creates.every((s) => s.req.dataLength === 0 && s.req.obj.copies === 2));
    const entries = fake.seen.filter((s) =>
      s.opcode === Op.WRITE_OBJ && s.req.obj.oid === vidToVdiOid(vid)
    );
    assert.deepEqual(entries.map((s) => s.req.obj.offset), [0, 1, 2].map((i) => 4664 + 4 * i));
    assert.ok(entries.every((s) => u32At(s.data) === vid));
  });
});

Deno.test("vdi write and read handle unaligned ranges across objects and holes", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "12M"], { fake });
    const off = String(4 * MiB - 3);
    const w = await runDogCaptured(["vdi", "write", "test", off, "6"], {
      fake,
      stdin: "abcdefXYZ",
    });
    assert.equal(w.code, 0);
    const creates = fake.seen.filter((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ);
    assert.deepEqual(
      creates.map((s) => [s.req.obj.oid, s.req.obj.offset, new TextDecoder().decode(s.data)]),
      [[vidToDataOid(TEST, 0), 4 * MiB - 3, "abc"], [vidToDataOid(TEST, 1), 0, "def"]],
    );
    const r = await runDogCaptured(["vdi", "read", "test", String(4 * MiB - 5), "10"], { fake });
    assert.deepEqual(
      [...r.stdoutBytes],
      [0, 0, ..."abcdef"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)).concat([0, 0]),
    );
    const hole = await runDogCaptured(["vdi", "read", "test", "9M", "1K"], { fake });
    assert.deepEqual(hole.stdoutBytes, new Uint8Array(1024));
  });
});

Deno.test("vdi write stops at the end of stdin and at the end of the VDI", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "4M"], { fake });
    const w = await runDogCaptured(["vdi", "write", "test", String(4 * MiB - 2)], {
      fake,
      stdin: "12345",
    });
    assert.equal(w.code, 0);
    const data = fake.readObj(vidToDataOid(TEST, 0), 4 * MiB - 2, 2);
    assert.equal(new TextDecoder().decode(data), "12");
    assert.equal(fake.seen.filter((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ).length, 1);
    const beyond = await runDogCaptured(["vdi", "write", "test", "5M"], { fake, stdin: "x" });
    assert.equal(beyond.stderr, "Write offset is beyond the end of the VDI\n");
    assert.equal(beyond.code, 1);
  });
});

Deno.test("vdi write copies on write from the parent and then writes in place", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "8M"], { fake });
    await runDogCaptured(["vdi", "write", "test"], { fake, stdin: "hello\n" });
    await runDogCaptured(["vdi", "snapshot", "-s", "s1", "test"], { fake });
    const child = TEST + 1;
    fake.seen.length = 0;
    await runDogCaptured(["vdi", "write", "test", "1"], { fake, stdin: "EL" });
    const create = fake.seen.find((s) => s.opcode === Op.CREATE_AND_WRITE_OBJ)!;
    assert.equal(create.req.obj.oid, vidToDataOid(child, 0));
    assert.equal(create.req.obj.cowOid, vidToDataOid(TEST, 0));
    assert.ok(create.req.flags & Flag.CMD_COW);
    assert.equal(create.req.obj.offset, 1);
    const entry = fake.seen.find((s) =>
      s.opcode === Op.WRITE_OBJ && s.req.obj.oid === vidToVdiOid(child)
    )!;
    assert.equal(entry.req.obj.offset, SD_INODE_HEADER_SIZE);
    assert.equal(u32At(entry.data), child);
    fake.seen.length = 0;
    await runDogCaptured(["vdi", "write", "test", "3"], { fake, stdin: "L" });
    const writes = fake.seen.filter((s) =>
      s.opcode === Op.WRITE_OBJ || s.opcode === Op.CREATE_AND_WRITE_OBJ
    );
    assert.deepEqual(writes.map((s) => [s.opcode, s.req.obj.oid]), [
      [Op.WRITE_OBJ, vidToDataOid(child, 0)],
    ]);
    const now = await runDogCaptured(["vdi", "read", "test", "0", "6"], { fake });
    assert.equal(now.stdout, "hELLo\n");
    const old = await runDogCaptured(["vdi", "read", "-s", "s1", "test", "0", "6"], { fake });
    assert.equal(old.stdout, "hello\n");
  });
});

Deno.test("vdi read refuses an offset past the end", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "1M"], { fake });
    const run = await runDogCaptured(["vdi", "read", "test", "2M"], { fake });
    assert.equal(run.stderr, "Read offset is beyond the end of the VDI\n");
    assert.equal(run.code, 1);
  });
});

Deno.test("vdi delete releases data objects in batches before DEL_VDI", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "-P", "test", "12M"], { fake });
    fake.seen.length = 0;
    const run = await runDogCaptured(["vdi", "delete", "-B", "2", "test"], { fake });
    assert.equal(run.code, 0);
    const writes = fake.seen.filter((s) => s.opcode === Op.WRITE_OBJ);
    assert.deepEqual(
      writes.map((
        s,
      ) => [s.req.obj.oid, s.req.obj.offset, s.data.length, s.data.every((b) => b === 0)]),
      [[vidToVdiOid(TEST), 4664, 8, true], [vidToVdiOid(TEST), 4672, 4, true]],
    );
    const del = fake.seen.findIndex((s) => s.opcode === Op.DEL_VDI);
    assert.ok(del > fake.seen.indexOf(writes[1]));
    assert.equal(fake.seen[del].data.length, 512);
    assert.equal((await runDogCaptured(["vdi", "list", "-r"], { fake })).stdout, "");
  });
});

Deno.test("vdi delete of a missing VDI exits 5", async () => {
  await withCluster(2, async (fake) => {
    const run = await runDogCaptured(["vdi", "delete", "nosuch"], { fake });
    assert.equal(
      run.stderr,
      "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found\n",
    );
    assert.equal(run.code, 5);
    await runDogCaptured(["vdi", "create", "test", "1M"], { fake });
    const tag = await runDogCaptured(["vdi", "delete", "-s", "nosnap", "test"], { fake });
    assert.equal(
      tag.stderr,
      "Failed to open VDI test (snapshot id: 0 snapshot tag: nosnap): Failed to find requested tag\n",
    );
    assert.equal(tag.code, 5);
  });
});

Deno.test("vdi resize grows the header size and refuses to shrink", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "100M"], { fake });
    assert.equal((await runDogCaptured(["vdi", "resize", "test", "1G"], { fake })).code, 0);
    assert.equal(fake.header(TEST).vdiSize, 1n << 30n);
    const shrink = await runDogCaptured(["vdi", "resize", "test", "1M"], { fake });
    assert.ok(shrink.stderr.startsWith("Shrinking VDIs is not implemented\nUsage: dog vdi resize"));
    assert.equal(shrink.code, 64);
    const huge = await runDogCaptured(["vdi", "resize", "test", "5T"], { fake });
    assert.ok(huge.stderr.startsWith(
      "New VDI size is too large. This volume's max size is 4398046511104\n",
    ));
  });
});

Deno.test("vdi setattr -x, -d and a value from stdin", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "1M"], { fake });
    assert.equal(
      (await runDogCaptured(["vdi", "setattr", "test", "k"], { fake, stdin: "a\0b" })).code,
      0,
    );
    const got = await runDogCaptured(["vdi", "getattr", "test", "k"], { fake });
    assert.deepEqual([...got.stdoutBytes], [0x61, 0, 0x62]);
    const excl = await runDogCaptured(["vdi", "setattr", "-x", "test", "k", "v"], { fake });
    assert.equal(excl.stderr, "The attribute 'k' already exists\n");
    assert.equal(excl.code, 3);
    assert.equal((await runDogCaptured(["vdi", "setattr", "test", "k", "new"], { fake })).code, 0);
    assert.equal((await runDogCaptured(["vdi", "getattr", "test", "k"], { fake })).stdout, "new");
    assert.equal((await runDogCaptured(["vdi", "setattr", "-d", "test", "k"], { fake })).code, 0);
    const gone = await runDogCaptured(["vdi", "getattr", "test", "k"], { fake });
    assert.equal(gone.stderr, "Attribute 'k' not found\n");
    assert.equal(gone.code, 5);
    const novdi = await runDogCaptured(["vdi", "getattr", "nosuch", "k"], { fake });
    assert.equal(novdi.stderr, "VDI not found\n");
    assert.equal(novdi.code, 5);
  });
});

Deno.test("vdi list shows one VDI by name and has a JSON form", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "100M"], { fake });
    await runDogCaptured(["vdi", "create", "-P", "small", "8M"], { fake });
    const one = await runDogCaptured(["vdi", "list", "-r", "small"], { fake });
    assert.equal(one.stdout.split("\n").length, 2);
    assert.ok(one.stdout.startsWith("= small 0 8388608 8388608 0 "));
    const json = JSON.parse((await runDogCaptured(["vdi", "list", "--json"], { fake })).stdout);
    assert.deepEqual(
      json.map((e: { name: string; vid: string; used: number }) => [e.name, e.vid, e.used]),
      [
        ["test", "7c2b25", 0],
        ["small", "98998c", 8388608],
      ],
    );
  });
});

Deno.test("vdi object location of the inode and of an unallocated index", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "100M"], { fake });
    const inode = await runDogCaptured(["vdi", "object", "location", "test"], { fake });
    assert.ok(inode.stdout.startsWith(
      "Looking for the inode object 807c2b2500000000 (vid 0x7c2b25, 2 copies) with 3 nodes\n\n",
    ));
    assert.equal(inode.stdout.split("has the object").length - 1, 2);
    const hole = await runDogCaptured(["vdi", "object", "location", "-i", "3", "test"], { fake });
    assert.equal(hole.stdout, "The inode object 0x7c2b25 idx 3 is not allocated\n");
  });
});

Deno.test("vdi object map -i and dump-inode", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "-P", "test", "8M"], { fake });
    const map = await runDogCaptured(["vdi", "object", "map", "-i", "1", "test"], { fake });
    assert.equal(map.stdout, "Index       VID\n00000001   7c2b25\n");
    const dump = await runDogCaptured(["vdi", "object", "dump-inode", "test"], { fake });
    assert.ok(dump.stdout.startsWith("name: test\ntag: \ncreate_time: 2026-11-21 04:19:04 ("));
    assert.ok(dump.stdout.includes("\nvdi_size: 8388608\n"));
    assert.ok(dump.stdout.includes("\nvdi_id: 7c2b25\nparent_vdi_id: 0\n"));
  });
});

Deno.test("vdi clone -n copies every object of the snapshot", async () => {
  await withCluster(2, async (fake) => {
    await runDogCaptured(["vdi", "create", "test", "12M"], { fake });
    await runDogCaptured(["vdi", "write", "test", "4M"], { fake, stdin: "data" });
    await runDogCaptured(["vdi", "snapshot", "-s", "s1", "test"], { fake });
    const run = await runDogCaptured(["vdi", "clone", "-n", "-s", "s1", "test", "cl"], { fake });
    assert.equal(run.code, 0);
    const cl = vidOfName("cl");
    assert.equal(fake.header(cl).parentVdiId, 0);
    assert.deepEqual([...fake.entries(cl, 3)], [0, cl, 0]);
    const read = await runDogCaptured(["vdi", "read", "cl", "4M", "4"], { fake });
    assert.equal(read.stdout, "data");
    const noSnap = await runDogCaptured(["vdi", "clone", "test", "c2"], { fake });
    assert.ok(noSnap.stderr.startsWith(
      "Only snapshot VDIs can be cloned\nPlease specify the '-s' option\nUsage: ",
    ));
    assert.equal(noSnap.code, 64);
  });
});
