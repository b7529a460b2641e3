/**
 * The seeded simulation of a whole cluster in one process: real Sheep objects on a virtual clock
 * (sim_clock.ts), a simulated network (sim_network.ts), the in-process cluster driver and memory
 * stores with their crash model. One seed fixes everything: the cluster's shape, the membership
 * schedule (crashes, restarts, clean stops, new nodes), the clients' requests and every
 * interleaving. After each round of schedule plus concurrent I/O the cluster is let settle and
 * checked (checks.ts); a failure reports the seed and the trace.
 *
 * The schedule never takes more than copies-1 nodes away since the last moment the cluster was
 * fully recovered: beyond that, losing data is allowed.
 *
 * @module
 */

import {
  ClusterStatus,
  Flag,
  Op,
  Res,
  SD_MAX_VDI_LEN,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { encodeFixedString } from "../proto/strings.ts";
import { MemoryHub } from "../cluster/memory.ts";
import type { Reply } from "../net/client.ts";
import { Prng } from "../recovery/prng.ts";
import { SIM_OWNER, SimClock } from "./sim_clock.ts";
import { SimNetwork } from "./sim_network.ts";
import { SimNode, type SimWorld } from "./sim_node.ts";
import { MAX_TRACE_EVENTS, MAX_TRACE_LOG_LINES, SimTrace } from "./sim_trace.ts";
import { FAILED_WRITE_QUARANTINE_MS, Workload } from "./workload.ts";
import { checkCluster } from "./checks.ts";
import { deleteVdiLikeDog } from "./vdi_deletion.ts";

/** Virtual start time: a fixed date, so epoch files and ctimes are the same for a seed. */
const START_MS = Date.UTC(2026, 0, 1);
/** Object size of the simulated cluster: 2^20 (1 MiB), the smallest a VDI may have (cheap recovery). */
const BLOCK_SIZE_SHIFT = 20;
/** Bytes of one client block. */
const CLIENT_BLOCK = 65536;
/** How long setup (joins, format, VDI creation) may take (virtual ms). */
const SETUP_DEADLINE_MS = 60_000;
/** How long a round's settling (client retries, recovery) may take (virtual ms). */
const SETTLE_DEADLINE_MS = 180_000;

/** What a seed decides about the cluster. */
export interface SimShape {
  readonly seed: number;
  readonly copies: number;
  readonly initialNodes: number;
  readonly maxNodes: number;
  readonly vdis: number;
  readonly objectsPerVdi: number;
  readonly rounds: number;
  /** Membership actions per round. */
  readonly actions: number;
  readonly streams: number;
  /** Probability that a request's connection is reset. */
  readonly resetChance: number;
  /** One-way network delay range (ms). */
  readonly delayMs: readonly [number, number];
  /** Pause range between two membership actions (ms): short ones overlap recoveries. */
  readonly gapMs: readonly [number, number];
  /**
   * The round during which one VDI is deleted (vdi_deletion.ts), 0 for none; `deleteIndex` is
   * which VDI, `deleteAfterMs` when in the round its VM stops.
   */
  readonly deleteRound: number;
  readonly deleteIndex: number;
  readonly deleteAfterMs: number;
}

/** The shape a seed gives. */
export function shapeOf(seed: number): SimShape {
  const p = new Prng(seed ^ 0x5eed);
  const copies = p.pick([2, 3]);
  const initialNodes = p.between(copies + 1, 5);
  const vdis = p.between(1, 3);
  return {
    seed,
    copies,
    initialNodes,
    maxNodes: 6,
    vdis,
    objectsPerVdi: p.between(2, 6),
    rounds: 2,
    actions: p.between(3, 10),
    streams: p.between(2, 4),
    resetChance: p.pick([0, 0.002, 0.01]),
    delayMs: p.pick([[0, 3], [1, 25]] as const),
    gapMs: p.pick([[50, 2000], [10, 300]] as const),
    // From a PRNG of their own, so the draws above (and the seeds found before) are unchanged.
    ...deletionOf(seed, vdis),
  };
}

/** Whether and when a seed deletes a VDI: half the seeds with two VDIs or more. */
function deletionOf(
  seed: number,
  vdis: number,
): Pick<SimShape, "deleteRound" | "deleteIndex" | "deleteAfterMs"> {
  const p = new Prng(seed ^ 0xde1e7e);
  if (vdis < 2 || !p.chance(0.5)) return { deleteRound: 0, deleteIndex: 0, deleteAfterMs: 0 };
  return {
    deleteRound: p.between(1, 2),
    deleteIndex: p.int(vdis),
    deleteAfterMs: p.between(0, 3000),
  };
}

/** Outcome of one seed. */
export interface SimResult {
  readonly seed: number;
  readonly shape: SimShape;
  readonly ok: boolean;
  readonly failures: string[];
  /** Objects left of deleted VDIs (unless failOnLeaks: then they are failures). */
  readonly leaks: string[];
  /** Hash of every event run: equal for equal seeds. */
  readonly traceHash: string;
  /** Report: shape, failures, trace. */
  readonly report: string;
  /** Every event kept and the last sheep log lines. */
  readonly trace: string;
  readonly steps: number;
  readonly virtualMs: number;
  readonly stats: Record<string, number>;
}

/** Options of a run. */
export interface SimRunOptions {
  /** Sheep log level in the trace (6 info, 7 debug). */
  readonly logLevel?: number;
  /**
   * How long a client leaves a block alone after a failed write (ms); default
   * FAILED_WRITE_QUARANTINE_MS. 0 replays the runs made before the quarantine existed.
   */
  readonly quarantineMs?: number;
  /**
   * Whether the seed's VDI deletion runs (default true); false replays the runs made before the
   * simulation deleted VDIs.
   */
  readonly deletions?: boolean;
  /**
   * Whether objects left of a deleted VDI (checks.ts, check 5: leaks) fail the run (default
   * false: they are reported in `leaks`). A known leak is open (cluster_sim_test.ts, seed 20380).
   */
  readonly failOnLeaks?: boolean;
  /**
   * Share of the clients' writes that are writeback and then flushed (workload.ts; default 0:
   * none, as the runs made before writeback existed).
   */
  readonly writebackChance?: number;
}

/** Runs one seed to the end; never throws for a cluster failure (it is in the result). */
export async function runClusterSim(seed: number, opts: SimRunOptions = {}): Promise<SimResult> {
  const drawn = shapeOf(seed);
  const shape = opts.deletions === false ? { ...drawn, deleteRound: 0 } : drawn;
  const prng = new Prng(seed);
  const clock = new SimClock(new Prng(seed ^ 0xc10c), START_MS);
  const trace = new SimTrace(clock, opts.logLevel ?? 6);
  const net = new SimNetwork(clock, new Prng(seed ^ 0x4e7), {
    delayMs: shape.delayMs,
    resetChance: shape.resetChance,
  });
  const hubPrng = new Prng(seed ^ 0x40b);
  const hub = new MemoryHub({
    schedule: (fn) => clock.schedule(hubPrng.between(0, 2), fn, SIM_OWNER, "hub"),
  });
  const world: SimWorld = { clock, net, hub, trace };
  const sim = new ClusterSim(
    world,
    shape,
    prng,
    opts.quarantineMs ?? FAILED_WRITE_QUARANTINE_MS,
    opts.failOnLeaks ?? false,
    opts.writebackChance ?? 0,
  );
  const failures: string[] = [];
  const unhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    failures.push(`unhandled rejection: ${String(e.reason?.stack ?? e.reason)}`);
  };
  globalThis.addEventListener("unhandledrejection", unhandled);
  try {
    failures.push(...await sim.run());
  } catch (e) {
    failures.push(`simulation error: ${e instanceof Error ? e.stack : String(e)}`);
  } finally {
    sim.shutdown();
    // Let the last microtasks of the dead processes run out before the listener goes.
    await clock.settle();
    globalThis.removeEventListener("unhandledrejection", unhandled);
  }
  const stats = {
    ...sim.workload?.stats,
    delivered: net.delivered,
    steps: clock.steps,
  };
  const leaks = sim.leaks;
  const head = `seed ${seed}: ${JSON.stringify(shape)}\nstats ${JSON.stringify(stats)}` +
    (leaks.length > 0 ? `\nleaks:\n  ${leaks.join("\n  ")}` : "");
  const report = failures.length === 0
    ? head
    : `${head}\nFAILED:\n  ${
      failures.join("\n  ")
    }\n${trace.format()}\nreplay: deno run -A core/sim/run.ts --from ${seed} --seeds 1 --verbose`;
  return {
    seed,
    shape,
    ok: failures.length === 0,
    failures,
    leaks,
    traceHash: clock.traceHash(),
    report,
    trace: trace.format(MAX_TRACE_EVENTS, MAX_TRACE_LOG_LINES),
    steps: clock.steps,
    virtualMs: clock.now() - START_MS,
    stats,
  };
}

