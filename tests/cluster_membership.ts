/**
 * Membership and epochs with real sheep (issue 3 §1, §4; ten sheep on the local driver in
 * cluster_membership_test.ts, fewer on corosync and ZooKeeper in cluster_on_*_test.ts):
 *
 * - ten sheep started at the same instant all join: every node's `dog node list` shows all ten,
 *   and after the format every node is at epoch 1 with the ten;
 * - a sheep killed with SIGKILL leaves within about a second (the latency is logged; the bound
 *   asserted is a generous 5 s so a loaded CI machine does not flake), and every other node moves
 *   to the same new epoch, with the same epoch history in `dog cluster info`;
 * - the killed sheep restarted with the same address rejoins (one more epoch);
 * - `dog cluster shutdown`, then all ten restarted in reverse order: same data, same epoch, the
 *   same epoch files (no new one), the same `dog cluster info`.
 *
 * Every sheep binds 127.0.0.1 on a free port, uses a private driver path, and is stopped by its
 * own pid in a finally; every wait has a deadline.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  defaultClusterTemplate,
  expandClusterSpec,
  freePort,
  runDogOk,
  type SheepProcess,
  startSheep,
  tempDir,
  waitUntil,
  withDeadline,
} from "./harness/mod.ts";
import {
  assertSameBytes,
  clusterInfo,
  connectSheep,
  epochFiles,
  randomBytes,
} from "./harness/proto.ts";
import type { SheepClient } from "../core/net/client.ts";

const MIB = 1024 * 1024;
const STATUS_OK = 1;
/** Asserted bound on the time a SIGKILLed sheep takes to leave everyone's membership. */
const LEAVE_BOUND_MS = 5_000;
const EXIT_DEADLINE_MS = 20_000;

async function bounded<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  const r = await withDeadline(p, ms);
  if (!r.ok) throw new Error(`${what}: no result after ${ms} ms`);
  return r.value;
}

/** The epoch table of `dog cluster info` (the lines after its header). */
function epochTable(text: string): string[] {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.startsWith("Epoch Time"));
  assert.ok(at >= 0, `no epoch table in:\n${text}`);
  return lines.slice(at + 1).filter((l) => l !== "");
}

/** Epoch number → "host:port, …" (vnode counts dropped) of one epoch table line. */
function parseEpochLine(line: string): { epoch: number; nodes: string } {
  const m = line.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\d+) \[(.*)\]$/);
  assert.ok(m, `epoch line: ${JSON.stringify(line)}`);
  return { epoch: Number(m[1]), nodes: m[2].replace(/:\d+(?=,|$)/g, "") };
}

function addrList(ports: number[]): string {
  return [...ports].sort((a, b) => a - b).map((p) => `127.0.0.1:${p}`).join(", ");
}

/** Options of {@linkcode membershipCase}. */
export interface MembershipOptions {
  /** `-c` template (see `expandClusterSpec`); default the local driver (or $SHEEPDOG_TEST_CLUSTER). */
  driver?: string;
  /** Number of sheep; default 10. */
  n?: number;
  /** Index of the sheep that is killed and restarted; default 6. */
  killed?: number;
}

