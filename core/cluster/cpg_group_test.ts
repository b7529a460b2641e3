/**
 * The corosync driver's group logic against a simulated CPG: one agreed order of deliveries and
 * confchgs for every member, as corosync gives it. The driver contract runs on it in-process, and
 * the state transfer's corner cases (the state's sender dying, a group where nobody holds the
 * state, the majority rule) are driven step by step.
 */

import assert from "node:assert/strict";
import { makeNode, type SdNode } from "../proto/node.ts";
import type { ContractMember, DriverFactory } from "./contract_member.ts";
import { InProcessMember } from "./contract_member.ts";
import { runDriverContract } from "./contract_test_suite.ts";
import type { CpgAddress, CpgEvent } from "./cpg_ffi.ts";
import {
  CpgGroupMember,
  decodeMessage,
  encodeEventMessage,
  encodeStateMessage,
} from "./cpg_group.ts";
import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import { emptySnapshot } from "./event_log.ts";

const JOIN = 1, LEAVE = 2, NODEDOWN = 3, PROCDOWN = 5;

interface Proc {
  nodeid: number;
  pid: number;
  receive(item: CpgEvent): void;
}

/** A simulated CPG group: one total order, delivered asynchronously to the members of the moment. */
class SimCpg {
  readonly members: Proc[] = [];
  /** When set, items are held until release() (to interleave events by hand). */
  manual = false;
  #queue: { item: CpgEvent; to: Proc[] }[] = [];
  #scheduled = false;

  #addr(p: Proc, reason: number): CpgAddress {
    return { nodeid: p.nodeid, pid: p.pid, reason };
  }

  join(ps: Proc[]): void {
    this.members.push(...ps);
    this.#push({
      type: "confchg",
      members: this.members.map((m) => this.#addr(m, 0)),
      left: [],
      joined: ps.map((p) => this.#addr(p, JOIN)),
    });
  }

  remove(ps: Proc[], reason: number): void {
    for (const p of ps) {
      const i = this.members.indexOf(p);
      if (i >= 0) this.members.splice(i, 1);
    }
    this.#push({
      type: "confchg",
      members: this.members.map((m) => this.#addr(m, 0)),
      left: ps.map((p) => this.#addr(p, reason)),
      joined: [],
    });
  }

  mcast(from: Proc, msg: Uint8Array): void {
    if (!this.members.includes(from)) throw new Error("not in the group");
    this.#push({ type: "deliver", nodeid: from.nodeid, pid: from.pid, msg: msg.slice() });
  }

  /** Delivers the items held so far (not those they cause). */
  release(): void {
    this.#drain(this.#queue.length);
  }

  /** Forgets the held messages of `p` (it died before they got out). */
  dropFrom(p: Proc): number {
    const before = this.#queue.length;
    this.#queue = this.#queue.filter((q) =>
      !(q.item.type === "deliver" && q.item.nodeid === p.nodeid && q.item.pid === p.pid)
    );
    return before - this.#queue.length;
  }

  /** Delivers `item` to `to` only, now (a view some members get and others do not). */
  deliverTo(to: Proc[], item: CpgEvent): void {
    for (const p of to) p.receive(item);
  }

  /** Forgets every held item. */
  dropAll(): void {
    this.#queue = [];
  }

  /** Items waiting (manual mode). */
  get pending(): CpgEvent[] {
    return this.#queue.map((q) => q.item);
  }

  #push(item: CpgEvent): void {
    this.#queue.push({ item, to: [...this.members] });
    if (this.manual || this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      if (!this.manual) this.#drain();
    }, 0);
  }

  #drain(count = Infinity): void {
    for (let n = 0; n < count && this.#queue.length > 0; n++) {
      const { item, to } = this.#queue.shift()!;
      for (const p of to) p.receive(item);
    }
  }
}

let nextPid = 1000;

/** A ClusterDriver on the simulated group (what corosync.ts is, minus FFI). */
class SimCpgDriver implements ClusterDriver, Proc {
  readonly name = "cpg-sim";
  readonly nodeid: number;
  readonly pid = nextPid++;
  hub: SimCpg;
  member: CpgGroupMember | null = null;
  #dead = false;

  constructor(hub: SimCpg, nodeid = 1) {
    this.hub = hub;
    this.nodeid = nodeid;
  }

