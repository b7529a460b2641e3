/**
 * A deterministic in-process model of a cluster's recovery, for property tests (test support,
 * not used by the daemon): memory stores, the epoch history and rings, the planner, each node's
 * NodeRecovery and the cluster-wide COMPLETE_RECOVERY rule, driven by a seeded Prng. It executes
 * plans the way the daemon's executor must (see the rules in plan.ts):
 *
 * - at an epoch change every member plans, does all its moves and makes them durable (sync)
 *   before anything else;
 * - a fetch tries the sources in order and moves on only on NO_OBJ; a peer serves what
 *   peerCopyFor() says; a copy whose SHA-1 equals a local stale copy is restored locally;
 * - a client write or read of an object a holder is still recovering waits for it (here: the
 *   object is recovered at once, as prioritize() makes the executor do);
 * - a write is acknowledged only when every holder has it, and then it is on all of them.
 *
 * Everything is recorded in `events`, printed with the seed when a check fails.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { makeNode, type SdNode, sortNodes } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { buildRing, type Ring } from "../placement/ring.ts";
import { MemoryDisk, MemoryStore } from "../store/memory_store.ts";
import {
  type EpochRing,
  type Fetch,
  nodeKey,
  peerCopyFor,
  planMoves,
  planRecovery,
  type RecoveryPlan,
} from "./plan.ts";
import {
  gatherInit,
  gatherOnComplete,
  gatherOnMembership,
  type GatherState,
  NodeRecovery,
  type Outcome,
} from "./progress.ts";
import { Prng } from "./prng.ts";

/** Shape of a simulated cluster. */
export interface SimConfig {
  readonly seed: number;
  /** Copies of the VDIs, one VDI per entry. */
  readonly vdiCopies: readonly number[];
  /** Zones are drawn from 1..zones. */
  readonly zones: number;
  readonly initialNodes: number;
  /** Range of vnode counts of storage nodes. */
  readonly vnodes: readonly [number, number];
  /** Probability that a new node is a gateway (0 vnodes). */
  readonly gatewayChance: number;
  /** Probability that a peer read fails transiently (the object is retried later). */
  readonly transientFailureChance: number;
  /** Objects in flight per node. */
  readonly maxInFlight?: number;
}

/** One simulated sheep. */
export interface SimNode {
  readonly key: string;
  readonly node: SdNode;
  readonly disk: MemoryDisk;
  store: MemoryStore | null;
  /** Latest epoch this node was a member of (0: never). */
  storeEpoch: number;
  recovery: NodeRecovery;
  plan: RecoveryPlan | null;
  fetches: Map<bigint, Fetch>;
}

const OBJECT_SIZE = 64;

/** The simulated cluster. */
export class RecoverySim {
  readonly config: SimConfig;
  readonly rng: Prng;
  readonly events: string[] = [];
  epoch = 0;
  now = 0;
  readonly rings = new Map<number, Ring>();
  gather: GatherState = gatherInit(0, []);
  readonly nodes = new Map<string, SimNode>();
  /** Latest acknowledged content of every object. */
  readonly truth = new Map<bigint, Uint8Array>();
  /** Every content ever written to an object (hex). */
  readonly ever = new Map<bigint, Set<string>>();
  /** Nodes that left since the last fully gathered epoch. */
  departed = new Set<string>();
  /** min(copies, zones) over the epochs since the last fully gathered one. */
  minReplicas = Infinity;
  writesAcked = 0;
  writesRefused = 0;
  readsChecked = 0;
  readonly #notices: { epoch: number; key: string }[] = [];
  #nextNodeId = 1;
  #nextIdx = 0;
  #version = 0;

  private constructor(config: SimConfig) {
    this.config = config;
    this.rng = new Prng(config.seed);
  }

  /** A formatted cluster of `initialNodes` nodes at epoch 1, with nothing stored. */
  static async create(config: SimConfig): Promise<RecoverySim> {
    const sim = new RecoverySim(config);
    for (let i = 0; i < config.initialNodes; i++) sim.#newNode(i === 0 ? false : undefined);
    await sim.#epochChange("format");
    sim.gather = gatherInit(sim.epoch, sim.members().map((n) => n.key), sim.epoch);
    sim.departed = new Set();
    sim.minReplicas = sim.#replicasOf(sim.ring());
    return sim;
  }

