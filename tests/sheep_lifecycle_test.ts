/**
 * The sheep daemon's life cycle with real processes (issue 2 §3): SIGTERM with requests in flight,
 * restart on the same store, cluster shutdown and restart without a new epoch, the store-directory
 * lock, bad command lines, daemonizing, the pid file, JSON logs in a chosen directory, and the
 * UNIX socket.
 *
 * Every sheep binds 127.0.0.1 on a free port, lives in a private scratch directory, and is stopped
 * by its own pid in a finally; every wait has a deadline.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canBind,
  freePort,
  isListening,
  run,
  type RunResult,
  sheepdogCommand,
  type SheepProcess,
  sleep,
  startSheep,
  type StartSheepOptions,
  tempDir,
  waitUntil,
  withDeadline,
} from "./harness/mod.ts";
import { type SheepAddress, SheepClient } from "../core/net/client.ts";
import { SdReq } from "../core/proto/header.ts";
import { vidToDataOid, vidToVdiOid } from "../core/hash/oid.ts";

const PUBLIC_VER = 0x02;
const SHEEP_VER = 0x0a;
const OP_CREATE_AND_WRITE_OBJ = 0x01;
const OP_READ_OBJ = 0x02;
const OP_WRITE_OBJ = 0x03;
const OP_NEW_VDI = 0x11;
const OP_GET_CLUSTER_DEFAULT = 0x18;
const OP_MAKE_FS = 0x84;
const OP_SHUTDOWN = 0x85;
const OP_STAT_CLUSTER = 0x87;
const OP_CLUSTER_INFO = 0xbe;
const FLAG_CMD_WRITE = 0x0001;
const RES_SUCCESS = 0x00;
const RES_INVALID_PARMS = 0x05;
const RES_WAIT_FOR_FORMAT = 0x16;

const OBJ_SIZE = 4 * 1024 * 1024;
const INODE_HEADER_SIZE = 4664;
const CLUSTER_INFO_SIZE = 491_568;

const EXIT_DEADLINE_MS = 20_000;

// ------------------------------------------------------------------------------------------------
// Helpers

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function name256(name: string): Uint8Array {
  const b = new Uint8Array(256);
  b.set(new TextEncoder().encode(name));
  return b;
}

async function connect(addr: SheepAddress): Promise<SheepClient> {
  return await SheepClient.connect(addr, { requestTimeoutMs: 20_000, connectTimeoutMs: 5_000 });
}

function tcp(port: number): SheepAddress {
  return { host: "127.0.0.1", port };
}

/** MAKE_FS with one copy, as `dog cluster format -c 1` sends it. */
async function format(c: SheepClient): Promise<void> {
  const payload = new TextEncoder().encode("plain\0");
  const req = SdReq.of(OP_MAKE_FS, SHEEP_VER, {
    flags: FLAG_CMD_WRITE,
    dataLength: payload.length,
  });
  req.cluster.ctime = BigInt(Math.floor(Date.now() / 1000)) << 32n;
  req.cluster.copies = 1;
  req.cluster.flags = 0x0004;
  const { rsp } = await c.request(req, payload);
  assert.equal(rsp.result, RES_SUCCESS, `MAKE_FS: result ${hex(rsp.result)}`);
}

/** NEW_VDI (copies 1) → vid. */
async function newVdi(c: SheepClient, name: string, size: bigint): Promise<number> {
  const req = SdReq.of(OP_NEW_VDI, PUBLIC_VER, { flags: FLAG_CMD_WRITE, dataLength: 256 });
  req.vdi.vdiSize = size;
  req.vdi.copies = 1;
  const { rsp } = await c.request(req, name256(name));
  assert.equal(rsp.result, RES_SUCCESS, `NEW_VDI ${name}: result ${hex(rsp.result)}`);
  return rsp.vdi.vdiId;
}

