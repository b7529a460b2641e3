/**
 * The NBD export of `sheep --nbd` with real NBD clients nobody here wrote (issue 7): qemu-img,
 * qemu-io, nbdinfo and nbdcopy against a sheep process. A 64 MiB random image goes in through
 * qemu-img and nbdcopy and comes back identical through qemu-img, nbdcopy and `dog vdi read`;
 * and through tgt's sheepdog backing store over iSCSI; qemu-io reads, writes, discards, zeroes and
 * flushes; snapshots are read-only exports; bad input
 * gets the right NBD error while the server keeps serving; a flushed write survives SIGKILL of
 * every sheep; and fio verifies random writes through nbdfuse.
 *
 * qemu-img, qemu-io, nbdinfo, nbdcopy and tgt are required (`.ci/run` installs them): without them
 * the test fails with a message saying what to install.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  freePort,
  run,
  runDogOk,
  type SheepProcess,
  spawnManaged,
  startCluster,
  startSheep,
  startTgt,
  tempDir,
  waitUntil,
} from "./harness/mod.ts";
import { RawNbdClient } from "../core/nbd/testdata/raw_nbd_client.ts";
import { Cmd, Errno, Opt, Rep, TxFlag } from "../core/nbd/protocol.ts";
import { requireTools } from "./harness/tools.ts";
import { assertSameBytes, randomBytes } from "./harness/proto.ts";

const MiB = 1024 * 1024;
const VDI_SIZE = 128 * MiB;
const IMAGE_SIZE = 64 * MiB;
const TOOL_DEADLINE_MS = 60_000;

/** The tools this test drives, with the Debian package that ships each. */
const TOOLS: [string, string][] = [
  ["qemu-img", "qemu-utils"],
  ["qemu-io", "qemu-utils"],
  ["nbdinfo", "libnbd-bin"],
  ["nbdcopy", "libnbd-bin"],
  ["tgtd", "tgt"],
  ["tgtadm", "tgt"],
];

function assertZeros(b: Uint8Array, what: string): void {
  const nz = b.findIndex((x) => x !== 0);
  assert.equal(nz, -1, `${what}: byte ${nz} is not zero`);
}

async function tool(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { deadlineMs: TOOL_DEADLINE_MS, cwd });
  assert.ok(
    r.success,
    `${cmd} ${args.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}\n` +
      `--- stderr ---\n${r.stderrText}--- stdout ---\n${r.stdoutText.slice(0, 2000)}`,
  );
  return r.stdoutText;
}

async function dogRead(sheep: SheepProcess, vdi: string, len: number): Promise<Uint8Array> {
  const r = await runDogOk(["vdi", "read", vdi, "0", String(len)], {
    port: sheep.port,
    deadlineMs: TOOL_DEADLINE_MS,
  });
  return r.stdout;
}

