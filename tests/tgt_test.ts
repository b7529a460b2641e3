/**
 * tgt, a client of the Sheepdog protocol that nobody here wrote (issue 2 §5). Debian's tgtd opens
 * a VDI of our sheep through its sheepdog backing store and exports it as an iSCSI LUN; qemu-img
 * writes a 64 MiB random image into the LUN and reads it back over iSCSI, `dog vdi read` reads it
 * back over the Sheepdog protocol, and both must equal the image byte for byte.
 * `iscsi-readcapacity16` must report the VDI's size. Done once with tgt reaching the sheep over
 * TCP (`tcp:127.0.0.1:PORT:VDI`, port below 10000 since tgt keeps four digits) and once over the
 * UNIX socket (`unix:DIR/sock:VDI`).
 *
 * tgtd, qemu-img and iscsi-readcapacity16 are required (`.ci/run` installs them): without them
 * the test fails with a message saying what to install.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  freePortBelow,
  run,
  runDog,
  type SheepProcess,
  startSheep,
  startTgt,
  type TempDir,
  tempDir,
  type TgtExport,
} from "./harness/mod.ts";
import { SheepClient } from "../core/net/client.ts";
import { SdReq } from "../core/proto/header.ts";
import { requireTools } from "./harness/tools.ts";
import { assertSameBytes, randomBytes } from "./harness/proto.ts";

const PUBLIC_VER = 0x02;
const SHEEP_VER = 0x0a;
const OP_NEW_VDI = 0x11;
const OP_MAKE_FS = 0x84;
const FLAG_CMD_WRITE = 0x0001;
const RES_SUCCESS = 0x00;

const VDI_SIZE = 256 * 1024 * 1024;
const IMAGE_SIZE = 64 * 1024 * 1024;
const TOOL_DEADLINE_MS = 120_000;

/** The tools this test drives, with the Debian package that ships each. */
const TOOLS: [string, string][] = [
  ["tgtd", "tgt"],
  ["tgtadm", "tgt"],
  ["qemu-img", "qemu-utils"],
  ["iscsi-readcapacity16", "libiscsi-bin"],
];

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

async function runOkTool(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await run(cmd, args, { deadlineMs: TOOL_DEADLINE_MS });
  assert.ok(
    r.success,
    `${cmd} ${args.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}\n` +
      `--- stderr ---\n${r.stderrText}--- stdout ---\n${r.stdoutText.slice(0, 2000)}`,
  );
  return { stdout: r.stdoutText, stderr: r.stderrText };
}

/** Formats (copies 1) and creates the VDIs over the protocol. */
async function prepare(port: number, vdis: string[]): Promise<void> {
  const c = await SheepClient.connect({ host: "127.0.0.1", port });
  try {
    const store = new TextEncoder().encode("plain\0");
    const fmt = SdReq.of(OP_MAKE_FS, SHEEP_VER, {
      flags: FLAG_CMD_WRITE,
      dataLength: store.length,
    });
    fmt.cluster.ctime = BigInt(Math.floor(Date.now() / 1000)) << 32n;
    fmt.cluster.copies = 1;
    fmt.cluster.flags = 0x0004;
    const f = await c.request(fmt, store);
    assert.equal(f.rsp.result, RES_SUCCESS, `MAKE_FS: ${hex(f.rsp.result)}`);
    for (const name of vdis) {
      const payload = new Uint8Array(256);
      payload.set(new TextEncoder().encode(name));
      const req = SdReq.of(OP_NEW_VDI, PUBLIC_VER, { flags: FLAG_CMD_WRITE, dataLength: 256 });
      req.vdi.vdiSize = BigInt(VDI_SIZE);
      req.vdi.copies = 1;
      const r = await c.request(req, payload);
      assert.equal(r.rsp.result, RES_SUCCESS, `NEW_VDI ${name}: ${hex(r.rsp.result)}`);
    }
  } finally {
    c.close();
  }
}

