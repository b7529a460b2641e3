/**
 * The contract every cluster driver passes. `runDriverContract` registers the Deno tests; each
 * test asks the factory for a fresh cluster and drives its members through `ContractMember`
 * handles, so that members may live in the test process (memory) or in child processes killed
 * with SIGKILL (local, corosync). Types are in `contract_member.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import type { ContractEvent, ContractMember, DriverFactory } from "./contract_member.ts";
import { SLOW_CHECK_MS, wallMs } from "./contract_member.ts";

/** How long any single wait of the suite may take. */
const WAIT_MS = 15_000;
const BASE_PORT = 7000;

/** Options of {@linkcode runDriverContract}. */
export interface ContractOptions {
  /**
   * Turns Deno's op and resource sanitizers off, for factories that share a server started
   * outside the tests (its process and pipes outlive each test). Default: on.
   */
  sanitize?: boolean;
  /** Skips every test (e.g. the machine cannot run the driver's server), with the reason logged. */
  ignore?: boolean;
}

/** Registers the contract tests for driver `name`. */
export function runDriverContract(
  name: string,
  makeCluster: () => Promise<DriverFactory>,
  opts: ContractOptions = {},
): void {
  const sanitize = opts.sanitize ?? true;
  const test = (title: string, body: (f: DriverFactory) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: opts.ignore ?? false,
      sanitizeOps: sanitize,
      sanitizeResources: sanitize,
    }, async () => {
      const f = await makeCluster();
      try {
        await body(f);
      } finally {
        await f.close();
      }
    });

  test("a single node joins an empty cluster without a join check", async (f) => {
    const a = await f.start(BASE_PORT);
    await a.join("first");
    assert.deepEqual(deliveries(a), [`accept ${a.label} [${a.label}/128] first`]);
    assert.deepEqual(checks(a), []);
  });

  test("nodes joining at the same instant all get in and agree on members and order", async (f) => {
    const ms = await startAll(f, 5);
    await Promise.all(ms.map((m, i) => m.join(`j${i}`)));
    await waitFor(() => ms.every((m) => acceptOf(m) >= 0), "every accept");
    await waitFor(() => ms.every((m) => lastMembers(m).length === 5), "all accepts everywhere");
    assertSameOrder(ms);
    const first = ms.filter((m) => deliveries(m)[0].endsWith(`[${m.label}/128] j${ms.indexOf(m)}`));
    assert.equal(first.length, 1, "exactly one node became the first member");
    // The first member checked every other join, nobody else checked anything.
    assert.equal(checks(first[0]).length, 4);
    for (const m of ms) if (m !== first[0]) assert.deepEqual(checks(m), []);
    for (const m of ms) {
      if (m === first[0]) continue;
      assert.match(deliveries(m)[0], /\|ok$/, "a checked join carries the rewritten payload");
    }
    const lists = ms.map((m) => lastMembers(m));
    for (const l of lists) assert.deepEqual(l, lists[0]);
    assert.equal(lists[0].length, 5);
  });

  test("notify is delivered in one total order under concurrent senders", async (f) => {
    const ms = await joinedCluster(f, 4);
    const per = 20;
    await Promise.all(ms.map(async (m, i) => {
      for (let k = 0; k < per; k++) await m.notify(`s${i}-${k}`);
    }));
    await waitFor(
      () => ms.every((m) => notifies(m).length === per * ms.length),
      "every notify everywhere",
    );
    assertSameOrder(ms);
    // Each sender's messages keep their sending order.
    const seq = notifies(ms[0]);
    for (let i = 0; i < ms.length; i++) {
      const mine = seq.filter((s) => s.startsWith(`s${i}-`));
      assert.deepEqual(mine, Array.from({ length: per }, (_, k) => `s${i}-${k}`));
    }
  });

  test("block excludes every other event until unblock, which delivers its message to all", async (f) => {
    const [a, b, c] = await joinedCluster(f, 3);
    await a.block();
    const granted = wallMs();
    const before = deliveries(a).length;
    // Others keep posting during the block; b also asks for the block (it must wait).
    const during = Promise.all([
      (async () => {
        for (let k = 0; k < 5; k++) await b.notify(`b${k}`);
      })(),
      (async () => {
        for (let k = 0; k < 5; k++) await c.notify(`c${k}`);
      })(),
    ]);
    let bHolds = false;
    const bBlock = b.block().then(() => bHolds = true);
    await during;
    await sleep(300);
    assert.equal(bHolds, false, "b's block waits for a's unblock");
    const released = wallMs();
    await a.unblock("a-result");
    await bBlock;
    await b.unblock("b-result");
    await waitFor(
      () => [a, b, c].every((m) => notifies(m).length === 12),
      "every message everywhere",
    );
    assertSameOrder([a, b, c]);
    const seq = deliveries(a);
    assert.equal(seq[before], `notify ${a.label} a-result`, "the unblock message comes first");
    assert.equal(seq.length, before + 12);
    const bRes = seq.indexOf(`notify ${b.label} b-result`);
    assert.ok(bRes > before);
    // Nothing was delivered anywhere, while a held the block, past the point where a got it.
    for (const m of [a, b, c]) {
      const offset = seq.length - deliveries(m).length;
      deliveryEvents(m).forEach((e, i) => {
        if (e.t > granted && e.t < released) {
          assert.ok(offset + i < before, `${m.label} delivered ${show(e)} during a's block`);
        }
      });
    }
  });

  test("block() calls from one node are queued", async (f) => {
    const [a, b] = await joinedCluster(f, 2);
    await a.block();
    let second = false;
    const p = a.block().then(() => second = true);
    await sleep(200);
    assert.equal(second, false);
    await a.unblock("one");
    await p;
    await a.unblock("two");
    await waitFor(() => [a, b].every((m) => notifies(m).length === 2), "both unblock messages");
    assert.deepEqual(notifies(b), ["one", "two"]);
    assertSameOrder([a, b]);
  });

  test("a join check runs on exactly one member; a refusal fails join() with JOIN_FAILED", async (f) => {
    const [a, b, c] = await joinedCluster(f, 3);
    const d = await f.start(BASE_PORT + 3);
    await assert.rejects(
      d.join("refuse-d"),
      (e) => e instanceof SdError && e.result === Res.JOIN_FAILED,
    );
    const e = await f.start(BASE_PORT + 4);
    await e.join("e");
    await waitFor(() => [a, b, c].every((m) => acceptOf(e, m) >= 0), "e's accept everywhere");
    const all = [a, b, c, e];
    const checksFor = (label: string) =>
      all.flatMap((m) => checks(m).filter((x) => x.joining === label).map(() => m));
    assert.deepEqual(checksFor(d.label), [a], "only the master checked d");
    assert.deepEqual(checksFor(e.label), [a], "only the master checked e");
    assert.deepEqual(deliveries(d), []);
    for (const m of all) {
      assert.ok(!deliveries(m).some((s) => s.startsWith(`accept ${d.label}`)));
      assert.ok(
        deliveries(m).includes(
          `accept ${e.label} [${[a, b, c, e].map((x) => `${x.label}/128`).join(",")}] e|ok`,
        ),
      );
    }
    assertSameOrder(all);
  });

  test("leave() delivers onLeave at the same position on every remaining member", async (f) => {
    const [a, b, c, d] = await joinedCluster(f, 4);
    const chatter = Promise.all([c, d].map(async (m) => {
      for (let k = 0; k < 10; k++) await m.notify(`${m.label}-${k}`);
    }));
    await b.leave();
    const bCount = deliveries(b).length;
    await chatter;
    await a.notify("after");
    const rest = [a, c, d];
    await waitFor(() => rest.every((m) => notifies(m).includes("after")), "'after' everywhere");
    await waitFor(() => rest.every((m) => notifies(m).length === 21), "all messages");
    assertSameOrder(rest);
    const want = `leave ${b.label} [${[a, c, d].map((m) => `${m.label}/128`).join(",")}]`;
    for (const m of rest) assert.equal(deliveries(m).filter((s) => s === want).length, 1);
    await sleep(100);
    assert.equal(deliveries(b).length, bCount, "the leaver gets nothing after leave()");
    assert.ok(!notifies(b).includes("after"));
  });

  test("an abrupt death delivers onLeave at the same position on every remaining member", async (f) => {
    const [a, b, c, d] = await joinedCluster(f, 4);
    const chatter = Promise.all([a, c].map(async (m) => {
      for (let k = 0; k < 10; k++) await m.notify(`${m.label}-${k}`);
    }));
    await b.kill();
    await chatter;
    const rest = [a, c, d];
    await waitFor(
      () => rest.every((m) => deliveries(m).some((s) => s.startsWith(`leave ${b.label}`))),
      "b's leave everywhere",
    );
    await a.notify("after");
    await waitFor(() => rest.every((m) => notifies(m).includes("after")), "'after' everywhere");
    assertSameOrder(rest);
    for (const m of rest) assert.deepEqual(lastMembers(m), [a, c, d].map((x) => `${x.label}/128`));
  });

  test("when the master dies during a join check the next master answers", async (f) => {
    const [a, b, c] = await joinedCluster(f, 3);
    const d = await f.start(BASE_PORT + 3);
    const joined = d.join("slow-d");
    await waitFor(() => checks(a).some((x) => x.joining === d.label), "a's check of d");
    await a.kill();
    await joined;
    const rest = [b, c, d];
    await waitFor(
      () => rest.every((m) => deliveries(m).some((s) => s.startsWith(`leave ${a.label}`))),
      "a's leave everywhere",
    );
    assertSameOrder(rest);
    assert.deepEqual(checks(b).map((x) => x.joining), [d.label], "b, the next master, checked d");
    assert.deepEqual(checks(c), []);
    assert.equal(deliveries(d)[0].split(" ").at(-1), "slow-d|ok");
    for (const m of rest) assert.deepEqual(lastMembers(m), [b, c, d].map((x) => `${x.label}/128`));
    assert.ok(SLOW_CHECK_MS > 0);
  });

  test("a member that dies holding the block releases it", async (f) => {
    const [a, b, c] = await joinedCluster(f, 3);
    await b.block();
    await c.notify("queued");
    await sleep(100);
    assert.ok(!notifies(a).includes("queued"), "held back by b's block");
    await b.kill();
    await waitFor(() => [a, c].every((m) => notifies(m).includes("queued")), "the queued notify");
    await a.block();
    await a.unblock("next");
    await waitFor(() => [a, c].every((m) => notifies(m).includes("next")), "a's unblock message");
    assertSameOrder([a, c]);
    assert.ok(deliveries(a).some((s) => s.startsWith(`leave ${b.label}`)));
  });

  test("update_node replaces the node's record on every member", async (f) => {
    const [a, b, c] = await joinedCluster(f, 3);
    await b.updateNode(64);
    await waitFor(
      () => [a, b, c].every((m) => deliveries(m).some((s) => s.startsWith("update_node"))),
      "the update everywhere",
    );
    const want = `update_node ${b.label}/64 [${a.label}/128,${b.label}/64,${c.label}/128]`;
    for (const m of [a, b, c]) assert.equal(deliveries(m).at(-1), want);
    const d = await f.start(BASE_PORT + 3);
    await d.join("d");
    assert.deepEqual(lastMembers(d), [
      `${a.label}/128`,
      `${b.label}/64`,
      `${c.label}/128`,
      `${d.label}/128`,
    ]);
  });
}