  receive(item: CpgEvent): void {
    if (!this.#dead) this.member!.handle(item);
  }

  localAddr(): Uint8Array {
    return new Uint8Array(16);
  }

  /** Opens the member and joins the group; `wait` false returns before the sync. */
  async init(handlers: ClusterHandlers, wait = true): Promise<void> {
    this.member = new CpgGroupMember({
      self: { nodeid: this.nodeid, pid: this.pid },
      me: `${this.nodeid}.${this.pid}`,
      handlers,
      send: (msg) => {
        if (this.#dead) return Promise.reject(new Error("dead"));
        this.hub.mcast(this, msg);
        return Promise.resolve();
      },
      runner: { joinTimeoutMs: 10_000 },
    });
    this.hub.join([this]);
    if (wait) await this.member.whenSynced();
  }

  #runner() {
    const r = this.member?.runner;
    if (!r) throw new Error("not synced");
    return r;
  }
  join(myself: SdNode, opaque: Uint8Array) {
    return this.#runner().join(myself, opaque);
  }
  leave() {
    return this.#runner().leave();
  }
  notify(msg: Uint8Array) {
    return this.#runner().notify(msg);
  }
  block() {
    return this.#runner().block();
  }
  unblock(msg: Uint8Array) {
    return this.#runner().unblock(msg);
  }
  updateNode(node: SdNode) {
    return this.#runner().updateNode(node);
  }

  /** SIGKILL: gone from the group at once (PROCDOWN), no leave of its own. */
  kill(reason = PROCDOWN): void {
    if (this.#dead) return;
    this.#dead = true;
    this.member?.runner?.stop("killed");
    this.hub.remove([this], reason);
  }

  async close(): Promise<void> {
    if (this.#dead) return;
    const r = this.member?.runner;
    if (r && (r.phase === "member" || r.phase === "joining")) await r.leave();
    this.#dead = true;
    r?.stop("closed");
    this.hub.remove([this], LEAVE);
  }
}

function simCluster(): Promise<DriverFactory> {
  const hub = new SimCpg();
  const members: ContractMember[] = [];
  return Promise.resolve({
    async start(port: number): Promise<ContractMember> {
      const d = new SimCpgDriver(hub);
      const m = await InProcessMember.start(d, port, () => d.kill());
      members.push(m);
      return m;
    },
    async close(): Promise<void> {
      await Promise.all(members.map((m) => m.close()));
      // Let the hub deliver the last confchgs (its timers end inside the test).
      await new Promise((r) => setTimeout(r, 10));
    },
  });
}

runDriverContract("cpg (simulated)", simCluster);

/** Handlers that record deliveries as text. */
function recorder(out: string[]): ClusterHandlers {
  return {
    onJoinCheck: (_n, _m, opaque) => ({ accept: true, opaque }),
    onAccept: (n, ms) => void out.push(`accept ${n.nid.port} [${ms.map((m) => m.nid.port)}]`),
    onLeave: (n, ms) => void out.push(`leave ${n.nid.port} [${ms.map((m) => m.nid.port)}]`),
    onNotify: (_s, msg) => void out.push(`notify ${new TextDecoder().decode(msg)}`),
    onUpdateNode: () => {},
    onLost: (reason) => void out.push(`lost ${reason}`),
  };
}

const node = (port: number) => makeNode("127.0.0.1", port);
const te = new TextEncoder();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

Deno.test("cpg group: messages encode and decode; garbage is refused", () => {
  const ev = { type: "notify" as const, id: "a", msg: te.encode("hi") };
  assert.deepEqual(decodeMessage(encodeEventMessage(ev)), { kind: "event", ev });
  const state = {
    logId: "1:2",
    targets: [{ nodeid: 1, pid: 2, joinedAt: 3 }],
    at: 4,
    group: [{ nodeid: 1, pid: 2, joinedAt: 3, synced: false, id: null }],
    log: emptySnapshot(),
  };
  assert.deepEqual(decodeMessage(encodeStateMessage(state)), { kind: "state", state });
  assert.throws(() => decodeMessage(new Uint8Array(0)));
  assert.throws(() => decodeMessage(new Uint8Array([9, 123, 125])));
  assert.throws(() => decodeMessage(new Uint8Array([1, 123])));
});

Deno.test("cpg group: a joiner whose state sender dies gets the state from the next member", async () => {
  const hub = new SimCpg();
  const a = new SimCpgDriver(hub), b = new SimCpgDriver(hub), c = new SimCpgDriver(hub);
  const ea: string[] = [], eb: string[] = [], ec: string[] = [];
  await a.init(recorder(ea));
  await a.join(node(1), new Uint8Array());
  await b.init(recorder(eb));
  await b.join(node(2), new Uint8Array());
  await until(() => ea.length === 2, "b in");
  hub.manual = true;
  const cInit = c.init(recorder(ec));
  hub.release(); // c's join confchg: a, the first synced member, answers with a STATE (held)
  assert.equal(hub.dropFrom(a), 1, "a sent one STATE");
  a.kill(); // a dies before its STATE got out: b is now the first synced member
  hub.manual = false;
  hub.release();
  hub.release();
  await cInit;
  await c.join(node(3), new Uint8Array());
  await until(() => eb.some((s) => s.startsWith("accept 3")), "c accepted");
  assert.deepEqual(ec, ["accept 3 [2,3]"]);
  assert.deepEqual(eb, ["accept 2 [1,2]", "leave 1 [2]", "accept 3 [2,3]"]);
  await Promise.all([b.close(), c.close()]);
});

Deno.test("cpg group: when every member that held the state left, the joiners start a new log", async () => {
  const hub = new SimCpg();
  const a = new SimCpgDriver(hub);
  const ea: string[] = [];
  await a.init(recorder(ea));
  await a.join(node(1), new Uint8Array());
  hub.manual = true;
  const b = new SimCpgDriver(hub), c = new SimCpgDriver(hub);
  const eb: string[] = [], ec: string[] = [];
  const bi = b.init(recorder(eb)), ci = c.init(recorder(ec));
  hub.release(); // b's and c's confchgs; a sends STATEs (held)
  assert.ok(hub.dropFrom(a) >= 1);
  a.kill(); // no STATE ever got out
  hub.manual = false;
  hub.release();
  hub.release();
  await Promise.all([bi, ci]);
  // b's only older member was a: b started a new log, then sent c the state.
  await b.join(node(2), new Uint8Array());
  await c.join(node(3), new Uint8Array());
  await until(() => eb.length >= 2 && ec.length >= 1, "both accepted");
  assert.deepEqual(eb, ["accept 2 [2]", "accept 3 [2,3]"]);
  assert.deepEqual(ec, ["accept 3 [2,3]"]);
  await Promise.all([b.close(), c.close()]);
});

Deno.test("cpg group: members that join in one confchg of an empty group agree on one log", async () => {
  const hub = new SimCpg();
  const ds = [new SimCpgDriver(hub), new SimCpgDriver(hub), new SimCpgDriver(hub)];
  const es: string[][] = [[], [], []];
  // One confchg with all three joined (as after a merge of three lone processes).
  hub.manual = true;
  for (const [i, d] of ds.entries()) await d.init(recorder(es[i]), false);
  hub.dropAll();
  hub.deliverTo(ds, {
    type: "confchg",
    members: ds.map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: 0 })),
    left: [],
    joined: ds.map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: JOIN })),
  });
  hub.manual = false;
  for (const d of ds) assert.ok(d.member!.synced, "synced at the confchg");
  await Promise.all(ds.map((d, i) => d.join(node(i + 1), new Uint8Array())));
  await until(() => es.every((e) => e.at(-1)?.endsWith(",3]") || e.at(-1)?.endsWith(",2]")), "x");
  await until(() => es.every((e) => (e.at(-1) ?? "").split(",").length === 3), "3 accepts");
  const full = es.find((e) => e.length === 3)!;
  for (const e of es) assert.deepEqual(e, full.slice(full.length - e.length));
  await Promise.all(ds.map((d) => d.close()));
});

