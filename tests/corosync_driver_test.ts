/**
 * The corosync driver against a real corosync 3 (issue 6): the driver contract with every member
 * in its own process (SIGKILL for abrupt deaths), the error paths (no libcpg, corosync dying
 * under running members), and measured latencies (reported with SD_TIMING=1):
 * - CPG's own multicast-to-delivery latency (a raw libcpg client, same corosync, same run);
 * - a cluster message through the driver (notify → delivered on every member);
 * - a membership change (SIGKILL of a member → onLeave on every other member).
 *
 * One corosync (in a private network namespace, see harness/corosync.ts) serves the whole file;
 * every contract cluster uses its own CPG group. The test that kills corosync starts its own.
 */

import assert from "node:assert/strict";
import { Res } from "../core/proto/constants.ts";
import { SdError } from "../core/proto/sd_error.ts";
import type {
  ContractEvent,
  ContractMember,
  DriverFactory,
} from "../core/cluster/contract_member.ts";
import { wallMs } from "../core/cluster/contract_member.ts";
import { ProcessMember } from "../core/cluster/contract_process.ts";
import { runDriverContract } from "../core/cluster/contract_test_suite.ts";
import { CorosyncDriver } from "../core/cluster/corosync.ts";
import { canUseNetns, type Corosync, startCorosync } from "./harness/corosync.ts";
import { run } from "./harness/process.ts";
import { medianOf, reportTiming } from "./harness/timing.ts";

const SCRIPT = new URL("../core/cluster/testdata/corosync_member.ts", import.meta.url).pathname;
const LATENCY_SCRIPT = new URL("./testdata/cpg_latency.ts", import.meta.url).pathname;
const STACK = "--v8-flags=--stack-size=4096";

const netns = await canUseNetns();
const why = "needs root and network namespaces (ip netns) to run a private corosync";
if (!netns) console.error(`corosync driver tests skipped: ${why}`);

let shared: Corosync | null = null;
async function corosync(): Promise<Corosync> {
  shared ??= await startCorosync();
  return shared;
}

let groups = 0;

/** A cluster of corosync driver processes on the shared corosync, in a CPG group of its own. */
async function cluster(cs?: Corosync): Promise<DriverFactory & { members: ProcessMember[] }> {
  const c = cs ?? await corosync();
  const group = `sdt${Deno.pid}g${++groups}`;
  const members: ProcessMember[] = [];
  return {
    members,
    async start(port: number): Promise<ContractMember> {
      const m = await ProcessMember.spawn(SCRIPT, port, [group], {
        wrap: c.prefix(),
        flags: [STACK],
      });
      members.push(m);
      return m;
    },
    async close(): Promise<void> {
      await Promise.all(members.map((m) => m.close()));
    },
  };
}

runDriverContract("corosync", () => cluster(), { sanitize: false, ignore: !netns });

const opts = { sanitizeOps: false, sanitizeResources: false, ignore: !netns };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

const notifyAt = (m: ContractMember, msg: string): ContractEvent | undefined =>
  m.events.find((e) => e.kind === "notify" && e.msg === msg);
const leaveOf = (m: ContractMember, who: ContractMember): ContractEvent | undefined =>
  m.events.find((e) => e.kind === "leave" && e.node === who.label);
const membersNow = (m: ContractMember): string[] => {
  for (let i = m.events.length - 1; i >= 0; i--) {
    const e = m.events[i];
    if (e.kind === "accept" || e.kind === "leave" || e.kind === "update_node") return e.members;
  }
  return [];
};