/** Creates data objects 0..n-1 of `vid` with `objs[i]` and points the inode at them. */
async function writeObjects(c: SheepClient, vid: number, objs: Uint8Array[]): Promise<void> {
  for (let idx = 0; idx < objs.length; idx++) {
    const req = SdReq.of(OP_CREATE_AND_WRITE_OBJ, PUBLIC_VER, {
      flags: FLAG_CMD_WRITE,
      dataLength: objs[idx].length,
    });
    req.obj.oid = vidToDataOid(vid, idx);
    const { rsp } = await c.request(req, objs[idx]);
    assert.equal(rsp.result, RES_SUCCESS, `CREATE_AND_WRITE_OBJ ${idx}: ${hex(rsp.result)}`);
  }
  const index = new Uint8Array(4 * objs.length);
  for (let i = 0; i < objs.length; i++) new DataView(index.buffer).setUint32(4 * i, vid, true);
  const w = SdReq.of(OP_WRITE_OBJ, PUBLIC_VER, { flags: FLAG_CMD_WRITE, dataLength: index.length });
  w.obj.oid = vidToVdiOid(vid);
  w.obj.offset = INODE_HEADER_SIZE;
  const { rsp } = await c.request(w, index);
  assert.equal(rsp.result, RES_SUCCESS, `inode index write: ${hex(rsp.result)}`);
}

async function readObj(
  c: SheepClient,
  oid: bigint,
  offset: number,
  len: number,
): Promise<Uint8Array> {
  const req = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: len });
  req.obj.oid = oid;
  req.obj.offset = offset;
  const { rsp, data } = await c.request(req);
  assert.equal(rsp.result, RES_SUCCESS, `READ_OBJ ${oid.toString(16)}: ${hex(rsp.result)}`);
  return data;
}

/** Reads objects 0..n-1 of `vid` and compares them with `objs`. */
async function assertObjects(c: SheepClient, vid: number, objs: Uint8Array[], when: string) {
  for (let idx = 0; idx < objs.length; idx++) {
    const got = await readObj(c, vidToDataOid(vid, idx), 0, objs[idx].length);
    assert.ok(equalBytes(got, objs[idx]), `data object ${idx} differs ${when}`);
  }
  const index = await readObj(c, vidToVdiOid(vid), INODE_HEADER_SIZE, 4 * objs.length);
  for (let i = 0; i < objs.length; i++) {
    assert.equal(
      new DataView(index.buffer).getUint32(4 * i, true),
      vid,
      `inode entry ${i} ${when}`,
    );
  }
}

/** The cluster epoch and status from CLUSTER_INFO. */
async function clusterInfo(
  c: SheepClient,
): Promise<{ epoch: number; status: number; ctime: bigint }> {
  const req = SdReq.of(OP_CLUSTER_INFO, SHEEP_VER, { dataLength: CLUSTER_INFO_SIZE });
  const { rsp, data } = await c.request(req);
  assert.equal(rsp.result, RES_SUCCESS, `CLUSTER_INFO: ${hex(rsp.result)}`);
  const v = new DataView(data.buffer, data.byteOffset, data.length);
  return { epoch: v.getUint32(4, true), status: v.getUint8(20), ctime: v.getBigUint64(8, true) };
}

/** STAT_CLUSTER's result code: the cluster state (SUCCESS = running). */
async function statCluster(c: SheepClient): Promise<number> {
  const req = SdReq.of(OP_STAT_CLUSTER, SHEEP_VER, { dataLength: 16 * (48 + 80 * 8) });
  req.cluster.nodesNr = 8;
  return (await c.request(req)).rsp.result;
}

function epochFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(`${dir}/epoch`)].map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Waits for a sheep to exit by itself; fails (after SIGKILL) when it does not in time. */
async function exitedWithin(
  s: SheepProcess,
  ms: number,
  what: string,
): Promise<Deno.CommandStatus> {
  const r = await withDeadline(s.exited, ms);
  if (!r.ok) {
    await s.kill();
    assert.fail(`${what}: the sheep did not exit within ${ms} ms\n${s.process.logTail()}`);
  }
  return r.value;
}

/** A started and ready sheep on a private local-driver path. */
async function sheepAt(
  root: string,
  opts: Partial<StartSheepOptions> & { dir?: string } = {},
): Promise<SheepProcess> {
  const s = startSheep({
    dir: `${root}/store`,
    zone: 0,
    cluster: `local:${root}/cluster`,
    ...opts,
  });
  try {
    await s.waitReady();
  } catch (e) {
    await s.stop();
    throw e;
  }
  return s;
}

/** True while a process with this pid exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function cmdlineOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** Runs `sheepdog sheep ARGS…` to completion with a deadline. */
function runSheep(args: string[], deadlineMs = 60_000): Promise<RunResult> {
  const [cmd, ...pre] = sheepdogCommand();
  return run(cmd, [...pre, "sheep", ...args], { deadlineMs });
}

// ------------------------------------------------------------------------------------------------
// A raw connection, for requests whose replies we deliberately do not read yet.

class Raw {
  readonly conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(b: Uint8Array): Promise<void> {
    let off = 0;
    while (off < b.length) off += await this.conn.write(b.subarray(off));
  }

