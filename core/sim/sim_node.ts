/**
 * One simulated host: its disk (a MemoryDisk, which survives crashes per its crash model), its
 * metadata files, and the incarnation of the sheep running on it, if any. Start runs a real Sheep
 * on the simulation's clock, network and cluster hub; crash makes that process vanish (its timers
 * never fire, its connections fail, its driver leaves, its store loses what was not durable);
 * leave is the clean stop of `systemctl stop`.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { MemoryDriver, type MemoryHub } from "../cluster/memory.ts";
import { makeNode, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { Res } from "../proto/constants.ts";
import { Sheep } from "../sheep/sheep.ts";
import { memoryMetaFiles, type MetaFiles } from "../sheep/meta_files.ts";
import { MemoryDisk, MemoryStore } from "../store/memory_store.ts";
import { Prng } from "../recovery/prng.ts";
import type { SimClock } from "./sim_clock.ts";
import type { SimNetwork } from "./sim_network.ts";
import type { SimTrace } from "./sim_trace.ts";

/** Capacity of a simulated node (bytes). */
const NODE_SPACE = 1n << 40n;

/** What every node of a simulation shares. */
export interface SimWorld {
  readonly clock: SimClock;
  readonly net: SimNetwork;
  readonly hub: MemoryHub;
  readonly trace: SimTrace;
}

/** One running sheep process. */
export interface Incarnation {
  readonly owner: number;
  readonly sheep: Sheep;
  readonly driver: MemoryDriver;
  readonly store: MemoryStore;
  /** Set when the process is gone (crash, clean stop, or its own exit). */
  dead: boolean;
  /** Set once the sheep joined and listens. */
  serving: boolean;
}

/** A simulated host with its persistent state. */
export class SimNode {
  readonly name: string;
  readonly node: SdNode;
  readonly disk = new MemoryDisk();
  readonly meta: MetaFiles = memoryMetaFiles();
  readonly #world: SimWorld;
  readonly #seed: number;
  #starts = 0;
  /** The current process, if one runs. */
  inc: Incarnation | null = null;

  constructor(world: SimWorld, index: number, vnodes: number, seed: number) {
    this.#world = world;
    this.#seed = seed;
    const ip = `10.0.0.${index + 1}`;
    this.node = makeNode(ip, 7000, { nrVnodes: vnodes, zone: index + 1, space: NODE_SPACE });
    this.name = `${ip}:7000`;
  }

  /** True while a process runs and serves. */
  get up(): boolean {
    return this.inc !== null && !this.inc.dead && this.inc.serving;
  }

  /**
   * Starts a sheep on this host's disk and joins it; resolves once it serves. Rejects when the
   * cluster refuses it or the process dies meanwhile.
   */
  async start(): Promise<void> {
    assert(this.inc === null || this.inc.dead, `${this.name} runs already`);
    const { clock, net, hub, trace } = this.#world;
    const owner = clock.newOwner();
    const timers = clock.timersFor(owner, this.name);
    const store = MemoryStore.open(this.disk);
    const driver = new MemoryDriver(hub, { timers });
    const prng = new Prng((this.#seed * 31 + this.#starts++) >>> 0);
    // deno-lint-ignore prefer-const
    let inc: Incarnation;
    const sheep = new Sheep(
      {
        node: structuredClone(this.node),
        space: NODE_SPACE,
        fixedVnodes: true,
        nosync: false,
      },
      {
        store,
        meta: this.meta,
        driver,
        log: trace.logFor(this.name, () => !inc.dead),
        now: () => clock.now(),
        timers,
        connectPeer: (host, port) => {
          if (inc.dead) {
            return Promise.reject(new SdError(Res.NETWORK_ERROR, "the process is gone"));
          }
          return net.connect(this.name, `${host}:${port}`);
        },
        random: () => prng.float(),
        exit: (code, reason) => {
          if (inc.dead) return;
          trace.event(`${this.name} exits (${code}): ${reason}`);
          this.crash();
        },
        stopListening: () => net.stopListening(this.name),
      },
    );
    inc = { owner, sheep, driver, store, dead: false, serving: false };
    this.inc = inc;
    await sheep.load();
    await sheep.join();
    if (inc.dead) throw new SdError(Res.NETWORK_ERROR, `${this.name} died while joining`);
    net.listen(this.name, (req, data, conn) => sheep.handle(req, data, conn));
    inc.serving = true;
  }

  /** The process dies: nothing more runs, what was not durable is lost. */
  crash(): void {
    const inc = this.inc;
    if (inc === null || inc.dead) return;
    inc.dead = true;
    const { clock, net } = this.#world;
    clock.cancelOwner(inc.owner);
    net.crash(this.name);
    inc.driver.kill();
    inc.store.crash();
  }

  /** A clean stop: leave the cluster, close the store, then the process ends. */
  async stop(): Promise<void> {
    const inc = this.inc;
    if (inc === null || inc.dead) return;
    this.#world.net.stopListening(this.name);
    await inc.sheep.close();
    if (inc.dead) return;
    inc.dead = true;
    this.#world.clock.cancelOwner(inc.owner);
    this.#world.net.crash(this.name);
  }
}