Deno.test("corosync: a missing libcpg is a one-line CLUSTER_ERROR, nothing loaded at import", async () => {
  const d = new CorosyncDriver({ library: "libcpg-not-installed.so.4" });
  const handlers = {
    onJoinCheck: () => ({ accept: true, opaque: new Uint8Array() }),
    onAccept() {},
    onLeave() {},
    onNotify() {},
    onUpdateNode() {},
    onLost() {},
  };
  await assert.rejects(d.init(handlers), (e) => {
    assert.ok(e instanceof SdError);
    assert.equal(e.result, Res.CLUSTER_ERROR);
    assert.match(e.message, /^corosync driver: cannot load libcpg-not-installed\.so\.4 \(install/);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
  await d.close();
});

Deno.test({
  name: "corosync: latency of CPG itself, of a cluster message and of a membership change",
  ...opts,
  fn: async () => {
    const cs = await corosync();
    // CPG's own latency, measured by a bare libcpg client on the same corosync.
    const raw = await run(cs.prefix()[0], [
      ...cs.prefix().slice(1),
      Deno.execPath(),
      "run",
      "--allow-all",
      STACK,
      LATENCY_SCRIPT,
      "200",
    ], { deadlineMs: 60_000 });
    assert.ok(raw.success, raw.stderrText);
    const cpg = JSON.parse(raw.stdoutText.trim().split("\n").at(-1)!);
    reportTiming("CPG mcast→deliver (raw libcpg, 1 node), median / p90 µs", [
      cpg.medianUs,
      cpg.p90Us,
    ]);

    const f = await cluster(cs);
    try {
      const ms = await Promise.all([0, 1, 2].map((i) => f.start(7900 + i)));
      for (const [i, m] of ms.entries()) await m.join(`m${i}`);
      await waitFor(() => ms.every((m) => membersNow(m).length === 3), "3 members");
      // A cluster message: notify from one member until delivered on all three.
      const lat: number[] = [];
      for (let k = 0; k < 30; k++) {
        const t0 = wallMs();
        await ms[k % 3].notify(`lat${k}`);
        await waitFor(() => ms.every((m) => notifyAt(m, `lat${k}`) !== undefined), `lat${k}`);
        lat.push(Math.max(...ms.map((m) => notifyAt(m, `lat${k}`)!.t)) - t0);
      }
      assert.ok(medianOf(lat) < 300, `median notify latency ${medianOf(lat)} ms`);
      reportTiming("driver notify→delivered on all 3 members, median / max ms", [
        +medianOf(lat).toFixed(2),
        +Math.max(...lat).toFixed(2),
      ]);
      // A membership change: SIGKILL → onLeave on the others.
      const victim = ms[1];
      const t0 = wallMs();
      await victim.kill();
      const rest = [ms[0], ms[2]];
      await waitFor(() => rest.every((m) => leaveOf(m, victim) !== undefined), "leave");
      const change = Math.max(...rest.map((m) => leaveOf(m, victim)!.t)) - t0;
      reportTiming("driver SIGKILL→onLeave on every other member ms", +change.toFixed(1));
      assert.ok(change < 5000, `membership change took ${change} ms`);
    } finally {
      await f.close();
    }
  },
});

Deno.test({
  name: "corosync: several members of one node join at the same instant and agree on one order",
  ...opts,
  fn: async () => {
    const f = await cluster();
    try {
      const ms = await Promise.all(Array.from({ length: 8 }, (_, i) => f.start(7950 + i)));
      await Promise.all(ms.map((m, i) => m.join(`j${i}`)));
      await waitFor(() => ms.every((m) => membersNow(m).length === 8), "8 members everywhere");
      const seq = (m: ContractMember) =>
        m.events.filter((e) => e.kind === "accept").map((e) => (e as { node: string }).node);
      const full = seq(ms.reduce((a, b) => seq(b).length > seq(a).length ? b : a));
      assert.equal(full.length, 8);
      for (const m of ms) assert.deepEqual(seq(m), full.slice(full.length - seq(m).length));
    } finally {
      await f.close();
    }
  },
});

Deno.test({
  name: "corosync: corosync dying under running members makes every one of them lost (onLost)",
  ...opts,
  fn: async () => {
    // A corosync of its own: this test kills it.
    const cs = await startCorosync();
    const f = await cluster(cs);
    try {
      const ms = await Promise.all([0, 1, 2].map((i) => f.start(7980 + i)));
      for (const [i, m] of ms.entries()) await m.join(`m${i}`);
      await waitFor(() => ms.every((m) => membersNow(m).length === 3), "3 members");
      const t0 = wallMs();
      await cs.killNode(0);
      await waitFor(
        () => ms.every((m) => m.events.some((e) => e.kind === "lost")),
        "onLost everywhere",
      );
      const lost = ms.map((m) => m.events.find((e) => e.kind === "lost")!);
      reportTiming(
        "corosync SIGKILL→onLost on every member ms",
        +(Math.max(...lost.map((e) => e.t)) - t0).toFixed(1),
      );
      for (const e of lost) {
        assert.match((e as { reason: string }).reason, /corosync|CS_ERR_LIBRARY/);
      }
      // The driver refuses to go on (the sheep exits for its service manager to restart it).
      await assert.rejects(ms[0].notify("after"), (e) => e instanceof SdError);
    } finally {
      await f.close();
      await cs.stop();
    }
  },
});

Deno.test({
  name: "corosync: stop the shared corosync",
  ...opts,
  fn: async () => {
    await shared?.stop();
    shared = null;
  },
});