  /** Exactly n bytes; throws on EOF or after `ms`. */
  async readExact(n: number, ms: number): Promise<Uint8Array> {
    const end = Date.now() + ms;
    const chunk = new Uint8Array(1 << 20);
    while (this.#buf.length < n) {
      const r = await withDeadline(this.conn.read(chunk), Math.max(1, end - Date.now()));
      if (!r.ok) throw new Error(`only ${this.#buf.length} of ${n} bytes within ${ms} ms`);
      if (r.value === null) {
        throw new Error(`connection closed after ${this.#buf.length} of ${n} bytes`);
      }
      const next = new Uint8Array(this.#buf.length + r.value);
      next.set(this.#buf);
      next.set(chunk.subarray(0, r.value), this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

// ------------------------------------------------------------------------------------------------

Deno.test({
  name:
    "sheep: SIGTERM finishes the requests in flight, exits 0, and a restart serves the same data",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-term");
    const port = freePort();
    // No -n: the write in flight must be durable when the sheep says it is done.
    let s = await sheepAt(tmp.path, { port });
    let raw: Raw | null = null;
    try {
      const objs = [randomBytes(OBJ_SIZE), randomBytes(OBJ_SIZE)];
      let vid: number;
      let epochBefore: number;
      {
        const c = await connect(tcp(port));
        try {
          await format(c);
          vid = await newVdi(c, "persist", 64n << 20n);
          await writeObjects(c, vid, objs);
          epochBefore = (await clusterInfo(c)).epoch;
        } finally {
          c.close();
        }
      }

      // One write and sixteen 4 MiB reads in one go; we read only the first reply header before
      // SIGTERM, so the sheep still has ~64 MiB of replies to push when the signal arrives.
      const patch = randomBytes(65536);
      const reqs: Uint8Array[] = [];
      const w = SdReq.of(OP_WRITE_OBJ, PUBLIC_VER, {
        flags: FLAG_CMD_WRITE,
        dataLength: patch.length,
        id: 1000,
      });
      w.obj.oid = vidToDataOid(vid, 0);
      w.obj.offset = 1 << 20;
      reqs.push(w.bytes.slice(), patch);
      for (let i = 0; i < 16; i++) {
        const r = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: OBJ_SIZE, id: i + 1 });
        r.obj.oid = vidToDataOid(vid, 1);
        reqs.push(r.bytes.slice());
      }
      raw = await Raw.open(port);
      const all = new Uint8Array(reqs.reduce((n, b) => n + b.length, 0));
      let off = 0;
      for (const b of reqs) {
        all.set(b, off);
        off += b.length;
      }
      await raw.send(all);
      const firstHdr = await raw.readExact(48, 10_000);
      assert.ok(s.signal("SIGTERM"), "SIGTERM sent");
      await sleep(300);

      const seen = new Set<number>();
      let hdr = firstHdr;
      for (let n = 0; n < 17; n++) {
        if (n > 0) hdr = await raw.readExact(48, 15_000);
        const v = new DataView(hdr.buffer, hdr.byteOffset, 48);
        const id = v.getUint32(8, true);
        const len = v.getUint32(12, true);
        const result = v.getUint32(16, true);
        assert.equal(
          result,
          RES_SUCCESS,
          `request ${id} in flight at SIGTERM: result ${hex(result)}`,
        );
        assert.ok(!seen.has(id), `id ${id} answered twice`);
        seen.add(id);
        const data = await raw.readExact(len, 15_000).catch((e) => {
          throw new Error(`reply ${id} (${len} bytes) cut short after SIGTERM: ${e.message}`);
        });
        if (id === 1000) assert.equal(len, 0);
        else assert.ok(equalBytes(data, objs[1]), `reply ${id} payload`);
      }
      assert.equal(seen.size, 17);
      raw.close();
      raw = null;

      const st = await exitedWithin(s, EXIT_DEADLINE_MS, "SIGTERM");
      assert.equal(st.signal, null, `sheep died of ${st.signal}`);
      assert.equal(st.code, 0, `exit code after SIGTERM\n${s.process.logTail()}`);
      assert.ok(canBind(port), "port still bound after exit");

      // Restart on the same directory and port: same data, including the write that was in
      // flight at SIGTERM.
      objs[0].set(patch, 1 << 20);
      s = await sheepAt(tmp.path, { port });
      const c = await connect(tcp(port));
      try {
        await waitUntil(async () => (await statCluster(c)) === RES_SUCCESS, 15_000, "cluster up");
        await assertObjects(c, vid, objs, "after a SIGTERM restart");
        const after = await clusterInfo(c);
        assert.ok(
          after.epoch >= epochBefore,
          `epoch went back from ${epochBefore} to ${after.epoch}`,
        );
      } finally {
        c.close();
      }
      const st2 = await s.stop();
      assert.equal(st2.code, 0);
    } finally {
      raw?.close();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "sheep: SHUTDOWN (0x85) stops the sheep with exit 0; the restart comes back without a new epoch",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-shutdown");
    const port = freePort();
    const dir = `${tmp.path}/store`;
    let s = await sheepAt(tmp.path, { port, extraArgs: ["-n"] });
    try {
      const objs = [randomBytes(OBJ_SIZE)];
      let vid: number;
      let before: { epoch: number; ctime: bigint };
      const c = await connect(tcp(port));
      try {
        await format(c);
        vid = await newVdi(c, "across-shutdown", 16n << 20n);
        await writeObjects(c, vid, objs);
        before = await clusterInfo(c);
        const req = SdReq.of(OP_SHUTDOWN, SHEEP_VER);
        const { rsp } = await c.request(req);
        assert.equal(rsp.result, RES_SUCCESS, `SHUTDOWN: ${hex(rsp.result)}`);
      } finally {
        c.close();
      }
      const filesBefore = epochFiles(dir);
      assert.ok(filesBefore.length > 0, "no epoch files after format");

      const st = await exitedWithin(s, EXIT_DEADLINE_MS, "SHUTDOWN");
      assert.equal(st.code, 0, `exit code after SHUTDOWN\n${s.process.logTail()}`);
      assert.ok(canBind(port), "port still bound after the shutdown");

      s = await sheepAt(tmp.path, { port, extraArgs: ["-n"] });
      const c2 = await connect(tcp(port));
      try {
        await waitUntil(async () => (await statCluster(c2)) === RES_SUCCESS, 15_000, "cluster up");
        const after = await clusterInfo(c2);
        assert.equal(after.epoch, before.epoch, "the restart after a shutdown made a new epoch");
        assert.equal(after.ctime, before.ctime, "the cluster creation time changed");
        assert.deepEqual(epochFiles(dir), filesBefore, "epoch files changed across the shutdown");
        await assertObjects(c2, vid, objs, "after shutdown and restart");
      } finally {
        c2.close();
      }
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "sheep: a second sheep on the same DIR refuses to start and the first is unaffected",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-lock");
    const port = freePort();
    const dir = `${tmp.path}/store`;
    const s = await sheepAt(tmp.path, { port, extraArgs: ["-n"] });
    try {
      const objs = [randomBytes(OBJ_SIZE)];
      let vid: number;
      {
        const c = await connect(tcp(port));
        try {
          await format(c);
          vid = await newVdi(c, "locked", 8n << 20n);
          await writeObjects(c, vid, objs);
        } finally {
          c.close();
        }
      }
      const port2 = freePort();
      const r = await runSheep([
        "-f",
        "-p",
        String(port2),
        "-b",
        "127.0.0.1",
        "-c",
        `local:${tmp.path}/cluster`,
        "-n",
        dir,
      ], 30_000);
      assert.ok(!r.timedOut, "the second sheep kept running (it must refuse at once)");
      assert.notEqual(r.code, 0, "the second sheep exited 0");
      assert.match(r.stderrText, /in use|lock/i, `unclear message: ${r.stderrText}`);
      assert.ok(canBind(port2), "the second sheep left its port bound");
      assert.ok(s.running, "the first sheep died");
      // The first still serves over TCP and over its UNIX socket (the second did not remove it).
      for (const addr of [tcp(port), { path: `${dir}/sock` }]) {
        const c = await connect(addr);
        try {
          await assertObjects(c, vid, objs, "after the second sheep was refused");
        } finally {
          c.close();
        }
      }
      const st = await s.stop();
      assert.equal(st.code, 0);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "sheep: bad command lines print a message and the usage, exit non-zero, and start nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-args");
    const cases: { args: string[]; message: RegExp }[] = [
      { args: ["--no-such-option"], message: /unknown option/i },
      { args: ["-x"], message: /unknown option/i },
      { args: ["-p", "70000"], message: /port/i },
      { args: ["-p", "abc"], message: /port/i },
      { args: ["-p", "0"], message: /port/i },
      { args: ["-p"], message: /argument missing|port/i },
      { args: ["-l", "level=loud"], message: /log level/i },
      { args: ["-l", "colour=red"], message: /log|colour/i },
      { args: ["-l", "format=xml"], message: /format/i },
      { args: ["-c", "nosuchdriver"], message: /driver/i },
      { args: ["-z", "zone-a"], message: /zone/i },
      { args: ["-b", "999.1.1.1"], message: /address/i },
      { args: ["-y", "not-an-ip"], message: /address/i },
    ];
    const pending: Promise<void>[] = [];
    const check = async (i: number, args: string[], message: RegExp, extraPositional: string[]) => {
      const dir = `${tmp.path}/store${i}`;
      const pidFile = `${tmp.path}/pid${i}`;
      const port = freePort();
      // Without -f: a command line that were wrongly accepted would daemonize and bind the port.
      const argv = [
        "-p",
        String(port),
        "-b",
        "127.0.0.1",
        "-c",
        `local:${tmp.path}/cluster`,
        "-P",
        pidFile,
        ...args,
        dir,
        ...extraPositional,
      ];
      let r: RunResult | null = null;
      try {
        r = await runSheep(argv, 30_000);
        const what = `sheep ${argv.join(" ")}`;
        assert.ok(!r.timedOut, `${what}: did not exit`);
        assert.notEqual(r.code, 0, `${what}: exit 0`);
        assert.match(r.stderrText, message, `${what}: message\n${r.stderrText}`);
        assert.match(r.stderrText, /usage/i, `${what}: no usage on stderr\n${r.stderrText}`);
        assert.equal(r.stdoutText, "", `${what}: wrote to stdout`);
        assert.ok(!exists(dir), `${what}: created the store directory`);
        assert.ok(!exists(pidFile), `${what}: wrote a pid file`);
        assert.ok(canBind(port), `${what}: left port ${port} bound`);
      } finally {
        // A wrongly started daemon is stopped by the pid it wrote (checked to be ours).
        if (exists(pidFile)) {
          const pid = Number(Deno.readTextFileSync(pidFile).trim());
          if (pid > 1 && cmdlineOf(pid).includes(dir)) Deno.kill(pid, "SIGKILL");
        }
      }
    };
    for (let i = 0; i < cases.length; i++) {
      pending.push(check(i, cases[i].args, cases[i].message, []));
      if (pending.length === 4) await Promise.all(pending.splice(0));
    }
    pending.push(check(cases.length, [], /too many|argument/i, ["extra-argument"]));
    await Promise.all(pending);
  },
});

Deno.test({
  name:
    "sheep: without -f it daemonizes; the parent exits 0 once the child serves; -P names the child",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-daemon");
    const port = freePort();
    const dir = `${tmp.path}/store`;
    const pidFile = `${tmp.path}/sheep.pid`;
    let pid = 0;
    try {
      const r = await runSheep([
        "-p",
        String(port),
        "-b",
        "127.0.0.1",
        "-c",
        `local:${tmp.path}/cluster`,
        "-n",
        "-P",
        pidFile,
        dir,
      ], 60_000);
      if (exists(pidFile)) pid = Number(Deno.readTextFileSync(pidFile).trim());
      assert.ok(!r.timedOut, "the parent did not exit");
      assert.equal(r.code, 0, `parent exit code\n${r.stderrText}`);
      // The child already serves when the parent returns.
      assert.ok(await isListening(port), "nothing listens once the parent has exited");
      await waitUntil(() => exists(pidFile), 5_000, "the pid file");
      pid = Number(Deno.readTextFileSync(pidFile).trim());
      assert.ok(Number.isInteger(pid) && pid > 1, `pid file holds '${pid}'`);
      assert.ok(alive(pid), `daemon pid ${pid} is not running`);
      assert.ok(cmdlineOf(pid).includes(dir), `pid ${pid} is not our sheep: ${cmdlineOf(pid)}`);
      const c = await connect(tcp(port));
      try {
        assert.equal(await statCluster(c), RES_WAIT_FOR_FORMAT, "an unformatted daemon answers");
        await format(c);
        assert.equal(await statCluster(c), RES_SUCCESS);
      } finally {
        c.close();
      }
      Deno.kill(pid, "SIGTERM");
      await waitUntil(() => !alive(pid), EXIT_DEADLINE_MS, "the daemon to exit after SIGTERM");
      await waitUntil(() => !exists(pidFile), 5_000, "the pid file to be removed");
      pid = 0;
      assert.ok(canBind(port), "port still bound after the daemon exited");
    } finally {
      if (pid > 1 && alive(pid) && cmdlineOf(pid).includes(dir)) Deno.kill(pid, "SIGKILL");
    }
  },
});

Deno.test({
  name: "sheep: -P writes the pid file, and a clean exit removes it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-pid");
    const pidFile = `${tmp.path}/run/sheep.pid`;
    await Deno.mkdir(`${tmp.path}/run`);
    const s = await sheepAt(tmp.path, { pidFile, extraArgs: ["-n"] });
    try {
      await waitUntil(() => exists(pidFile), 5_000, "the pid file");
      assert.equal(Deno.readTextFileSync(pidFile).trim(), String(s.pid));
      const st = await s.stop();
      assert.equal(st.code, 0);
      assert.ok(!exists(pidFile), "pid file left behind after a clean exit");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "sheep: -l dir=D,level=debug,format=json writes JSON lines to D/sheep.log",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-log");
    const logDir = `${tmp.path}/logs`;
    const dir = `${tmp.path}/store`;
    const s = await sheepAt(tmp.path, {
      extraArgs: ["-n", "-l", `dir=${logDir},level=debug,format=json`],
    });
    try {
      const c = await connect(tcp(s.port));
      try {
        // Failing requests are logged at debug level.
        const bad = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: 512 });
        bad.obj.oid = vidToDataOid(1, 0);
        assert.equal((await c.request(bad)).rsp.result, RES_WAIT_FOR_FORMAT);
        await format(c);
        const bad2 = SdReq.of(OP_READ_OBJ, PUBLIC_VER, { dataLength: OBJ_SIZE + 1 });
        bad2.obj.oid = vidToDataOid(1, 0);
        assert.equal((await c.request(bad2)).rsp.result, RES_INVALID_PARMS);
        assert.equal((await c.request(SdReq.of(OP_GET_CLUSTER_DEFAULT, PUBLIC_VER))).rsp.result, 0);
      } finally {
        c.close();
      }
      const st = await s.stop();
      assert.equal(st.code, 0);
      const text = Deno.readTextFileSync(`${logDir}/sheep.log`);
      const lines = text.split("\n").filter((l) => l.length > 0);
      assert.ok(lines.length >= 3, `only ${lines.length} log lines`);
      const levels = new Set<string>();
      for (const l of lines) {
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(l);
        } catch {
          assert.fail(`not a JSON line: ${l}`);
        }
        assert.equal(typeof rec.message, "string", `no message: ${l}`);
        assert.equal(typeof rec.level, "string", `no level: ${l}`);
        assert.ok(typeof rec["@timestamp"] === "string" || typeof rec.timestamp === "string", l);
        levels.add(String(rec.level).toLowerCase());
      }
      assert.ok(levels.has("debug"), `no debug record with level=debug: ${[...levels]}`);
      assert.ok(levels.has("info"), `no info record: ${[...levels]}`);
      assert.ok(
        !exists(`${dir}/sheep.log`) || Deno.statSync(`${dir}/sheep.log`).size === 0,
        "the log also went to DIR/sheep.log",
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "sheep: the UNIX socket DIR/sock serves the protocol like TCP",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tmp = await tempDir("life-unix");
    const dir = `${tmp.path}/store`;
    const s = await sheepAt(tmp.path, { extraArgs: ["-n"] });
    try {
      assert.ok(Deno.lstatSync(`${dir}/sock`).isSocket, "DIR/sock is not a socket");
      const objs = [randomBytes(OBJ_SIZE), randomBytes(OBJ_SIZE)];
      const u = await connect({ path: `${dir}/sock` });
      let vid: number;
      try {
        await format(u);
        vid = await newVdi(u, "over-unix", 32n << 20n);
        await writeObjects(u, vid, objs);
        // pipelined over the socket
        const reads = await Promise.all(
          Array.from(
            { length: 16 },
            (_, i) => readObj(u, vidToDataOid(vid, i % 2), i * 4096, 4096),
          ),
        );
        reads.forEach((d, i) =>
          assert.ok(equalBytes(d, objs[i % 2].subarray(i * 4096, (i + 1) * 4096)), `read ${i}`)
        );
      } finally {
        u.close();
      }
      const t = await connect(tcp(s.port));
      try {
        await assertObjects(t, vid, objs, "over TCP after writes over the UNIX socket");
      } finally {
        t.close();
      }
      const st = await s.stop();
      assert.equal(st.code, 0);
    } finally {
      await s.stop();
    }
  },
});