/** Starts `n` members on consecutive ports. */
async function startAll(f: DriverFactory, n: number): Promise<ContractMember[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => f.start(BASE_PORT + i)));
}

/** Starts `n` members and joins them one after another (so the first is the master). */
async function joinedCluster(f: DriverFactory, n: number): Promise<ContractMember[]> {
  const ms = await startAll(f, n);
  for (const [i, m] of ms.entries()) await m.join(`m${i}`);
  await waitFor(
    () => ms.every((m) => lastMembers(m).length === n),
    `${n} members everywhere`,
  );
  return ms;
}

function deliveryEvents(m: ContractMember): ContractEvent[] {
  return m.events.filter((e) => e.kind !== "check" && e.kind !== "lost");
}

function show(e: ContractEvent): string {
  switch (e.kind) {
    case "accept":
      return `accept ${e.node} [${e.members.join(",")}] ${e.opaque}`;
    case "leave":
      return `leave ${e.node} [${e.members.join(",")}]`;
    case "notify":
      return `notify ${e.sender} ${e.msg}`;
    case "update_node":
      return `update_node ${e.node} [${e.members.join(",")}]`;
    case "check":
      return `check ${e.joining}`;
    case "lost":
      return `lost ${e.reason}`;
  }
}

/** The handler calls `m` received, as text. */
function deliveries(m: ContractMember): string[] {
  return deliveryEvents(m).map(show);
}