Deno.test({
  name: "nbd: qemu-img, qemu-io, nbdinfo and nbdcopy drive VDIs exported by sheep --nbd",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    requireTools(TOOLS);
    await using tmp = await tempDir("nbd");
    const nbdPort = freePort();
    const sheep = startSheep({
      dir: `${tmp.path}/store`,
      zone: 0,
      cluster: `local:${tmp.path}/cluster`,
      extraArgs: ["--nbd", `127.0.0.1:${nbdPort}`],
    });
    await using _stop = { [Symbol.asyncDispose]: () => sheep.stop().then(() => {}) };
    await sheep.waitReady();
    await sheep.waitListening(nbdPort);
    await sheep.dog(["cluster", "format", "-c", "1"]).then((r) => assert.equal(r.code, 0));
    for (const v of ["vol", "copy"]) {
      await runDogOk(["vdi", "create", v, String(VDI_SIZE)], { port: sheep.port });
    }
    const url = (name: string) => `nbd://127.0.0.1:${nbdPort}/${name}`;
    const image = randomBytes(IMAGE_SIZE);
    const imgPath = `${tmp.path}/image.raw`;
    await Deno.writeFile(imgPath, image);

    await t.step(
      "qemu-img info reports the VDI's size; nbdinfo --list lists the VDIs",
      async () => {
        const info = await tool("qemu-img", ["info", "--output=json", url("vol")]);
        assert.equal(JSON.parse(info)["virtual-size"], VDI_SIZE, info);
        const list = await tool("nbdinfo", ["--list", "--json", `nbd://127.0.0.1:${nbdPort}`]);
        const names = JSON.parse(list).exports.map((e: { "export-name": string }) =>
          e["export-name"]
        );
        assert.deepEqual(names.sort(), ["copy", "vol"], list);
      },
    );

    await t.step("qemu-img convert writes a 64 MiB image and reads it back identical", async () => {
      await tool("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", imgPath, url("vol")]);
      const outPath = `${tmp.path}/back.raw`;
      await tool("qemu-img", ["convert", "-f", "raw", "-O", "raw", url("vol"), outPath]);
      const back = await Deno.readFile(outPath);
      assert.equal(back.length, VDI_SIZE);
      assertSameBytes(back.subarray(0, IMAGE_SIZE), image, "qemu-img read over NBD");
      assertZeros(back.subarray(IMAGE_SIZE), "past the image");
      await Deno.remove(outPath);
      assertSameBytes(await dogRead(sheep, "vol", IMAGE_SIZE), image, "dog vdi read");
    });

    await t.step(
      "the image written over NBD reads back identical through tgt (iSCSI)",
      async () => {
        await using exp = await startTgt({ sheepSocketPath: `${tmp.path}/store/sock`, vdi: "vol" });
        const outPath = `${tmp.path}/iscsi.raw`;
        await tool("qemu-img", ["convert", "-f", "raw", "-O", "raw", exp.url, outPath]);
        const back = await Deno.readFile(outPath);
        assert.equal(back.length, VDI_SIZE);
        assertSameBytes(back.subarray(0, IMAGE_SIZE), image, "qemu-img read over iSCSI (tgt)");
        assertZeros(back.subarray(IMAGE_SIZE), "past the image, over iSCSI");
        await Deno.remove(outPath);
      },
    );

    await t.step("nbdcopy copies into a VDI and out of it", async () => {
      await tool("nbdcopy", [imgPath, url("copy")]);
      assertSameBytes(
        await dogRead(sheep, "copy", IMAGE_SIZE),
        image,
        "dog vdi read after nbdcopy",
      );
      const outPath = `${tmp.path}/copy.raw`;
      await tool("nbdcopy", [url("copy"), outPath]);
      const back = await Deno.readFile(outPath);
      assertSameBytes(back.subarray(0, IMAGE_SIZE), image, "nbdcopy out of the VDI");
      assertZeros(back.subarray(IMAGE_SIZE), "nbdcopy past the image");
      await Deno.remove(outPath);
    });

    await t.step("qemu-io reads, writes, discards, zeroes and flushes", async () => {
      const out = await tool("qemu-io", [
        "-f",
        "raw",
        "-c",
        "write -P 0xab 1M 64k",
        "-c",
        "read -P 0xab 1M 64k",
        "-c",
        "write -P 0x5c 4190000 10000",
        "-c",
        "flush",
        "-c",
        "discard 8M 8M",
        "-c",
        "read -P 0 8M 8M",
        "-c",
        "discard 20000 5000",
        "-c",
        "read -P 0 20000 5000",
        "-c",
        "write -z 20M 3M",
        "-c",
        "read -P 0 20M 3M",
        "-c",
        "read -P 0x5c 4190000 10000",
        url("copy"),
      ]);
      assert.doesNotMatch(out, /Pattern verification failed|error|failed/i, out);
      const want = image.slice();
      want.fill(0xab, MiB, MiB + 65536);
      want.fill(0x5c, 4190000, 4200000);
      want.fill(0, 8 * MiB, 16 * MiB);
      want.fill(0, 20000, 25000);
      want.fill(0, 20 * MiB, 23 * MiB);
      assertSameBytes(await dogRead(sheep, "copy", IMAGE_SIZE), want, "dog vdi read after qemu-io");
    });

    await t.step("a snapshot is a read-only export by tag and by id", async () => {
      await runDogOk(["vdi", "snapshot", "-s", "s1", "vol"], { port: sheep.port });
      for (const name of ["vol:s1", "vol:1"]) {
        const info = JSON.parse(await tool("nbdinfo", ["--json", url(name)]));
        assert.equal(info.exports[0]["is_read_only"], true, name);
        assert.equal(info.exports[0]["export-size"], VDI_SIZE, name);
      }
      const w = await run("qemu-io", ["-f", "raw", "-c", "write 0 4k", url("vol:s1")]);
      assert.ok(!w.success, "a write to a snapshot export must fail");
      // The working VDI stays writable and the snapshot keeps the old bytes.
      await tool("qemu-io", ["-f", "raw", "-c", "write -P 0x77 0 4k", url("vol")]);
      const outPath = `${tmp.path}/snap.raw`;
      await tool("nbdcopy", [url("vol:s1"), outPath]);
      assertSameBytes((await Deno.readFile(outPath)).subarray(0, IMAGE_SIZE), image, "snapshot");
      await Deno.remove(outPath);
      const now = await dogRead(sheep, "vol", 8192);
      assert.ok(now.subarray(0, 4096).every((b) => b === 0x77));
      assertSameBytes(now.subarray(4096), image.subarray(4096, 8192), "after the snapshot");
    });

    await t.step(
      "block status: nbdinfo --map and qemu-img map see written objects as data, the rest as holes",
      async () => {
        await runDogOk(["vdi", "create", "sparse", String(16 * 4 * MiB)], { port: sheep.port });
        // Objects 2 and 10 get a write each; the other 14 were never written.
        for (const at of [8 * MiB + 100, 40 * MiB]) {
          await tool("qemu-io", ["-f", "raw", "-c", `write -P 0x5a ${at} 4k`, url("sparse")]);
        }
        const want = [
          [0, 8 * MiB, false],
          [8 * MiB, 4 * MiB, true],
          [12 * MiB, 28 * MiB, false],
          [40 * MiB, 4 * MiB, true],
          [44 * MiB, 20 * MiB, false],
        ];
        const map = JSON.parse(await tool("nbdinfo", ["--map", "--json", url("sparse")])) as {
          offset: number;
          length: number;
          type: number;
        }[];
        assert.deepEqual(map.map((e) => [e.offset, e.length, (e.type & 1) === 0]), want);
        for (const e of map) {
          assert.equal(e.type, (e.type & 1) === 0 ? 0 : 3, "holes read as zeros");
        }
        const qmap = JSON.parse(
          await tool("qemu-img", ["map", "--output=json", "-f", "raw", url("sparse")]),
        ) as { start: number; length: number; data: boolean; zero: boolean }[];
        assert.deepEqual(qmap.map((e) => [e.start, e.length, e.data]), want);
        // The holes read back as zeros, the data as written, and a copy keeps both.
        const out = `${tmp.path}/sparse.raw`;
        await tool("nbdcopy", [url("sparse"), out]);
        const back = await Deno.readFile(out);
        assert.equal(back.length, 64 * MiB);
        assert.ok(back.subarray(8 * MiB + 100, 8 * MiB + 100 + 4096).every((b) => b === 0x5a));
        assert.ok(back.subarray(0, 8 * MiB + 100).every((b) => b === 0));
        assert.ok(back.subarray(44 * MiB).every((b) => b === 0));
      },
    );

    await t.step("bad input gets the right NBD error and the server keeps serving", async () => {
      const missing = await run("qemu-img", ["info", url("nosuch")]);
      assert.ok(!missing.success);
      assert.match(missing.stderrText, /not available|nosuch/i, missing.stderrText);

      const c = await RawNbdClient.open(nbdPort);
      const unknown = await c.goOrInfo(Opt.GO, "nosuch:tag");
      assert.ok("error" in unknown && unknown.error === Rep.ERR_UNKNOWN);
      await c.option(99);
      assert.equal((await c.readOptionReply()).type, Rep.ERR_UNSUP);
      const go = await c.goOrInfo(Opt.GO, "vol");
      assert.ok(!("error" in go));
      assert.ok(go.flags & TxFlag.SEND_FLUSH);
      const size = go.size;
      assert.equal((await c.call(Cmd.READ, size - 1n, 2)).error, Errno.EINVAL);
      const pastEnd = await c.call(Cmd.WRITE, size, 1, { payload: new Uint8Array(1) });
      assert.equal(pastEnd.error, Errno.EINVAL);
      assert.equal((await c.call(Cmd.READ, 0, 33 * MiB)).error, Errno.EINVAL);
      const r = await c.call(Cmd.READ, 0, 4096);
      assert.equal(r.error, 0, "the connection is still usable");
      assert.ok(r.data.every((b) => b === 0x77));
      // A bad request magic ends that connection, not the server.
      await c.send(new Uint8Array(28));
      assert.ok(await c.closedByServer());
      c.close();
      const info = await tool("qemu-img", ["info", "--output=json", url("vol")]);
      assert.equal(JSON.parse(info)["virtual-size"], VDI_SIZE);
      assert.ok(sheep.running);
    });
  },
});