/** Writes a random image into the LUN, reads it back two ways, checks the capacity. */
async function roundTrip(
  tmp: TempDir,
  sheep: SheepProcess,
  exp: TgtExport,
  vdi: string,
): Promise<void> {
  // The LUN has the VDI's size.
  const cap = await runOkTool("iscsi-readcapacity16", [exp.url]);
  const total = cap.stdout.match(/Total size:\s*(\d+)/);
  const blocks = cap.stdout.match(/Number of Logical Blocks:\s*(\d+)/);
  const blockSize = cap.stdout.match(/Logical Block Size:\s*(\d+)/);
  assert.ok(
    total || (blocks && blockSize),
    `unexpected iscsi-readcapacity16 output:\n${cap.stdout}`,
  );
  const size = total ? Number(total[1]) : Number(blocks![1]) * Number(blockSize![1]);
  assert.equal(size, VDI_SIZE, `iscsi-readcapacity16 reports ${size} bytes:\n${cap.stdout}`);

  // qemu-img writes the image into the existing LUN (-n: do not create the target).
  const image = randomBytes(IMAGE_SIZE);
  const imgPath = `${tmp.path}/${vdi}.img`;
  await Deno.writeFile(imgPath, image);
  await runOkTool("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", imgPath, exp.url]);

  // Back over iSCSI: the whole LUN; the image, then zeros.
  const outPath = `${tmp.path}/${vdi}.out`;
  await runOkTool("qemu-img", ["convert", "-f", "raw", "-O", "raw", exp.url, outPath]);
  const back = await Deno.readFile(outPath);
  assert.equal(back.length, VDI_SIZE, "qemu-img read back a LUN of another size");
  assertSameBytes(back.subarray(0, IMAGE_SIZE), image, `${vdi}: qemu-img read over iSCSI`);
  const tail = back.subarray(IMAGE_SIZE);
  const nz = tail.findIndex((b) => b !== 0);
  assert.equal(nz, -1, `${vdi}: byte ${IMAGE_SIZE + nz} past the image is not zero`);
  await Deno.remove(outPath);

  // Back over the Sheepdog protocol with dog.
  const d = await runDog(["vdi", "read", vdi, "0", String(IMAGE_SIZE)], {
    port: sheep.port,
    deadlineMs: TOOL_DEADLINE_MS,
  });
  assert.equal(d.code, 0, `dog vdi read ${vdi} exited ${d.code}\n${d.stderrText}`);
  assertSameBytes(d.stdout, image, `${vdi}: dog vdi read`);
  await Deno.remove(imgPath);
}

Deno.test({
  name:
    "tgt: a VDI exported as an iSCSI LUN over TCP and over the UNIX socket round-trips a 64 MiB image",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    requireTools(TOOLS);
    await using tmp = await tempDir("tgt");
    // tgt keeps only four digits of a tcp: port.
    const port = freePortBelow(10_000);
    const dir = `${tmp.path}/store`;
    const sheep = startSheep({
      dir,
      port,
      zone: 0,
      cluster: `local:${tmp.path}/cluster`,
      extraArgs: ["-n"],
    });
    try {
      await sheep.waitReady();
      await prepare(port, ["tgt-tcp", "tgt-unix"]);

      await t.step("tcp:127.0.0.1:PORT:VDI", async () => {
        const exp = await startTgt({ sheepPort: port, vdi: "tgt-tcp" });
        try {
          await roundTrip(tmp, sheep, exp, "tgt-tcp");
        } finally {
          await exp.stop();
        }
      });

      await t.step("unix:DIR/sock:VDI", async () => {
        const exp = await startTgt({ sheepSocketPath: `${dir}/sock`, vdi: "tgt-unix" });
        try {
          await roundTrip(tmp, sheep, exp, "tgt-unix");
        } finally {
          await exp.stop();
        }
      });

      assert.ok(sheep.running, `the sheep died:\n${sheep.process.logTail()}`);
      const st = await sheep.stop();
      assert.equal(st.code, 0, `sheep exit code\n${sheep.process.logTail()}`);
    } finally {
      await sheep.stop();
    }
  },
});