Deno.test("cpg group: process deaths never trigger the majority rule; a two-node split stops both sides", async () => {
  const hub = new SimCpg();
  // Five processes on three corosync nodes: 1, 2 (two sheep) and 3 (two sheep).
  const ds = [1, 2, 2, 3, 3].map((n) => new SimCpgDriver(hub, n));
  const es: string[][] = ds.map(() => []);
  for (const [i, d] of ds.entries()) {
    await d.init(recorder(es[i]));
    await d.join(node(i + 1), new Uint8Array());
  }
  await until(() => es.every((e) => e.some((s) => s.startsWith("accept 5"))), "all in");
  // A sheep process dying on a live node is not a partition, whatever the count.
  ds[0].kill(PROCDOWN);
  await until(() => es[1].some((s) => s.startsWith("leave 1")), "leave of 1");
  assert.ok(es.slice(1).every((e) => !e.some((s) => s.startsWith("lost"))));
  // Node 3 is cut off: on its side, node 2's processes went down (2 nodes → 1 < majority 2).
  // Simulate the minority's view by delivering node 2's NODEDOWN to node 3's processes only.
  const minority = [ds[3], ds[4]];
  const item: CpgEvent = {
    type: "confchg",
    members: minority.map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: 0 })),
    left: [ds[1], ds[2]].map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: NODEDOWN })),
    joined: [],
  };
  for (const d of minority) d.receive(item);
  await until(() => minority.every((d) => d.member!.lost), "minority lost");
  await until(() => es[3].some((s) => s.startsWith("lost network partition")), "onLost");
  assert.match(es[3].at(-1)!, /this side has 1 of the 2 corosync nodes/);
  // No leave (hence no new epoch) on the minority side: the others are alive over there.
  for (const e of [es[3], es[4]]) {
    assert.ok(!e.some((s) => s.startsWith("leave 2") || s.startsWith("leave 3")), String(e));
  }
  // The majority side (node 2 of nodes {2,3}): 1 of 2 is not a majority either: with two nodes
  // left, a partition stops both sides, as it must (neither can tell it is the bigger one).
  const majorityItem: CpgEvent = {
    type: "confchg",
    members: [ds[1], ds[2]].map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: 0 })),
    left: minority.map((d) => ({ nodeid: d.nodeid, pid: d.pid, reason: NODEDOWN })),
    joined: [],
  };
  for (const d of [ds[1], ds[2]]) d.receive(majorityItem);
  await until(() => ds[1].member!.lost && ds[2].member!.lost, "2-node split stops both");
});