Deno.test({
  name: "nbd: a flushed write survives SIGKILL of every sheep",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireTools(TOOLS);
    const nbdPort = freePort();
    await using cluster = await startCluster(2, {
      copies: 2,
      nodeArgs: [["--nbd", `127.0.0.1:${nbdPort}`], []],
    });
    await cluster.sheep[0].waitListening(nbdPort);
    await runDogOk(["vdi", "create", "vol", String(32 * MiB)], { port: cluster.ports[0] });
    const data = randomBytes(6 * MiB);
    const { client } = await RawNbdClient.go(nbdPort, "vol");
    // The first write creates the objects; the second overwrites them in place.
    const first = await client.call(Cmd.WRITE, 3 * MiB, data.length, {
      payload: new Uint8Array(data.length).fill(0x11),
    });
    assert.equal(first.error, 0);
    const w = await client.call(Cmd.WRITE, 3 * MiB, data.length, { payload: data });
    assert.equal(w.error, 0);
    assert.equal((await client.call(Cmd.FLUSH, 0, 0)).error, 0);
    await Promise.all(cluster.sheep.map((s) => s.kill()));
    client.close();

    // The same stores, ports and zones, after a crash of the whole cluster.
    const restarted = cluster.sheep.map((s, i) =>
      startSheep({
        dir: s.dir,
        port: s.port,
        zone: i,
        cluster: cluster.clusterSpec,
        extraArgs: i === 0 ? ["--nbd", `127.0.0.1:${nbdPort}`] : [],
      })
    );
    try {
      await Promise.all(restarted.map((s) => s.waitReady()));
      await restarted[0].waitListening(nbdPort);
      await waitUntil(
        async () => {
          const r = await restarted[0].dog(["vdi", "list", "-r"]);
          return r.success && r.stdoutText.includes("vol");
        },
        30_000,
        "the restarted cluster serving VDIs",
      );
      const back = await runDogOk(["vdi", "read", "vol", String(3 * MiB), String(data.length)], {
        port: restarted[1].port,
      });
      assertSameBytes(back.stdout, data, "dog vdi read after SIGKILL of every sheep");
      const { client: again } = await RawNbdClient.go(nbdPort, "vol");
      const r = await again.call(Cmd.READ, 3 * MiB, data.length);
      assert.equal(r.error, 0);
      assertSameBytes(r.data, data, "NBD read after SIGKILL of every sheep");
      again.close();
    } finally {
      await Promise.all(restarted.map((s) => s.stop()));
    }
  },
});

