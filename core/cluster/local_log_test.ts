import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { makeNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { EventLog, type RawEvent } from "./event_log.ts";
import { LocalLog, localPaths } from "./local_log.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** A log handle plus a machine fed by it (as the local driver wires them). */
async function reader(path: string, compactBytes?: number) {
  const log = await LocalLog.open({ path, compactBytes });
  const machine = new EventLog(null, log.initialSnapshot);
  const seen: RawEvent[] = [];
  log.start((ev) => {
    seen.push(ev);
    machine.apply(ev);
  }, () => machine.snapshot());
  return { log, machine, seen };
}

async function withDir(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sdlog" });
  try {
    await fn(`${dir}/sub/cluster`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const join = (id: string, port: number): RawEvent => ({
  type: "join",
  id,
  node: makeNode("127.0.0.1", port),
  opaque: te.encode(id),
});
const notify = (id: string, msg: string): RawEvent => ({ type: "notify", id, msg: te.encode(msg) });

Deno.test("a new log starts with an empty cluster header and its sibling files", async () => {
  await withDir(async (path) => {
    const r = await reader(path);
    assert.deepEqual(r.log.initialSnapshot, { seq: 0, members: [], dead: [], queue: [] });
    const p = localPaths(path);
    assert.ok((await Deno.stat(p.lock)).isFile);
    assert.ok((await Deno.stat(p.dir)).isDirectory);
    const text = await Deno.readTextFile(path);
    assert.equal(text.split("\n").length, 2);
    r.log.close();
  });
});

Deno.test("events appended by several handles are read by all in one order", async () => {
  await withDir(async (path) => {
    const rs = await Promise.all([0, 1, 2].map(() => reader(path)));
    await Promise.all(rs.map(async (r, i) => {
      for (let k = 0; k < 30; k++) await r.log.append(notify(`w${i}`, `${i}.${k}`));
    }));
    for (const r of rs) await r.log.read();
    for (const r of rs) {
      assert.equal(r.seen.length, 90);
      assert.deepEqual(r.seen, rs[0].seen);
      assert.equal(r.log.seq, 90);
    }
    for (const r of rs) r.log.close();
  });
});

Deno.test("compaction rewrites the log as a snapshot and readers follow it", async () => {
  await withDir(async (path) => {
    const a = await reader(path, 2000);
    const b = await reader(path, 2000);
    await a.log.append(join("a", 1));
    await a.log.append(join("b", 2));
    await a.log.append({ type: "accept", id: "b", by: "a", opaque: new Uint8Array(0) });
    // b lags behind while a writes a lot (and compacts several times).
    for (let k = 0; k < 200; k++) await a.log.append(notify("a", `message ${k}`));
    assert.ok(a.log.compactions >= 3, `${a.log.compactions} compactions`);
    assert.ok((await Deno.stat(path)).size < 4000);
    // b still holds the first generation, so it was kept; later ones are gone.
    const gens = async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(localPaths(path).dir)) {
        if (e.name.startsWith("log.")) names.push(e.name);
      }
      return names.sort();
    };
    assert.ok((await gens()).includes("log.0"));
    await a.log.read();
    await b.log.read();
    assert.equal(b.seen.length, 203);
    assert.equal(a.seen.length, 203);
    assert.deepEqual(b.machine.snapshot(), a.machine.snapshot());
    // A newcomer starts from the last snapshot.
    const c = await reader(path, 2000);
    assert.ok(c.log.initialSnapshot.seq > 0);
    await c.log.read();
    assert.deepEqual(c.machine.snapshot(), a.machine.snapshot());
    assert.deepEqual(c.machine.members.map((m) => m.id), ["a", "b"]);
    // Once every reader is in the current generation, the next compaction deletes the old ones.
    for (let k = 0; k < 40; k++) await a.log.append(notify("a", `more ${k}`));
    for (const r of [a, b, c]) await r.log.read();
    for (let k = 0; k < 40; k++) await a.log.append(notify("a", `more ${k}`));
    assert.ok((await gens()).length <= 1, `${await gens()}`);
    for (const r of [a, b, c]) await r.log.read();
    for (const r of [b, c]) assert.deepEqual(r.machine.snapshot(), a.machine.snapshot());
    for (const r of [a, b, c]) r.log.close();
  });
});

Deno.test("a torn last line left by a killed writer is cut off by the next writer", async () => {
  await withDir(async (path) => {
    const a = await reader(path);
    await a.log.append(notify("x", "one"));
    await Deno.writeFile(path, te.encode('{"type":"notify","id":"x","ms'), { append: true });
    await a.log.read();
    assert.equal(a.seen.length, 1, "an incomplete line is not read");
    await a.log.append(notify("x", "two"));
    await a.log.read();
    assert.deepEqual(a.seen.map((e) => e.type === "notify" && td.decode(e.msg)), ["one", "two"]);
    assert.ok((await Deno.readTextFile(path)).endsWith("\n"));
    a.log.close();
  });
});

Deno.test("a log whose creator died while writing the header is started afresh", async () => {
  await withDir(async (path) => {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, '{"sheepdog_local_lo');
    const a = await reader(path);
    assert.equal(a.log.initialSnapshot.seq, 0);
    a.log.close();
  });
});

Deno.test("a file that is not a local cluster log is refused with CLUSTER_ERROR", async () => {
  await withDir(async (path) => {
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, "hello\n");
    await assert.rejects(
      LocalLog.open({ path }),
      (e) =>
        e instanceof SdError && e.result === Res.CLUSTER_ERROR && /not a sheepdog/.test(e.message),
    );
  });
});

Deno.test("a corrupt event line makes read() fail with CLUSTER_ERROR", async () => {
  await withDir(async (path) => {
    const a = await reader(path);
    await Deno.writeTextFile(path, '{"type":"nope","id":"x"}\n', { append: true });
    await assert.rejects(
      a.log.read(),
      (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
    );
    a.log.close();
  });
});

Deno.test("append() gives up with CLUSTER_ERROR when the lock is held too long", async () => {
  await withDir(async (path) => {
    const a = await LocalLog.open({ path, lockTimeoutMs: 100 });
    a.start(() => {}, () => new EventLog(null).snapshot());
    const holder = await Deno.open(localPaths(path).lock, { read: true, write: true });
    await holder.lock(true);
    await assert.rejects(
      a.append(notify("x", "y")),
      (e) =>
        e instanceof SdError && e.result === Res.CLUSTER_ERROR && /still locked/.test(e.message),
    );
    await holder.unlock();
    holder.close();
    await a.append(notify("x", "z"));
    a.close();
  });
});
