import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { makeNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import {
  type ContractEvent,
  type ContractMember,
  type DriverFactory,
  InProcessMember,
  wallMs,
} from "./contract_member.ts";
import { ProcessMember } from "./contract_process.ts";
import { runDriverContract } from "./contract_test_suite.ts";
import type { ClusterHandlers } from "./driver.ts";
import {
  DEFAULT_LOCAL_PATH,
  LocalDriver,
  type LocalDriverOptions,
  localPathOption,
  probeTargets,
} from "./local.ts";
import { LocalLog, localPaths } from "./local_log.ts";
import { MemberHold, MemberSocket, memberSocketPath, probe } from "./local_liveness.ts";

const SCRIPT = new URL("./testdata/local_member.ts", import.meta.url).pathname;

/** A cluster whose members are local driver processes sharing a private temp PATH. */
async function localCluster(
  opts: LocalDriverOptions = {},
): Promise<DriverFactory & { path: string; members: ProcessMember[] }> {
  const dir = await Deno.makeTempDir({ prefix: "sdlocal" });
  const path = `${dir}/cluster`;
  const members: ProcessMember[] = [];
  return {
    path,
    members,
    async start(port: number): Promise<ContractMember> {
      const m = await ProcessMember.spawn(SCRIPT, port, [path, JSON.stringify(opts)]);
      members.push(m);
      return m;
    },
    async close(): Promise<void> {
      await Promise.all(members.map((m) => m.close()));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

runDriverContract("local", () => localCluster());

/** Reports measured figures when SD_TIMING is set (they go into reports, not assertions). */
function report(what: string, value: unknown): void {
  if (Deno.env.get("SD_TIMING")) console.log(`${what}:`, value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * SIGKILLs the first `count` members one at a time (the master first); for each, the ms from the
 * kill to the last survivor's onLeave of it.
 */
async function killInTurn(ms: ContractMember[], count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let k = 0; k < count; k++) {
    const victim = ms[k];
    const rest = ms.slice(k + 1);
    const t0 = wallMs();
    await victim.kill();
    await waitFor(
      () => rest.every((m) => leaveOf(m, victim) !== undefined),
      `leave of ${victim.label}`,
    );
    latencies.push(Math.round(Math.max(...rest.map((m) => leaveOf(m, victim)!.t)) - t0));
  }
  return latencies;
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

const deliveries = (m: ContractMember) =>
  m.events.filter((e) => e.kind !== "check" && e.kind !== "lost").map((e) =>
    JSON.stringify({ ...e, t: 0 })
  );
const notifies = (m: ContractMember) => m.events.flatMap((e) => e.kind === "notify" ? [e.msg] : []);
const leaveOf = (m: ContractMember, who: ContractMember): ContractEvent | undefined =>
  m.events.find((e) => e.kind === "leave" && e.node === who.label);
const membersNow = (m: ContractMember): string[] => {
  for (let i = m.events.length - 1; i >= 0; i--) {
    const e = m.events[i];
    if (e.kind === "accept" || e.kind === "leave" || e.kind === "update_node") return e.members;
  }
  return [];
};

Deno.test("local: the default path is /tmp/sheepdog_local and -c local:PATH overrides it", () => {
  assert.equal(DEFAULT_LOCAL_PATH, "/tmp/sheepdog_local");
  assert.equal(localPathOption(undefined), DEFAULT_LOCAL_PATH);
  assert.equal(localPathOption(""), DEFAULT_LOCAL_PATH);
  assert.equal(localPathOption("/var/tmp/c1"), "/var/tmp/c1");
  assert.equal(new LocalDriver().path, DEFAULT_LOCAL_PATH);
  assert.deepEqual(localPaths("/x/c"), { log: "/x/c", lock: "/x/c.lock", dir: "/x/c.d" });
});

Deno.test("local: each member probes its successors in id order, so every member is probed", () => {
  assert.deepEqual(probeTargets("c", ["a", "b", "d", "e"], 3), ["d", "e", "a"]);
  assert.deepEqual(probeTargets("e", ["a", "b", "c", "d"], 3), ["a", "b", "c"]);
  assert.deepEqual(probeTargets("a", ["b"], 3), ["b"]);
  assert.deepEqual(probeTargets("a", [], 3), []);
  const ids = Array.from({ length: 10 }, (_, i) => `id${i}`);
  const probedBy = new Map<string, number>();
  for (const me of ids) {
    for (const t of probeTargets(me, ids.filter((x) => x !== me), 3)) {
      probedBy.set(t, (probedBy.get(t) ?? 0) + 1);
    }
  }
  for (const id of ids) assert.equal(probedBy.get(id), 3);
});

Deno.test("local: ten processes started at the same instant all join and agree on the order", async () => {
  const f = await localCluster();
  try {
    const t0 = performance.now();
    const ms = await Promise.all(Array.from({ length: 10 }, (_, i) => f.start(7100 + i)));
    const t1 = performance.now();
    await Promise.all(ms.map((m, i) => m.join(`j${i}`)));
    const t2 = performance.now();
    await waitFor(() => ms.every((m) => membersNow(m).length === 10), "10 members everywhere");
    report("10 processes: spawn+init ms", Math.round(t1 - t0));
    report("10 processes: join (all 10 resolved) ms", Math.round(t2 - t1));
    // One sequence: each member's deliveries are the first member's from its own accept on.
    const ref = ms.reduce((x, y) => deliveries(y).length > deliveries(x).length ? y : x);
    const all = deliveries(ref);
    assert.equal(all.length, 10);
    for (const m of ms) {
      const mine = deliveries(m);
      assert.deepEqual(mine, all.slice(all.length - mine.length));
    }
    const checks = ms.flatMap((m) => m.events.filter((e) => e.kind === "check"));
    assert.equal(checks.length, 9, "nine checks, all by the first member");
    assert.equal(ms.filter((m) => m.events.some((e) => e.kind === "check")).length, 1);
  } finally {
    await f.close();
  }
});

Deno.test("local: a member killed with SIGKILL is seen gone by all others within a second or so", async () => {
  const f = await localCluster();
  try {
    const ms = await Promise.all(Array.from({ length: 6 }, (_, i) => f.start(7200 + i)));
    for (const [i, m] of ms.entries()) await m.join(`m${i}`);
    await waitFor(() => ms.every((m) => membersNow(m).length === 6), "6 members");
    const latencies = await killInTurn(ms, 4);
    report("SIGKILL detection ms (last member to deliver onLeave)", latencies);
    for (const l of latencies) assert.ok(l < 3000, `detection took ${l} ms`);
    const rest = ms.slice(4);
    for (const m of rest) assert.deepEqual(membersNow(m), rest.map((x) => `${x.label}/128`));
  } finally {
    await f.close();
  }
});

Deno.test("local: a SIGKILLed member is seen gone through the connections held to it, not only by the timed probes", async () => {
  // Timed probe rounds every 10 minutes: only the held connections can reveal the death in time.
  const f = await localCluster({ probeMs: 600_000 });
  try {
    const ms = await Promise.all(Array.from({ length: 4 }, (_, i) => f.start(7250 + i)));
    for (const [i, m] of ms.entries()) await m.join(`m${i}`);
    await waitFor(() => ms.every((m) => membersNow(m).length === 4), "4 members");
    const latencies = await killInTurn(ms, 2);
    report("SIGKILL detection ms through held connections", latencies);
    for (const l of latencies) assert.ok(l < 3000, `detection took ${l} ms`);
    const rest = ms.slice(2);
    for (const m of rest) assert.deepEqual(membersNow(m), rest.map((x) => `${x.label}/128`));
  } finally {
    await f.close();
  }
});

Deno.test("local: a held connection ends when its member closes its socket, not when it is closed from the holder's side", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdlocal" });
  try {
    const sock = MemberSocket.listen(dir, "a");
    let ends = 0;
    const own = new MemberHold(memberSocketPath(dir, "a"), () => ends++);
    const other = new MemberHold(memberSocketPath(dir, "a"), () => ends++);
    await sleep(50);
    await own.close();
    assert.equal(ends, 0);
    assert.equal(own.ended, false);
    assert.equal(await probe(memberSocketPath(dir, "a"), 1000), "alive");
    await sock.close();
    await waitFor(() => ends === 1, "the end of the hold");
    assert.equal(other.ended, true);
    await other.close();
    assert.equal(ends, 1);
    let gone = 0;
    const late = new MemberHold(memberSocketPath(dir, "a"), () => gone++);
    await waitFor(() => gone === 1, "the end of a hold that could not connect");
    await late.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local: two clusters with different paths never see each other", async () => {
  const f1 = await localCluster();
  const f2 = await localCluster();
  try {
    const [a1, b1, a2, b2] = await Promise.all([
      f1.start(7300),
      f1.start(7301),
      f2.start(7300),
      f2.start(7301),
    ]);
    await Promise.all([a1.join("one"), a2.join("two")]);
    await Promise.all([b1.join("one"), b2.join("two")]);
    await Promise.all([a1.notify("to-one"), a2.notify("to-two")]);
    await waitFor(() => [a1, b1, a2, b2].every((m) => notifies(m).length === 1), "one notify each");
    assert.deepEqual(notifies(b1), ["to-one"]);
    assert.deepEqual(notifies(b2), ["to-two"]);
    for (const m of [a1, b1, a2, b2]) assert.equal(membersNow(m).length, 2);
    assert.ok(a1.events.some((e) => e.kind === "check"), "each cluster has its own master");
    assert.ok(a2.events.some((e) => e.kind === "check"));
  } finally {
    await f1.close();
    await f2.close();
  }
});

Deno.test("local: a node restarted on its address right after SIGKILL rejoins cleanly", async () => {
  const f = await localCluster();
  try {
    const [a, b] = await Promise.all([f.start(7400), f.start(7401)]);
    await a.join("a");
    await b.join("b");
    await b.kill();
    // Restart at once: its old incarnation is most likely still listed.
    const b2 = await f.start(7401);
    await b2.join("b2");
    await waitFor(() => membersNow(a).length === 2 && leaveOf(a, b) !== undefined, "b replaced");
    const seq = a.events.filter((e) => e.kind !== "check").map((e) =>
      `${e.kind} ${"node" in e ? e.node : ""}`
    );
    assert.deepEqual(seq, [
      "accept 127.0.0.1:7400",
      "accept 127.0.0.1:7401",
      "leave 127.0.0.1:7401",
      "accept 127.0.0.1:7401",
    ]);
    assert.deepEqual(membersNow(b2), ["127.0.0.1:7400/128", "127.0.0.1:7401/128"]);
    // And again after the death was detected.
    await b2.kill();
    await waitFor(() => membersNow(a).length === 1, "b2's leave");
    const b3 = await f.start(7401);
    await b3.join("b3");
    await waitFor(() => membersNow(a).length === 2, "b3 in");
    await b3.notify("hello");
    await waitFor(() => notifies(a).includes("hello"), "b3's notify");
  } finally {
    await f.close();
  }
});

Deno.test("local: a stale log of a dead cluster does not keep a new first node out", async () => {
  const f = await localCluster();
  try {
    const [a, b] = await Promise.all([f.start(7500), f.start(7501)]);
    await a.join("a");
    await b.join("b");
    await Promise.all([a.kill(), b.kill()]);
    const c = await f.start(7502);
    const t0 = performance.now();
    await c.join("c");
    report("join after a dead cluster ms", Math.round(performance.now() - t0));
    assert.deepEqual(deliveries(c).map((s) => JSON.parse(s).members), [["127.0.0.1:7502/128"]]);
    assert.equal(JSON.parse(deliveries(c)[0]).opaque, "c", "accepted as the first node, unchecked");
  } finally {
    await f.close();
  }
});

Deno.test("local: the log stays small and a late joiner starts from its snapshot", async () => {
  const f = await localCluster({ compactBytes: 4096 });
  try {
    const ms = await Promise.all([7600, 7601, 7602].map((p) => f.start(p)));
    for (const m of ms) await m.join("x");
    await Promise.all(ms.map(async (m, i) => {
      for (let k = 0; k < 60; k++) await m.notify(`${i}-${k}-${"p".repeat(40)}`);
    }));
    await waitFor(() => ms.every((m) => notifies(m).length === 180), "every notify");
    const ref = deliveries(ms[0]);
    for (const m of ms.slice(1)) {
      assert.deepEqual(deliveries(m), ref.slice(ref.length - deliveries(m).length));
    }
    const size = (await Deno.stat(f.path)).size;
    assert.ok(size < 4096 * 2, `log is ${size} bytes`);
    const head = JSON.parse((await Deno.readTextFile(f.path)).split("\n")[0]);
    assert.ok(head.base > 0, "compacted");
    const late = await f.start(7603);
    await late.join("late");
    assert.equal(membersNow(late).length, 4);
    assert.deepEqual(notifies(late), []);
  } finally {
    await f.close();
  }
});

Deno.test("local: a torn record left by a killed writer does not disturb the members", async () => {
  const f = await localCluster();
  try {
    const [a, b] = await Promise.all([f.start(7700), f.start(7701)]);
    await a.join("a");
    await b.join("b");
    // A writer that died mid-append: the lock was dropped with it, half a line remains.
    const lock = await Deno.open(localPaths(f.path).lock, { read: true, write: true });
    await lock.lock(true);
    await Deno.writeTextFile(f.path, '{"type":"notify","id":"ghost","msg":"QU', { append: true });
    await lock.unlock();
    lock.close();
    await sleep(50);
    await b.notify("after");
    await waitFor(() => [a, b].every((m) => notifies(m).includes("after")), "'after' everywhere");
    assert.deepEqual(notifies(a), ["after"]);
  } finally {
    await f.close();
  }
});

const quiet: ClusterHandlers = {
  onJoinCheck: (_n, _m, opaque) => ({ accept: true, opaque }),
  onAccept() {},
  onLeave() {},
  onNotify() {},
  onUpdateNode() {},
  onLost() {},
};

Deno.test("local: a live member declared dead by someone else gets onLost", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdlocal" });
  const path = `${dir}/c`;
  const a = await InProcessMember.start(new LocalDriver({ path }), 7800, () => {});
  const db = new LocalDriver({ path });
  const b = await InProcessMember.start(db, 7801, () => {});
  try {
    await a.join("a");
    await b.join("b");
    const log = await LocalLog.open({ path });
    log.start(() => {}, () => ({ seq: 0, members: [], dead: [], queue: [] }));
    await log.append({ type: "leave", id: db.id! });
    log.close();
    await waitFor(() => b.events.some((e) => e.kind === "lost"), "b's onLost");
    await waitFor(() => leaveOf(a, b) !== undefined, "b's leave at a");
    await assert.rejects(
      b.notify("x"),
      (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
    );
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local: close() leaves the cluster and removes the member's socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdlocal" });
  const path = `${dir}/c`;
  const da = new LocalDriver({ path });
  const db = new LocalDriver({ path });
  const left: number[] = [];
  try {
    await da.init({ ...quiet, onLeave: (n) => void left.push(n.nid.port) });
    await db.init(quiet);
    await da.join(makeNode("127.0.0.1", 1), new Uint8Array(0));
    await db.join(makeNode("127.0.0.1", 2), new Uint8Array(0));
    const sock = `${localPaths(path).dir}/${db.id}.sock`;
    assert.ok((await Deno.lstat(sock)).isSocket);
    await db.close();
    await assert.rejects(Deno.lstat(sock), Deno.errors.NotFound);
    await waitFor(() => left.length === 1, "b's leave");
    assert.deepEqual(left, [2]);
  } finally {
    await da.close();
    await db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