/** The membership case, as the steps of test `t`. */
export async function membershipCase(
  t: Deno.TestContext,
  opts: MembershipOptions = {},
): Promise<void> {
  const N = opts.n ?? 10;
  const KILLED = opts.killed ?? 6;
  assert.ok(KILLED > 0 && KILLED < N, `killed sheep ${KILLED} of ${N}`);
  const t0 = Date.now();
  await using tmp = await tempDir("members");
  const spec = expandClusterSpec(opts.driver ?? defaultClusterTemplate(), tmp.path);
  const tag = `cluster_membership (${spec.split(":")[0]}, ${N} sheep)`;
  const ports = Array.from({ length: N }, () => freePort());
  const dirs = ports.map((_, i) => `${tmp.path}/sheep${i}`);
  /** The current process of each node (restarts replace entries); all are stopped at the end. */
  const procs: SheepProcess[] = [];
  const all: SheepProcess[] = [];
  const start = (i: number): SheepProcess => {
    const s = startSheep({
      dir: dirs[i],
      port: ports[i],
      zone: i,
      cluster: spec,
      extraArgs: ["-n"],
    });
    procs[i] = s;
    all.push(s);
    return s;
  };
  const clients: SheepClient[] = [];
  const connectAll = async (idx: number[]) => {
    for (const c of clients.splice(0)) c?.close();
    for (const i of idx) clients[i] = await connectSheep(ports[i]);
  };
  const data = randomBytes(6 * MIB + 12345);

  let ok = true;
  try {
    ok = await t.step(`${N} sheep started at the same instant all join`, async () => {
      for (let i = 0; i < N; i++) start(i);
      await bounded(`${N} sheep ready`, Promise.all(procs.map((s) => s.waitReady(45_000))));
      const want = addrList(ports);
      let lists: string[] = [];
      await waitUntil(
        async () => {
          lists = (await Promise.all(ports.map((port) =>
            runDogOk(["node", "list", "-r"], { port })
          )))
            .map((r) => r.stdoutText);
          return lists.every((l) =>
            l.trim().split("\n").map((x) => x.split(" ")[1]).join(", ") === want
          );
        },
        20_000,
        `all ${N} in every node's node list`,
      ).catch((e) => {
        throw new Error(`${e.message}\n${lists.map((l, i) => `--- node ${i}\n${l}`).join("")}`);
      });
      for (const l of lists) assert.equal(l, lists[0]);
      console.log(`${tag}: ${N} sheep joined in ${Date.now() - t0} ms`);

      await runDogOk(["cluster", "format", "-c", "3"], { port: ports[0] });
      await connectAll([...ports.keys()]);
      // dog returns once node 0 has applied the format; the others follow from the event stream.
      await waitUntil(
        async () => {
          const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
          return infos.every((ci) => ci.epoch === 1);
        },
        10_000,
        "every node formatted",
        20,
      );
      const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
      for (const [i, ci] of infos.entries()) {
        assert.equal(ci.epoch, 1, `epoch of node ${i}`);
        assert.equal(ci.status, STATUS_OK, `status of node ${i}`);
        assert.equal(ci.nodes.length, N, `nodes of node ${i}`);
      }
      await runDogOk(["vdi", "create", "keep", "16M"], { port: ports[3 % N] });
      await runDogOk(["vdi", "write", "keep", "0", String(data.length)], {
        port: ports[5 % N],
        stdin: data,
      });
    });

    const survivors = [...ports.keys()].filter((i) => i !== KILLED);
    ok = ok &&
      await t.step("a SIGKILLed sheep leaves everyone's membership within seconds", async () => {
        await connectAll(survivors);
        const killedAt = performance.now();
        await procs[KILLED].kill();
        const seen = new Map<number, number>();
        await waitUntil(
          async () => {
            await Promise.all(survivors.map(async (i) => {
              if (seen.has(i)) return;
              const ci = await clusterInfo(clients[i]);
              if (ci.epoch >= 2) {
                assert.equal(ci.epoch, 2, `node ${i} jumped to epoch ${ci.epoch}`);
                assert.equal(ci.nodes.length, N - 1, `node ${i}'s epoch 2 node count`);
                seen.set(i, performance.now() - killedAt);
              }
            }));
            return seen.size === survivors.length;
          },
          20_000,
          "every survivor at epoch 2",
          20,
        );
        const latency = Math.max(...seen.values());
        const first = Math.min(...seen.values());
        console.log(
          `${tag}: SIGKILL → every survivor at the new epoch in ` +
            `${latency.toFixed(0)} ms (first node after ${first.toFixed(0)} ms)`,
        );
        assert.ok(latency < LEAVE_BOUND_MS, `the leave took ${latency.toFixed(0)} ms`);

        // Same history everywhere, epoch 2 without the killed node.
        let infos: string[] = [];
        await waitUntil(
          async () => {
            infos = (await Promise.all(
              survivors.map((i) => runDogOk(["cluster", "info"], { port: ports[i] })),
            )).map((r) => r.stdoutText);
            return infos.every((x) => x === infos[0]);
          },
          5_000,
          "the same cluster info on every survivor",
        ).catch((e) => {
          throw new Error(`${e.message}\n${infos.map((x, i) => `--- ${i}\n${x}`).join("")}`);
        });
        const table = epochTable(infos[0]).map(parseEpochLine);
        assert.deepEqual(table.map((e) => e.epoch), [2, 1]);
        assert.equal(table[0].nodes, addrList(survivors.map((i) => ports[i])));
        assert.equal(table[1].nodes, addrList(ports));
        for (const i of survivors) {
          assert.deepEqual(epochFiles(dirs[i]), ["00000001", "00000002"], `epoch files of ${i}`);
        }
        // The data is still there (copies 3: every object has a live replica).
        const r = await runDogOk(["vdi", "read", "keep", "0", String(data.length)], {
          port: ports[survivors[0]],
        });
        assertSameBytes(r.stdout, data, "data after the kill");
      });

    ok = ok &&
      await t.step("the killed sheep restarted with the same address rejoins", async () => {
        const t1 = performance.now();
        await start(KILLED).waitReady(30_000);
        await connectAll([...ports.keys()]);
        await waitUntil(
          async () => {
            const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
            return infos.every((ci) => ci.epoch === 3 && ci.nodes.length === N);
          },
          20_000,
          `every node at epoch 3 with ${N} nodes`,
        );
        console.log(
          `${tag}: the restarted sheep rejoined in ${(performance.now() - t1).toFixed(0)} ms`,
        );
        let infos: string[] = [];
        await waitUntil(
          async () => {
            infos = (await Promise.all(ports.map((port) =>
              runDogOk(["cluster", "info"], { port })
            )))
              .map((r) => r.stdoutText);
            return infos.every((x) => x === infos[0]);
          },
          5_000,
          "the same cluster info on every node",
        ).catch((e) => {
          throw new Error(`${e.message}\n${infos.map((x, i) => `--- ${i}\n${x}`).join("")}`);
        });
        const table = epochTable(infos[0]).map(parseEpochLine);
        assert.deepEqual(table.map((e) => e.epoch), [3, 2, 1]);
        assert.equal(table[0].nodes, addrList(ports));
        for (const d of dirs) {
          assert.deepEqual(
            epochFiles(d),
            ["00000001", "00000002", "00000003"],
            `epoch files of ${d}`,
          );
        }
      });

    ok = ok && await t.step(
      "cluster shutdown, restart in reverse order: same data, same epoch",
      async () => {
        for (const c of clients.splice(0)) c?.close();
        const infoBefore = (await runDogOk(["cluster", "info"], { port: ports[0] })).stdoutText;
        const filesBefore = dirs.map((d) => epochFiles(d));
        await runDogOk(["cluster", "shutdown"], { port: ports[0] });
        const exits = await bounded(
          "every sheep exits after cluster shutdown",
          Promise.all(procs.map((s) => s.exited)),
          EXIT_DEADLINE_MS,
        );
        exits.forEach((st, i) =>
          assert.equal(st.code, 0, `exit of node ${i}:\n${procs[i].process.logTail()}`)
        );

        const t1 = performance.now();
        for (let i = N - 1; i >= 0; i--) await start(i).waitReady(30_000);
        await connectAll([...ports.keys()]);
        await waitUntil(
          async () => {
            const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
            return infos.every((ci) => ci.status === STATUS_OK);
          },
          20_000,
          "every node running again",
        );
        console.log(
          `${tag}: restarted in reverse order and running in ${
            (performance.now() - t1).toFixed(0)
          } ms`,
        );
        const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
        for (const [i, ci] of infos.entries()) {
          assert.equal(ci.epoch, 3, `epoch of node ${i} after the restart`);
          assert.equal(ci.nodes.length, N);
        }
        dirs.forEach((d, i) =>
          assert.deepEqual(epochFiles(d), filesBefore[i], `epoch files of ${i}`)
        );
        const after = await Promise.all(
          ports.map((port) => runDogOk(["cluster", "info"], { port })),
        );
        for (const [i, r] of after.entries()) {
          assert.equal(r.stdoutText, infoBefore, `cluster info of node ${i} after the restart`);
        }
        for (const i of [0, KILLED, N - 1]) {
          const r = await runDogOk(["vdi", "read", "keep", "0", String(data.length)], {
            port: ports[i],
          });
          assertSameBytes(r.stdout, data, `data through node ${i} after the restart`);
        }
      },
    );

    assert.ok(ok, "a step failed");
    for (const [i, s] of procs.entries()) {
      assert.ok(s.running, `node ${i} died:\n${s.process.logTail()}`);
    }
    console.log(`${tag}: ${Date.now() - t0} ms`);
  } finally {
    for (const c of clients) c?.close();
    await Promise.all(all.map((s) => s.stop()));
  }
}
