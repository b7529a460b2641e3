/**
 * VDI locking end to end (issue 7) on real sheep processes: a cluster formatted with
 * `dog cluster format -l` locks VDIs with LOCK_VDI / RELEASE_VDI (normal and shared locks, sent
 * raw to different gateways), `dog vdi lock list|unlock` show and free them, the locks of a
 * SIGKILLed node are dropped by every member, locks survive an epoch change and a node that joins
 * later learns them, and the NBD export holds a writer's lock for exactly as long as its
 * connection lives. Without `-l` nothing locks.
 *
 * nbdinfo and qemu-io are required (`.ci/run` installs libnbd-bin and qemu-utils).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Cluster,
  freePort,
  run,
  runDogOk,
  startCluster,
  startSheep,
  tempDir,
  waitUntil,
} from "./harness/mod.ts";
import { clusterInfo, connectSheep } from "./harness/proto.ts";
import { requireTools } from "./harness/tools.ts";
import { RawNbdClient } from "../core/nbd/testdata/raw_nbd_client.ts";
import { Cmd, Opt, Rep, TxFlag } from "../core/nbd/protocol.ts";
import {
  ClusterFlag,
  Flag,
  LockType,
  Op,
  Res,
  SD_MAX_VDI_LEN,
  SD_PROTO_VER,
} from "../core/proto/constants.ts";
import { SdReq } from "../core/proto/header.ts";
import { encodeFixedString } from "../core/proto/strings.ts";

const WAIT_MS = 20_000;
const TOOL_DEADLINE_MS = 60_000;

/** LOCK_VDI of the working VDI `name` through the sheep on `port`: result and vid. */
async function lockVdi(
  port: number,
  name: string,
  type: number = LockType.NORMAL,
): Promise<{ result: number; vid: number }> {
  const c = await connectSheep(port);
  try {
    const payload = new Uint8Array(2 * SD_MAX_VDI_LEN);
    payload.set(encodeFixedString(name, SD_MAX_VDI_LEN));
    const req = SdReq.of(Op.LOCK_VDI, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: payload.length,
    });
    req.vdi.type = type;
    const { rsp } = await c.request(req, payload);
    return { result: rsp.result, vid: rsp.vdi.vdiId };
  } finally {
    c.close();
  }
}

/** RELEASE_VDI of `vid` through the sheep on `port`, naming the VDI as QEMU does. */
async function releaseVdi(
  port: number,
  vid: number,
  name: string,
  type: number = LockType.NORMAL,
): Promise<number> {
  const c = await connectSheep(port);
  try {
    const payload = new TextEncoder().encode(name + "\0");
    const req = SdReq.of(Op.RELEASE_VDI, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: payload.length,
    });
    req.vdi.baseVdiId = vid;
    req.vdi.type = type;
    const { rsp } = await c.request(req, payload);
    return rsp.result;
  } finally {
    c.close();
  }
}

async function flagsOf(port: number): Promise<number> {
  const c = await connectSheep(port);
  try {
    return (await clusterInfo(c)).flags;
  } finally {
    c.close();
  }
}

function owner(port: number): string {
  return `IPv4 ip:127.0.0.1 port:${port}`;
}

/** `dog vdi lock list` through `port`: its lines after the header. */
async function lockList(port: number): Promise<string[]> {
  const r = await runDogOk(["vdi", "lock", "list"], { port });
  const lines = r.stdoutText.split("\n").filter((l) => l !== "");
  assert.equal(lines[0], "VDI | owner node");
  return lines.slice(1);
}

async function waitLockList(ports: number[], want: string[], what: string): Promise<void> {
  let last: string[] = [];
  await waitUntil(
    async () => {
      for (const p of ports) {
        last = await lockList(p);
        if (JSON.stringify(last) !== JSON.stringify(want)) return false;
      }
      return true;
    },
    WAIT_MS,
    `${what} (last lock list: ${JSON.stringify(last)}, want ${JSON.stringify(want)})`,
    200,
  );
}