/** One simulated cluster and its schedule. */
class ClusterSim {
  readonly #w: SimWorld;
  readonly #shape: SimShape;
  readonly #prng: Prng;
  readonly nodes: SimNode[] = [];
  workload: Workload | null = null;
  /** Nodes taken away (crash or stop) since the cluster was last fully recovered. */
  #lost = new Set<SimNode>();
  /** VDIs deleted so far. */
  readonly #deleted: number[] = [];

  readonly #quarantineMs: number;
  readonly #failOnLeaks: boolean;
  readonly #writebackChance: number;
  /** Leaks the checks found (see SimRunOptions.failOnLeaks). */
  readonly leaks: string[] = [];

  constructor(
    world: SimWorld,
    shape: SimShape,
    prng: Prng,
    quarantineMs: number,
    failOnLeaks: boolean,
    writebackChance: number,
  ) {
    this.#writebackChance = writebackChance;
    this.#quarantineMs = quarantineMs;
    this.#failOnLeaks = failOnLeaks;
    this.#w = world;
    this.#shape = shape;
    this.#prng = prng;
  }

  #serving(): SimNode[] {
    return this.nodes.filter((n) => n.up);
  }

  #addNode(): SimNode {
    const n = new SimNode(
      this.#w,
      this.nodes.length,
      64,
      (this.#shape.seed * 7 + this.nodes.length) >>> 0,
    );
    this.nodes.push(n);
    return n;
  }

  /** Starts `n` in the background; its outcome goes to the trace. */
  #launch(n: SimNode, what: string): void {
    this.#w.trace.event(`${what} ${n.name}`);
    n.start().then(
      () => this.#w.trace.event(`${n.name} serves at epoch ${n.inc?.sheep.cinfo.epoch}`),
      (e) => {
        this.#w.trace.event(`${n.name} did not start: ${String(e)}`);
        n.crash();
      },
    );
  }

  async run(): Promise<string[]> {
    const { clock, trace } = this.#w;
    const s = this.#shape;
    for (let i = 0; i < s.initialNodes; i++) this.#launch(this.#addNode(), "start");
    const started = await clock.runUntil(
      () => this.nodes.every((n) => n.up),
      clock.now() + SETUP_DEADLINE_MS,
    );
    if (!started) return ["the initial nodes did not all join"];
    // The format and the VDI creations are not retried by this simple admin client, so the
    // network does not reset connections until they are done.
    this.#w.net.resetsEnabled = false;
    const vids = await this.#setup();
    this.#w.net.resetsEnabled = true;
    if (typeof vids === "string") return [vids];
    const workload = new Workload(
      this.#w,
      this.#prng,
      {
        blockSize: CLIENT_BLOCK,
        objectSize: 1 << BLOCK_SIZE_SHIFT,
        streams: s.streams,
        thinkMs: [1, 30],
        readChance: 0.25,
        copies: s.copies,
        quarantineMs: this.#quarantineMs,
        writebackChance: this.#writebackChance,
      },
      vids,
      s.objectsPerVdi,
      () => this.#serving(),
    );
    this.workload = workload;
    for (let round = 1; round <= s.rounds; round++) {
      trace.event(`round ${round}: ${s.actions} membership actions`);
      workload.start();
      let scheduleDone = false;
      this.#schedule(s.actions).finally(() => scheduleDone = true);
      let deletion: boolean | null = true;
      if (round === s.deleteRound) {
        deletion = null;
        this.#deleteVdi(vids, workload).then((ok) => deletion = ok, (e) => {
          trace.event(`vdi deletion error: ${String(e)}`);
          deletion = false;
        });
      }
      await clock.runUntil(() => scheduleDone && deletion !== null, clock.now() + 600_000);
      if (!scheduleDone) return ["the membership schedule did not finish"];
      if (deletion !== true) return ["the VDI deletion did not finish"];
      workload.stop();
      const failures = await this.#settleAndCheck(workload);
      if (failures.length > 0) return failures.map((f) => `round ${round}: ${f}`);
      if (workload.violations.length > 0) {
        return workload.violations.map((v) => `round ${round}: ${v.what}`);
      }
      trace.event(`round ${round} checked: ${JSON.stringify(workload.stats)}`);
    }
    return [];
  }

  /**
   * Deletes the seed's VDI during the round: its VM stops after `deleteAfterMs`, then the
   * administrator deletes it (vdi_deletion.ts); true when done.
   */
  async #deleteVdi(vids: readonly number[], workload: Workload): Promise<boolean> {
    const { clock, trace } = this.#w;
    const s = this.#shape;
    const vid = vids[s.deleteIndex];
    await clock.sleep(s.deleteAfterMs);
    const until = clock.now() + 300_000;
    trace.event(`vdi${s.deleteIndex} (${vid.toString(16)}): its VM stops`);
    if (!(await workload.retire(vid, until))) return false;
    trace.event(`vdi delete vdi${s.deleteIndex}`);
    const ok = await deleteVdiLikeDog(
      this.#w,
      new Prng(s.seed ^ 0xad41),
      () => this.#serving(),
      { vid, name: `vdi${s.deleteIndex}`, objects: s.objectsPerVdi, copies: s.copies },
      until,
    );
    if (ok) this.#deleted.push(vid);
    return ok;
  }

  /** Formats the cluster and creates the VDIs; their vids, or why it failed. */
  async #setup(): Promise<number[] | string> {
    const { clock } = this.#w;
    const s = this.#shape;
    const fmt = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 6 });
    fmt.cluster.copies = s.copies;
    fmt.cluster.flags = 0;
    fmt.cluster.blockSizeShift = BLOCK_SIZE_SHIFT;
    fmt.cluster.ctime = BigInt(Math.floor(clock.now() / 1000)) << 32n;
    const r = await this.#admin(this.nodes[0].name, fmt, new TextEncoder().encode("plain\0"));
    if (r?.rsp.result !== Res.SUCCESS) return `format failed: ${r?.rsp.result}`;
    const vids: number[] = [];
    for (let i = 0; i < s.vdis; i++) {
      const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, {
        flags: Flag.CMD_WRITE,
        dataLength: SD_MAX_VDI_LEN,
      });
      req.vdi.vdiSize = BigInt(s.objectsPerVdi) << BigInt(BLOCK_SIZE_SHIFT);
      req.vdi.copies = s.copies;
      req.vdi.blockSizeShift = BLOCK_SIZE_SHIFT;
      const gw = this.#prng.pick(this.#serving());
      const v = await this.#admin(gw.name, req, encodeFixedString(`vdi${i}`, SD_MAX_VDI_LEN));
      if (v?.rsp.result !== Res.SUCCESS) return `NEW_VDI vdi${i} failed: ${v?.rsp.result}`;
      vids.push(v.rsp.vdi.vdiId);
    }
    this.#w.trace.event(`formatted (copies ${s.copies}), VDIs ${vids.map((v) => v.toString(16))}`);
    return vids;
  }

  /** Sends one admin request, driving the clock until it is answered. */
  async #admin(to: string, req: SdReq, data?: Uint8Array): Promise<Reply | null> {
    const { clock, net } = this.#w;
    let reply: Reply | null = null;
    let done = false;
    (async () => {
      const c = await net.connect("admin", to);
      try {
        reply = await c.request(req, data);
      } finally {
        c.close();
      }
    })().catch((e) => this.#w.trace.event(`admin request to ${to}: ${String(e)}`))
      .finally(() => done = true);
    await clock.runUntil(() => done, clock.now() + SETUP_DEADLINE_MS);
    return reply;
  }

  /** The cluster finished recovering: one epoch everywhere, every member done with it. */
  #recovered(): boolean {
    const serving = this.#serving();
    if (serving.length === 0) return false;
    if (this.nodes.some((n) => n.inc !== null && !n.inc.dead && !n.inc.serving)) return false;
    const epoch = serving[0].inc!.sheep.cinfo.epoch;
    return serving.every((n) => {
      const sh = n.inc!.sheep;
      return sh.cinfo.epoch === epoch && sh.cinfo.status === ClusterStatus.OK &&
        sh.recovery.lastGathered === epoch && sh.cinfo.nodes.length === serving.length;
    });
  }

  async #schedule(actions: number): Promise<void> {
    const { clock, trace } = this.#w;
    const s = this.#shape;
    for (let i = 0; i < actions; i++) {
      await clock.sleep(this.#prng.between(s.gapMs[0], s.gapMs[1]));
      if (this.#recovered()) this.#lost.clear();
      const serving = this.#serving();
      const down = this.nodes.filter((n) => n.inc === null || n.inc.dead);
      const choices: string[] = ["wait"];
      const canLose = this.#lost.size + 1 <= s.copies - 1 && serving.length > s.copies;
      if (canLose) choices.push("crash", "crash", "stop");
      if (down.length > 0) choices.push("restart", "restart");
      if (this.nodes.length < s.maxNodes) choices.push("join");
      const what = this.#prng.pick(choices);
      if (what === "crash" || what === "stop") {
        const victim = this.#prng.pick(serving);
        this.#lost.add(victim);
        trace.event(`${what} ${victim.name}`);
        if (what === "crash") victim.crash();
        else {
          victim.stop().then(
            () => trace.event(`${victim.name} stopped`),
            (e) => trace.event(`${victim.name} stop failed: ${String(e)}`),
          );
        }
      } else if (what === "restart") {
        this.#launch(this.#prng.pick(down), "restart");
      } else if (what === "join") {
        this.#launch(this.#addNode(), "join new");
      }
    }
  }

  /** Lets the clients resend what failed and the cluster recover, then checks it. */
  async #settleAndCheck(workload: Workload): Promise<string[]> {
    const { clock, trace } = this.#w;
    const deadline = clock.now() + SETTLE_DEADLINE_MS;
    await clock.runUntil(() => workload.running === 0, deadline);
    let settled = false;
    workload.settle(deadline).then((ok) => settled = ok);
    const ok = await clock.runUntil(() => settled && this.#recovered(), deadline);
    if (!ok) {
      return [
        settled
          ? "the cluster did not finish recovering in time"
          : `${workload.unsettled()} blocks still not acknowledged after retries`,
      ];
    }
    // Quiet: let the last cluster messages (epoch times, purges) land.
    await clock.runUntil(() => false, clock.now() + 1000);
    if (!this.#recovered()) return ["the cluster left the recovered state while idle"];
    trace.event(`settled at epoch ${this.#serving()[0].inc!.sheep.cinfo.epoch}`);
    let failures: string[] = [];
    let checked = false;
    const leaks: string[] = [];
    checkCluster(
      this.#serving(),
      workload,
      this.#shape.copies,
      BLOCK_SIZE_SHIFT,
      CLIENT_BLOCK,
      this.#deleted,
      this.#w.trace.unreleased,
      (what) => leaks.push(what),
    )
      .then((f) => failures = f, (e) => failures = [`check error: ${String(e)}`])
      .finally(() => checked = true);
    await clock.runUntil(() => checked, clock.now() + SETTLE_DEADLINE_MS);
    if (!checked) return ["the checks did not finish in time"];
    if (this.#failOnLeaks) return [...failures, ...leaks];
    // A leak found after round 1 is found again after round 2: report it once.
    for (const l of leaks) if (!this.leaks.includes(l)) this.leaks.push(l);
    return failures;
  }

  /** Ends every process (the run is over). */
  shutdown(): void {
    for (const n of this.nodes) n.crash();
  }
}