function notifies(m: ContractMember): string[] {
  return m.events.flatMap((e) => e.kind === "notify" ? [e.msg] : []);
}

function checks(m: ContractMember): Extract<ContractEvent, { kind: "check" }>[] {
  return m.events.filter((e) => e.kind === "check");
}

/** Index of `joiner`'s accept in `m`'s deliveries (default: its own). */
function acceptOf(joiner: ContractMember, m: ContractMember = joiner): number {
  return deliveries(m).findIndex((s) => s.startsWith(`accept ${joiner.label} `));
}

/** The member list after the last membership event `m` saw. */
function lastMembers(m: ContractMember): string[] {
  for (let i = m.events.length - 1; i >= 0; i--) {
    const e = m.events[i];
    if (e.kind === "accept" || e.kind === "leave" || e.kind === "update_node") return e.members;
  }
  return [];
}

function count(m: ContractMember): number {
  return deliveries(m).length;
}

function longest(ms: ContractMember[]): ContractMember {
  return ms.reduce((x, y) => count(y) > count(x) ? y : x);
}

/**
 * Every member's deliveries are the longest member's deliveries from the member's own accept on
 * (everyone sees one sequence; a member only sees the part after it joined).
 */
function assertSameOrder(ms: ContractMember[]): void {
  const ref = deliveries(longest(ms));
  for (const m of ms) {
    const mine = deliveries(m);
    const start = ref.indexOf(mine[0]);
    assert.ok(start >= 0, `${m.label}'s first event is not in the reference sequence`);
    assert.deepEqual(mine, ref.slice(start, start + mine.length), `${m.label} diverged`);
    assert.equal(start + mine.length, ref.length, `${m.label} has not seen the end`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` until it holds; fails after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}