Deno.test({
  name:
    "vdi lock: -l locks VDIs across gateways, dog lists and unlocks, leaves and joins keep it right, NBD holds it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    requireTools([["nbdinfo", "libnbd-bin"], ["qemu-io", "qemu-utils"]]);
    const nbdPort = freePort();
    await using cluster: Cluster = await startCluster(3, {
      nodeArgs: [["--nbd", `127.0.0.1:${nbdPort}`], [], []],
    });
    const [p0, p1, p2] = cluster.ports;
    await cluster.sheep[0].waitListening(nbdPort);
    await cluster.dog(["cluster", "format", "-l", "-c", "2"]).then((r) =>
      assert.equal(r.code, 0, r.stderrText)
    );
    for (const p of cluster.ports) {
      assert.ok((await flagsOf(p)) & ClusterFlag.USE_LOCK, `USE_LOCK on ${p}`);
    }
    for (const v of ["a", "b", "multi", "nbdvol"]) {
      await runDogOk(["vdi", "create", v, "16M"], { port: p0 });
    }
    await runDogOk(["vdi", "snapshot", "-s", "before", "nbdvol"], { port: p0 });

    let vidA = 0;
    await t.step("a normal lock has one holder; a release frees only the holder's", async () => {
      const first = await lockVdi(p1, "a");
      assert.equal(first.result, Res.SUCCESS);
      vidA = first.vid;
      assert.equal((await lockVdi(p2, "a")).result, Res.VDI_LOCKED);
      assert.equal((await lockVdi(p1, "a")).result, Res.VDI_LOCKED, "same gateway twice");
      assert.equal((await lockVdi(p0, "a", LockType.SHARED)).result, Res.VDI_LOCKED);
      assert.equal(await releaseVdi(p2, vidA, "a"), Res.VDI_NOT_LOCKED, "not the holder");
      assert.equal(await releaseVdi(p1, vidA, "a"), Res.SUCCESS);
      assert.equal(await releaseVdi(p1, vidA, "a"), Res.VDI_NOT_LOCKED, "already released");
      assert.equal((await lockVdi(p2, "a")).result, Res.SUCCESS, "lock again after release");
      assert.equal((await lockVdi(p0, "nosuch")).result, Res.NO_VDI);
    });

    await t.step(
      "shared locks from two nodes; dog vdi lock list shows them on every node",
      async () => {
        assert.equal((await lockVdi(p1, "multi", LockType.SHARED)).result, Res.SUCCESS);
        assert.equal((await lockVdi(p2, "multi", LockType.SHARED)).result, Res.SUCCESS);
        assert.equal((await lockVdi(p0, "multi")).result, Res.VDI_LOCKED);
        await waitLockList(cluster.ports, [
          `a | ${owner(p2)}`,
          `multi (shared) | ${owner(p1)}, ${owner(p2)}`,
        ], "the locks on every node");
      },
    );

    await t.step("dog vdi lock unlock frees a lock held by another node", async () => {
      await runDogOk(["vdi", "lock", "unlock", "a"], { port: p0 });
      await waitLockList(cluster.ports, [
        `multi (shared) | ${owner(p1)}, ${owner(p2)}`,
      ], "a unlocked everywhere");
      const again = await lockVdi(p0, "a");
      assert.equal(again.result, Res.SUCCESS);
      assert.equal(await releaseVdi(p0, again.vid, "a"), Res.SUCCESS);
      const unlocked = await cluster.dog(["vdi", "lock", "unlock", "a"]);
      assert.equal(unlocked.code, 1);
      assert.equal(unlocked.stderrText, "VDI a is not locked\n");
      const missing = await cluster.dog(["vdi", "lock", "unlock", "nosuch"]);
      assert.equal(missing.code, 1);
      assert.equal(
        missing.stderrText,
        "Failed to open VDI nosuch (snapshot id: 0 snapshot tag: ): No VDI found\n",
      );
    });

    await t.step("the locks of a SIGKILLed node are released on the others", async () => {
      assert.equal((await lockVdi(p2, "b")).result, Res.SUCCESS);
      assert.equal((await lockVdi(p1, "a")).result, Res.SUCCESS);
      await waitLockList([p0, p1], [
        `a | ${owner(p1)}`,
        `b | ${owner(p2)}`,
        `multi (shared) | ${owner(p1)}, ${owner(p2)}`,
      ], "the locks before the kill");
      await cluster.sheep[2].kill();
      await waitLockList([p0, p1], [
        `a | ${owner(p1)}`,
        `multi (shared) | ${owner(p1)}`,
      ], "the dead node's locks released");
      assert.equal((await lockVdi(p0, "b")).result, Res.SUCCESS);
    });

    await t.step("locks survive an epoch change and a node joining later learns them", async () => {
      const want = [`a | ${owner(p1)}`, `b | ${owner(p0)}`, `multi (shared) | ${owner(p1)}`];
      const joined = await cluster.addSheep();
      await waitLockList([p0, p1, joined.port], want, "the locks on the new node");
      assert.ok((await flagsOf(joined.port)) & ClusterFlag.USE_LOCK, "the joiner has USE_LOCK");
      assert.equal((await lockVdi(joined.port, "a")).result, Res.VDI_LOCKED);
      assert.equal(await releaseVdi(p0, (await lockVdi(p0, "b")).vid, "b"), Res.SUCCESS);
    });

    await t.step(
      "an NBD writer holds the lock while connected; a second one is refused",
      async () => {
        const { client: first, flags } = await RawNbdClient.go(nbdPort, "nbdvol");
        assert.equal(flags & TxFlag.READ_ONLY, 0);
        assert.equal(flags & TxFlag.CAN_MULTI_CONN, 0, "no multi-conn for a locked export");
        await waitLockList([p0, p1], [
          `a | ${owner(p1)}`,
          `multi (shared) | ${owner(p1)}`,
          `nbdvol | ${owner(p0)}`,
        ], "the NBD connection's lock");
        assert.equal((await lockVdi(p1, "nbdvol")).result, Res.VDI_LOCKED);
        const second = await RawNbdClient.open(nbdPort);
        const refused = await second.goOrInfo(Opt.GO, "nbdvol");
        assert.ok("error" in refused && refused.error === Rep.ERR_POLICY, JSON.stringify(refused));
        assert.match(refused.message, /nbdvol is locked/);
        const info = await second.goOrInfo(Opt.INFO, "nbdvol");
        assert.ok(!("error" in info), "NBD_OPT_INFO needs no lock");
        const snap = await second.goOrInfo(Opt.GO, "nbdvol:before");
        assert.ok(!("error" in snap), "a read-only snapshot export needs no lock");
        assert.ok(snap.flags & TxFlag.READ_ONLY);
        second.close();
        // libnbd maps the refusal to an errno; QEMU shows the server's message.
        const nbdinfo = await run("nbdinfo", [`nbd://127.0.0.1:${nbdPort}/nbdvol`], {
          deadlineMs: TOOL_DEADLINE_MS,
        });
        assert.ok(!nbdinfo.success, "nbdinfo on a locked VDI fails");
        assert.match(nbdinfo.stderrText, /server replied with error to opt_go/, nbdinfo.stderrText);
        const qemuIo = await run("qemu-io", [
          "-f",
          "raw",
          "-c",
          "read 0 4",
          `nbd://127.0.0.1:${nbdPort}/nbdvol`,
        ], { deadlineMs: TOOL_DEADLINE_MS });
        assert.ok(!qemuIo.success, "qemu-io on a locked VDI fails");
        assert.match(qemuIo.stderrText, /VDI nbdvol is locked/, qemuIo.stderrText);
        const w = await first.call(Cmd.WRITE, 0, 4, { payload: new Uint8Array([1, 2, 3, 4]) });
        assert.equal(w.error, 0);
        // An abrupt end (no NBD_CMD_DISC) releases the lock too.
        first.close();
        await waitLockList(
          [p0, p1],
          [`a | ${owner(p1)}`, `multi (shared) | ${owner(p1)}`],
          "released",
        );
        const { client: again } = await RawNbdClient.go(nbdPort, "nbdvol");
        const r = await again.call(Cmd.READ, 0, 4);
        assert.deepEqual([...r.data!], [1, 2, 3, 4]);
        await again.request(Cmd.DISC, 1n, 0, 0);
        again.close();
        await waitLockList([p0], [`a | ${owner(p1)}`, `multi (shared) | ${owner(p1)}`], "released");
      },
    );

    await t.step(
      "a snapshot of a locked VDI moves the lock to the new working VDI, released at the end",
      async () => {
        const others = [`a | ${owner(p1)}`, `multi (shared) | ${owner(p1)}`];
        const locked = [...others, `nbdvol | ${owner(p0)}`];
        for (const writeAfter of [true, false]) {
          const { client } = await RawNbdClient.go(nbdPort, "nbdvol");
          await waitLockList([p0, p1], locked, "the NBD connection's lock");
          await runDogOk(["vdi", "snapshot", "-s", `during-${writeAfter}`, "nbdvol"], {
            port: p1,
          });
          // The new working VDI is the one locked now, and a second writer is still refused.
          await waitLockList([p0, p1], locked, "the lock on the new working VDI");
          assert.equal((await lockVdi(p1, "nbdvol")).result, Res.VDI_LOCKED);
          if (writeAfter) {
            // The export finds its VDI turned snapshot (READONLY) and goes on on the new one.
            const w = await client.call(Cmd.WRITE, 0, 4, {
              payload: new Uint8Array([5, 6, 7, 8]),
            });
            assert.equal(w.error, 0);
          }
          await client.request(Cmd.DISC, 1n, 0, 0);
          client.close();
          await waitLockList([p0, p1], others, `released (write after: ${writeAfter})`);
        }
        const r = await runDogOk(["vdi", "read", "nbdvol", "0", "4"], { port: p1 });
        assert.deepEqual([...r.stdout], [5, 6, 7, 8]);
      },
    );

    await t.step("USE_LOCK persists across a restart of the whole cluster", async () => {
      await runDogOk(["cluster", "shutdown"], { port: p0 });
      const alive = cluster.sheep.filter((s) => s !== cluster.sheep[2]);
      await Promise.all(alive.map((s) => s.exited));
      const restarted = alive.map((s, i) =>
        startSheep({
          dir: s.dir,
          port: s.port,
          zone: cluster.sheep.indexOf(s),
          cluster: cluster.clusterSpec,
          logFile: `${s.logFile}.restart`,
          extraArgs: i === 0 ? ["--nbd", `127.0.0.1:${nbdPort}`] : [],
        })
      );
      try {
        await Promise.all(restarted.map((s) => s.waitReady()));
        for (const s of restarted) {
          assert.ok((await flagsOf(s.port)) & ClusterFlag.USE_LOCK, `USE_LOCK on ${s.port}`);
        }
        await waitUntil(
          async () => (await lockVdi(p0, "a")).result === Res.SUCCESS,
          WAIT_MS,
          "the restarted cluster serving LOCK_VDI",
          200,
        );
        assert.equal((await lockVdi(p1, "a")).result, Res.VDI_LOCKED);
      } finally {
        await Promise.all(restarted.map((s) => s.stop()));
      }
    });
  },
});