Deno.test({
  name: "nbd: nbdfuse exposes a VDI as a file and fio verifies random writes through it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    requireTools(TOOLS);
    requireTools([["nbdfuse", "libnbd-bin"], ["fio", "fio"], ["fusermount3", "fuse3"]]);
    await using tmp = await tempDir("nbdfuse");
    const nbdPort = freePort();
    const sheep = startSheep({
      dir: `${tmp.path}/store`,
      zone: 0,
      cluster: `local:${tmp.path}/cluster`,
      extraArgs: ["--nbd", `127.0.0.1:${nbdPort}`],
    });
    await using _stop = { [Symbol.asyncDispose]: () => sheep.stop().then(() => {}) };
    await sheep.waitReady();
    await sheep.waitListening(nbdPort);
    await runDogOk(["cluster", "format", "-c", "1"], { port: sheep.port });
    await runDogOk(["vdi", "create", "vol", String(64 * MiB)], { port: sheep.port });
    const mnt = `${tmp.path}/mnt`;
    await Deno.mkdir(mnt);
    const fuse = spawnManaged(["nbdfuse", `${mnt}/disk`, `nbd://127.0.0.1:${nbdPort}/vol`]);
    try {
      await waitUntil(
        async () => {
          if (!fuse.running) throw new Error(`nbdfuse exited\n${fuse.logs()}`);
          return (await Deno.stat(`${mnt}/disk`).catch(() => null))?.size === 64 * MiB;
        },
        15_000,
        "the nbdfuse mount",
      );
      const out = await tool("fio", [
        "--name=verify",
        `--filename=${mnt}/disk`,
        "--size=16M",
        "--rw=randwrite",
        "--bs=4k",
        "--iodepth=16",
        "--ioengine=libaio",
        "--direct=1",
        "--verify=crc32c",
        "--do_verify=1",
        "--verify_state_save=0",
        "--output-format=json",
      ], tmp.path);
      const job = JSON.parse(out.slice(out.indexOf("{"))).jobs[0];
      assert.equal(job.error, 0, out);
      assert.equal(job.write.io_bytes, 16 * MiB);
      assert.equal(job.read.io_bytes, 16 * MiB, "fio read everything back to verify it");
    } finally {
      await run("fusermount3", ["-u", mnt], { deadlineMs: 10_000 });
      await fuse.stop(5_000);
    }
  },
});