Deno.test("cpg group: three nodes, one cut off: the two keep the cluster", async () => {
  const hub = new SimCpg();
  const ds = [1, 2, 3].map((n) => new SimCpgDriver(hub, n));
  const es: string[][] = ds.map(() => []);
  for (const [i, d] of ds.entries()) {
    await d.init(recorder(es[i]));
    await d.join(node(i + 1), new Uint8Array());
  }
  await until(() => es.every((e) => e.some((s) => s.startsWith("accept 3"))), "all in");
  ds[2].kill(NODEDOWN);
  await until(() => es[0].some((s) => s.startsWith("leave 3")), "leave of 3");
  assert.ok(!ds[0].member!.lost && !ds[1].member!.lost);
  await ds[0].notify(te.encode("still here"));
  await until(() => es[1].includes("notify still here"), "notify");
  await Promise.all([ds[0].close(), ds[1].close()]);
});

Deno.test("cpg group: when two groups that formed apart merge, the smaller log gives way", async () => {
  // Two sides of a healed partition: {a, b} (a two-member cluster) and {c} (alone).
  const hub1 = new SimCpg(), hub2 = new SimCpg();
  const a = new SimCpgDriver(hub1, 1), b = new SimCpgDriver(hub1, 2), c = new SimCpgDriver(hub2, 3);
  const ea: string[] = [], eb: string[] = [], ec: string[] = [];
  for (const [d, e, p] of [[a, ea, 1], [b, eb, 2], [c, ec, 3]] as const) {
    await d.init(recorder(e));
    await d.join(node(p), new Uint8Array());
  }
  await until(() => eb.length === 1 && ea.length === 2 && ec.length === 1, "two clusters");
  // The rings merge: each side sees the other's processes join; from now on one order for all.
  hub1.manual = true;
  const all = [a, b, c];
  c.hub = hub1;
  hub1.members.push(c);
  const addr = (d: SimCpgDriver, reason: number) => ({ nodeid: d.nodeid, pid: d.pid, reason });
  hub1.deliverTo([a, b], {
    type: "confchg",
    members: all.map((d) => addr(d, 0)),
    left: [],
    joined: [addr(c, JOIN)],
  });
  hub1.deliverTo([c], {
    type: "confchg",
    members: all.map((d) => addr(d, 0)),
    left: [],
    joined: [addr(a, JOIN), addr(b, JOIN)],
  });
  // Each side offered its state to the other (a for {a, b}, c for {c}).
  assert.equal(hub1.pending.length, 2);
  hub1.manual = false;
  hub1.release();
  await until(() => ec.some((s) => s.startsWith("lost")), "c gives way");
  assert.match(ec.at(-1)!, /merged with another cluster of 2 member/);
  assert.ok(!a.member!.lost && !b.member!.lost);
  await a.notify(te.encode("still one cluster"));
  await until(() => eb.includes("notify still one cluster"), "a and b go on");
  assert.ok(!ec.includes("notify still one cluster"));
  await Promise.all([a.close(), b.close()]);
});

Deno.test("corosync option: -c corosync uses the group 'sheepdog', -c corosync:GROUP another", async () => {
  const { corosyncGroupOption, DEFAULT_CPG_GROUP } = await import("./corosync.ts");
  assert.equal(DEFAULT_CPG_GROUP, "sheepdog");
  assert.equal(corosyncGroupOption(undefined), "sheepdog");
  assert.equal(corosyncGroupOption(""), "sheepdog");
  assert.equal(corosyncGroupOption("prod"), "prod");
  assert.throws(() => corosyncGroupOption("x".repeat(129)), /longer than 128 bytes/);
});