Deno.test({
  name: "vdi lock: without format -l nothing locks, and two NBD writers share a VDI",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("nolock");
    const nbdPort = freePort();
    await using cluster = await startCluster(1, {
      nodeArgs: [["--nbd", `127.0.0.1:${nbdPort}`]],
      driverPath: `${tmp.path}/cluster`,
    });
    const p0 = cluster.ports[0];
    await cluster.sheep[0].waitListening(nbdPort);
    await runDogOk(["cluster", "format", "-c", "1"], { port: p0 });
    assert.equal((await flagsOf(p0)) & ClusterFlag.USE_LOCK, 0);
    await runDogOk(["vdi", "create", "v", "8M"], { port: p0 });
    const a = await lockVdi(p0, "v");
    assert.equal(a.result, Res.SUCCESS);
    assert.equal((await lockVdi(p0, "v")).result, Res.SUCCESS, "LOCK_VDI is a lookup");
    assert.equal(await releaseVdi(p0, a.vid, "v"), Res.SUCCESS, "RELEASE_VDI is a no-op");
    const { client: one, flags } = await RawNbdClient.go(nbdPort, "v");
    assert.ok(flags & TxFlag.CAN_MULTI_CONN);
    const { client: two } = await RawNbdClient.go(nbdPort, "v");
    assert.deepEqual(await lockList(p0), []);
    const unlock = await runDogOk(["vdi", "lock", "list", "-r"], { port: p0 });
    assert.equal(unlock.stdoutText, "");
    const r = await cluster.dog(["vdi", "lock", "unlock", "v"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderrText, "VDI v is not locked\n");
    one.close();
    two.close();
  },
});