  /** Nodes that are up, in v1.0 order. */
  members(): SimNode[] {
    return sortNodes([...this.nodes.values()].filter((n) => n.store).map((n) => n.node))
      .map((n) => this.nodes.get(nodeKey(n))!);
  }

  /** Nodes that are down. */
  downNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.store);
  }

  ring(epoch = this.epoch): Ring {
    return this.rings.get(epoch)!;
  }

  copiesOf(oid: bigint): number {
    const vid = Number((oid >> 32n) & 0xffffffn);
    const c = this.config.vdiCopies[vid - 1];
    assert(c !== undefined, `no VDI ${vid}`);
    return c;
  }

  /**
   * The whole cluster is killed and restarted: every store drops what it had not synced, the
   * messages in flight are lost, and the nodes come back at the same epoch (all members of the
   * last epoch are back, so no new epoch), knowing no last gathered epoch, and plan again.
   */
  async restartAll(): Promise<void> {
    this.events.push(`restart the whole cluster at epoch ${this.epoch}`);
    for (const m of this.members()) {
      m.store!.crash();
      m.store = MemoryStore.open(m.disk);
      m.recovery = this.#newRecovery();
    }
    this.#notices.length = 0;
    this.gather = gatherInit(this.epoch, this.members().map((m) => m.key), 0);
    await this.#planAll();
  }

  /** A new node joins. */
  async join(): Promise<void> {
    const n = this.#newNode();
    this.events.push(`join ${n.key} zone ${n.node.zone} vnodes ${n.node.nrVnodes}`);
    await this.#epochChange(`join ${n.key}`);
  }

  /** A node that left comes back with its store. */
  async rejoin(key: string): Promise<void> {
    const n = this.nodes.get(key)!;
    assert(!n.store, "rejoin of a member");
    n.store = MemoryStore.open(n.disk);
    this.events.push(`rejoin ${key} (store epoch ${n.storeEpoch})`);
    await this.#epochChange(`rejoin ${key}`);
  }

  /** A member leaves: cleanly, or killed (un-synced changes dropped). */
  async leave(key: string, crash: boolean): Promise<void> {
    const n = this.nodes.get(key)!;
    assert(n.store, "leave of a node that is down");
    if (crash) n.store.crash();
    else await n.store.close();
    n.store = null;
    this.departed.add(key);
    this.events.push(`${crash ? "kill" : "leave"} ${key}`);
    await this.#epochChange(`leave ${key}`);
  }

  /**
   * Whether `key` may leave without exceeding the tolerance: the nodes gone since the last fully
   * gathered epoch stay fewer than the replicas every object has had since.
   */
  canLeaveSafely(key: string): boolean {
    const rest = this.members().filter((n) => n.key !== key).map((n) => n.node);
    const ring = buildRing(rest);
    if (ring.isEmpty) return false;
    const departed = new Set(this.departed).add(key);
    return departed.size <= Math.min(this.minReplicas, this.#replicasOf(ring)) - 1;
  }

  /** Whether `key` may leave at all (some node with vnodes stays). */
  canLeave(key: string): boolean {
    return !buildRing(this.members().filter((n) => n.key !== key).map((n) => n.node)).isEmpty;
  }

  /**
   * One unit of background work: some node starts and finishes one object, or notifies its
   * completion; when nothing can run now, the clock jumps to the next due time. False when
   * every node is idle.
   */
  async step(): Promise<boolean> {
    // COMPLETE_RECOVERY messages travel through the cluster driver: delivered in order, maybe
    // after a membership change.
    if (this.#notices.length > 0 && this.rng.chance(0.5)) {
      await this.#deliverNotice();
      return true;
    }
    let wake = Infinity;
    for (const n of this.rng.shuffle(this.members())) {
      const r = n.recovery.next(this.now);
      if (r.kind === "start") {
        await this.#runFetch(n, r.epoch, r.oid);
        this.now++;
        return true;
      }
      if (r.kind === "notify") {
        n.recovery.notified(r.epoch);
        this.#notices.push({ epoch: r.epoch, key: n.key });
        this.now++;
        return true;
      }
      if (r.kind === "wait") wake = Math.min(wake, r.until);
    }
    if (wake === Infinity) {
      if (this.#notices.length === 0) return false;
      await this.#deliverNotice();
      return true;
    }
    assert(wake > this.now, "a wait in the past");
    this.now = wake;
    return true;
  }

  /** Runs background work until every node is done. */
  async settle(maxSteps = 1_000_000): Promise<void> {
    for (let i = 0; i < maxSteps; i++) if (!(await this.step())) return;
    throw new Error("recovery did not settle");
  }

  /** A client creates a new object (CREATE never waits). */
  async createObject(): Promise<bigint> {
    const vid = 1 + this.rng.int(this.config.vdiCopies.length);
    const oid = (BigInt(vid) << 32n) | BigInt(this.#nextIdx++);
    const data = this.#content(oid);
    for (const h of this.#holders(oid)) {
      await h.store!.create(oid, 0, data, OBJECT_SIZE, { sparse: false });
      h.recovery.createdLocally(oid);
    }
    this.#ack(oid, data);
    this.events.push(`create ${oid.toString(16)}`);
    return oid;
  }

  /**
   * A client writes a new version of an existing object: every holder still recovering it
   * recovers it first; acknowledged when all holders have it. False when it could not be.
   */
  async writeObject(oid: bigint): Promise<boolean> {
    const holders = this.#holders(oid);
    for (const h of holders) {
      if (!(await this.#ensureLocal(h, oid))) {
        this.writesRefused++;
        this.events.push(`write ${oid.toString(16)} refused: ${h.key} cannot get it`);
        return false;
      }
    }
    const data = this.#content(oid);
    for (const h of holders) await h.store!.write(oid, 0, data);
    this.#ack(oid, data);
    return true;
  }

  /**
   * A client reads an object from one of its holders (recovering it first if needed) and checks
   * it is the last acknowledged content. Returns the bytes, or null when it could not be read.
   */
  async readObject(oid: bigint): Promise<Uint8Array | null> {
    const h = this.rng.pick(this.#holders(oid));
    if (!(await this.#ensureLocal(h, oid))) return null;
    this.readsChecked++;
    return await h.store!.read(oid, 0, OBJECT_SIZE);
  }

  /** The oids of the objects written so far. */
  objects(): bigint[] {
    return [...this.truth.keys()];
  }

  /**
   * Checks the settled state (call after settle()). Always: every live copy anywhere is a
   * content that was written to that object. When `lossless`: every object is live on exactly
   * its current holders (min(copies, zones) of them) with its last acknowledged content, nothing
   * else is live, and no stale copy is left. Throws with a description otherwise.
   */
  async check(lossless: boolean): Promise<void> {
    const fail = (msg: string) => {
      throw new Error(`seed ${this.config.seed}: ${msg}\n  ${this.events.slice(-60).join("\n  ")}`);
    };
    const ring = this.ring();
    for (const n of this.members()) {
      for (const oid of await n.store!.list()) {
        const data = await n.store!.read(oid, 0, OBJECT_SIZE);
        if (!this.ever.get(oid)?.has(hex(data))) fail(`${n.key} has unknown content of ${oid}`);
        if (lossless && !this.#holders(oid).includes(n)) {
          fail(`${n.key} keeps ${oid.toString(16)} live but is not a holder`);
        }
      }
      if (lossless && (await n.store!.listStale()).length > 0) {
        fail(`${n.key} keeps stale copies after a full recovery`);
      }
    }
    if (!lossless) return;
    if (this.gather.lastGathered !== this.epoch) fail("the epoch is not fully gathered");
    for (const [oid, want] of this.truth) {
      const holders = this.#holders(oid);
      const expected = Math.min(this.copiesOf(oid), ring.nrZones);
      if (holders.length !== expected) fail(`${oid} has ${holders.length} holders`);
      for (const h of holders) {
        if (!(await h.store!.exists(oid))) fail(`${h.key} lacks ${oid.toString(16)}`);
        const got = await h.store!.read(oid, 0, OBJECT_SIZE);
        if (hex(got) !== hex(want)) {
          fail(`${h.key} has an old version of ${oid.toString(16)}: ${hex(got)} ≠ ${hex(want)}`);
        }
      }
    }
  }

  #newNode(gateway?: boolean): SimNode {
    const id = this.#nextNodeId++;
    const isGateway = gateway ?? this.rng.chance(this.config.gatewayChance);
    const [lo, hi] = this.config.vnodes;
    const node = makeNode(`10.0.${id >> 8}.${id & 0xff}`, 7000, {
      zone: 1 + this.rng.int(this.config.zones),
      nrVnodes: isGateway ? 0 : this.rng.between(lo, hi),
    });
    const key = nodeKey(node);
    const disk = new MemoryDisk();
    const n: SimNode = {
      key,
      node,
      disk,
      store: MemoryStore.open(disk),
      storeEpoch: 0,
      recovery: this.#newRecovery(),
      plan: null,
      fetches: new Map(),
    };
    this.nodes.set(key, n);
    return n;
  }

  #newRecovery(): NodeRecovery {
    return new NodeRecovery({ maxInFlight: this.config.maxInFlight ?? 1, retryDelayMs: 5 });
  }

  #replicasOf(ring: Ring): number {
    return Math.min(...this.config.vdiCopies, ring.nrZones);
  }

  #holders(oid: bigint): SimNode[] {
    return this.ring().place(oid, this.copiesOf(oid)).map((n) => this.nodes.get(nodeKey(n))!);
  }

  async #epochChange(why: string): Promise<void> {
    this.epoch++;
    const members = this.members();
    const ring = buildRing(members.map((n) => n.node));
    this.rings.set(this.epoch, ring);
    this.events.push(`epoch ${this.epoch} (${why}): ${members.map((n) => n.key).join(" ")}`);
    this.gather = gatherOnMembership(this.gather, this.epoch, members.map((n) => n.key));
    this.minReplicas = Math.min(this.minReplicas, this.#replicasOf(ring));
    await this.#planAll();
  }

  /** Every member plans the current epoch, makes its moves durable and starts its recovery. */
  async #planAll(): Promise<void> {
    const members = this.members();
    const from = Math.max(1, this.gather.lastGathered);
    const epochs: EpochRing[] = [];
    for (let e = from; e <= this.epoch; e++) epochs.push({ epoch: e, ring: this.rings.get(e)! });
    const common = {
      currentEpoch: this.epoch,
      epochs,
      copiesOf: (oid: bigint) => this.copiesOf(oid),
    };
    // As the executor does: moves first, durable, before anything else at this epoch.
    const notes = new Map<string, string>();
    for (const m of members) {
      const store = m.store!;
      m.recovery.begin(this.epoch);
      const { moves, trustedLocal } = planMoves({
        ...common,
        self: m.node,
        storeEpoch: m.storeEpoch,
        local: await store.list(),
        localStale: await store.listStale(),
      });
      for (const mv of moves) await store.moveToStale(mv.oid, mv.epoch);
      store.sync();
      m.storeEpoch = this.epoch;
      if (moves.length > 0 || !trustedLocal) {
        notes.set(
          m.key,
          `move ${moves.length} (tag ${moves[0]?.epoch ?? "-"})` +
            (trustedLocal ? "" : " (store not trusted)"),
        );
      }
    }
    const gathered = [];
    for (const m of members) {
      const live = await m.store!.list();
      const stale = (await m.store!.listStale()).map((s) => s.oid);
      gathered.push({ node: m.node, oids: [...live, ...stale] });
    }
    for (const m of members) {
      const store = m.store!;
      const plan = planRecovery({
        ...common,
        self: m.node,
        storeEpoch: m.storeEpoch,
        gathered,
        local: await store.list(),
        localStale: await store.listStale(),
      });
      assert(plan.missingLists.length === 0, "the simulation gathers every list");
      assert(plan.moves.length === 0, "moves left after the moves");
      m.plan = plan;
      m.fetches = new Map(plan.fetches.map((f) => [f.oid, f]));
      m.recovery.setPlan(this.epoch, plan.fetches.map((f) => f.oid));
      const note = notes.get(m.key);
      if (note || plan.fetches.length > 0) {
        this.events.push(`  ${m.key}: ${note ?? "move 0"}, fetch ${plan.fetches.length}`);
      }
    }
  }

  async #deliverNotice(): Promise<void> {
    const { epoch, key } = this.#notices.shift()!;
    const { state, purge } = gatherOnComplete(this.gather, epoch, key);
    this.events.push(`${key} completed epoch ${epoch}${state === this.gather ? " (ignored)" : ""}`);
    this.gather = state;
    if (purge) await this.#purge();
  }

  async #purge(): Promise<void> {
    this.events.push(`epoch ${this.epoch} fully gathered: purge stale`);
    for (const m of this.members()) await m.store!.purgeStale();
    this.departed = new Set();
    this.minReplicas = this.#replicasOf(this.ring());
  }

  /** Makes sure holder `h` has `oid` live, recovering it first with priority. */
  async #ensureLocal(h: SimNode, oid: bigint): Promise<boolean> {
    const store = h.store!;
    // The request waits through transient failures (each wait bumps the object again).
    for (let attempt = 0; attempt < 50; attempt++) {
      if (await store.exists(oid)) return true;
      if (!h.recovery.mustWait(oid, false)) return false;
      const r = h.recovery.next(this.now);
      assert(r.kind === "start" && r.oid === oid, `a waited-for object did not start first`);
      await this.#runFetch(h, r.epoch, oid);
      this.now++;
    }
    return await store.exists(oid);
  }

  async #runFetch(n: SimNode, epoch: number, oid: bigint): Promise<void> {
    const f = n.fetches.get(oid);
    assert(f, `no fetch for ${oid}`);
    const outcome = await this.#fetch(n, f);
    if (outcome !== "recovered") {
      this.events.push(`  ${n.key}: ${oid.toString(16)} ${outcome}`);
    }
    const { accepted } = n.recovery.finish(epoch, oid, outcome, this.now);
    assert(accepted, "a fetch of the current plan was not accepted");
  }

  async #fetch(n: SimNode, f: Fetch): Promise<Outcome> {
    const store = n.store!;
    if (await store.exists(f.oid)) return "recovered";
    // A transient failure (network, peer EIO) hits one fetch at one of its peer sources.
    const failAt = this.rng.chance(this.config.transientFailureChance)
      ? this.rng.int(f.sources.length + 1)
      : -1;
    for (const [i, src] of f.sources.entries()) {
      if (src.kind === "local") {
        try {
          await store.restoreFromStale(f.oid, src.epoch);
          return "recovered";
        } catch (e) {
          if (e instanceof SdError && e.result === Res.NO_OBJ) continue;
          throw e;
        }
      }
      const p = this.nodes.get(nodeKey(src.node));
      assert(p?.store, "a source that is not a member");
      if (i === failAt) return "retry";
      const copy = await peerRead(p.store, f.oid, src.epoch, this.epoch);
      if (!copy) continue;
      const sha = sha1Of(copy);
      for (const e of f.hashCandidates) {
        let local: Uint8Array;
        try {
          local = await store.sha1Stale(f.oid, e);
        } catch (err) {
          if (err instanceof SdError && err.result === Res.NO_OBJ) continue;
          throw err;
        }
        if (hex(local) === hex(sha)) {
          await store.restoreFromStale(f.oid, e);
          return "recovered";
        }
      }
      try {
        await store.create(f.oid, 0, copy, copy.length, { sparse: false });
      } catch (e) {
        if (!(e instanceof SdError && e.result === Res.OID_EXIST)) throw e;
      }
      return "recovered";
    }
    return "absent";
  }

  #content(oid: bigint): Uint8Array {
    const out = new Uint8Array(OBJECT_SIZE);
    const v = new DataView(out.buffer);
    v.setBigUint64(0, oid);
    v.setUint32(8, ++this.#version);
    for (let i = 12; i < OBJECT_SIZE; i++) out[i] = this.rng.int(256);
    return out;
  }

  #ack(oid: bigint, data: Uint8Array): void {
    this.truth.set(oid, data);
    let s = this.ever.get(oid);
    if (!s) this.ever.set(oid, s = new Set());
    s.add(hex(data));
    this.writesAcked++;
  }
}

/** What a peer returns to READ_PEER(CMD_RECOVERY, tgt_epoch): the whole object or null (NO_OBJ). */
export async function peerRead(
  store: MemoryStore,
  oid: bigint,
  tgtEpoch: number,
  peerEpoch: number,
): Promise<Uint8Array | null> {
  const live = await store.exists(oid);
  const stale = (await store.listStale()).filter((s) => s.oid === oid).map((s) => s.epoch);
  const which = peerCopyFor(live, stale, tgtEpoch, peerEpoch);
  if (which === null) return null;
  if (which === "live") return await store.read(oid, 0, await store.size(oid));
  const size = await store.staleSize(oid, which.staleEpoch);
  return await store.readStale(oid, which.staleEpoch, 0, size);
}

function sha1Of(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(data).digest());
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
