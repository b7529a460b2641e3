/**
 * The sheep daemon: request life cycle (version check, cluster-state gate, dispatch by op class),
 * cluster-op execution through the driver (work step under block/unblock, main step on every node
 * in total order), membership handling (join decisions, epochs) and start/stop.
 *
 * @module
 */

import {
  ClusterFlag,
  ClusterStatus,
  Flag,
  Op,
  Res,
  SD_DEFAULT_BLOCK_SIZE_SHIFT,
  SD_DEFAULT_COPIES,
  SD_FORMAT_VERSION,
  SD_MAX_NODES,
  SD_NODE_SIZE,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { type ClusterInfo, decodeClusterInfo, encodeClusterInfo } from "../proto/cluster_info.ts";
import { decodeConfig, encodeConfig, type SheepConfig } from "../proto/config.ts";
import { decodeEpochFile, encodeEpochFile } from "../proto/epoch_log.ts";
import { decodeInodeHeader } from "../proto/inode.ts";
import {
  addrToString,
  decodeNode,
  encodeNode,
  nodeAddrString,
  sameNode,
  type SdNode,
  sortNodes,
} from "../proto/node.ts";
import { AppliedOps } from "./applied_ops.ts";
import { isVdiObj, oidToVid } from "../hash/oid.ts";
import { buildRing, type Ring } from "../placement/ring.ts";
import type { ClusterDriver, JoinDecision } from "../cluster/driver.ts";
import { sleep, type Timers } from "../cluster/deadline.ts";
import { applyLeave, decideFirst, decideJoin } from "../cluster/membership.ts";
import type { ObjectStore } from "../store/object_store.ts";
import { type PeerConnect, PeerPool } from "../net/peer_pool.ts";
import type { ConnectionInfo, ServerReply } from "../net/server.ts";
import { checkLimits } from "../limits.ts";
import type { SheepContext } from "./context.ts";
import type { SheepLog } from "./log.ts";
import { SheepStats } from "./stats.ts";
import { VdiRegistry } from "./vdi_registry.ts";
import { Gateway, WORK_STEP_RETRY_DEADLINE_MS } from "./gateway.ts";
import { OP_TABLE } from "./op_table.ts";
import {
  decodeDegradedMessage,
  decodeEpochTime,
  decodeOpMessage,
  encodeEpochTime,
  encodeOpMessage,
  messageKind,
  MsgKind,
} from "./cluster_msg.ts";
import {
  delVdiWork,
  encodeDelVdiOutcome,
  lookupVdi,
  newVdiWork,
  nowStamp,
  parseNameTag,
  vdiAttrWork,
} from "./vdi_ops.ts";
import { applyMainStep, encodeNewVdiOutcome } from "./cluster_ops.ts";
import { releaseLocksOf } from "./vdi_lock.ts";
import { type MetaFiles } from "./meta_files.ts";
import { handleGatewayOp } from "./gateway_ops.ts";
import { handleLocalOp } from "./local_ops.ts";
import { handlePeerOp } from "./peer_handlers.ts";
import { RecoveryExecutor } from "./recovery_executor.ts";

/** Largest epoch file: SD_MAX_NODES nodes and the 8-byte time. */
const EPOCH_FILE_MAX = SD_MAX_NODES * SD_NODE_SIZE + 8;

/** How long a member keeps trying to pull a joiner's VDI state (the joiner must listen first). */
const VDI_PULL_DEADLINE_MS = 30_000;
const VDI_PULL_RETRY_MS = 100;

/** How long a member waits for a cluster op to be applied before answering AGAIN (ms). */
const APPLIED_WAIT_MS = 10_000;
/** Cluster ops that change nothing on the other nodes, or after which they exit. */
const NO_BARRIER_OPS = new Set<number>([Op.GET_VDI_INFO, Op.SHUTDOWN]);

/** How long a peer request with a newer epoch waits for this node to catch up (ms). */
const EPOCH_WAIT_MS = 10_000;

/** What a sheep needs from its surroundings (all injected, so tests and the simulation can fake them). */
export interface SheepDeps {
  store: ObjectStore;
  meta: MetaFiles;
  driver: ClusterDriver;
  log: SheepLog;
  /** Wall clock in ms. */
  now(): number;
  /** Every timer and sleep of the sheep (virtual time in the simulation). */
  timers: Timers;
  /** Opens a connection to another sheep (TCP in the daemon, the simulated network in the sim). */
  connectPeer: PeerConnect;
  random(): number;
  /** Called when the daemon must end (shutdown, kill, lost cluster), with the exit code. */
  exit(code: number, reason: string): void;
  /** Stops accepting new client connections. */
  stopListening(): void;
}

/** Node parameters given on the command line. */
export interface SheepIdentity {
  node: SdNode;
  /** Node capacity when the config has none yet. */
  space: bigint;
  /** `-V` was given (fixed vnodes). */
  fixedVnodes: boolean;
  nosync: boolean;
  /** `sheep -R max=N,interval=MS`: the initial recovery throttle (none when absent). */
  recoveryThrottle?: { max: number; intervalMs: number } | null;
}

interface PendingOp {
  resolve(r: { rsp: SdRsp; data?: Uint8Array; members: SdNode[] }): void;
}

/** One sheep. */
export class Sheep implements SheepContext {
  readonly self: SdNode;
  readonly selfName: string;
  readonly store: ObjectStore;
  readonly vdis = new VdiRegistry();
  readonly peers: PeerPool;
  readonly log: SheepLog;
  readonly stats = new SheepStats();
  cinfo: ClusterInfo;
  members: SdNode[] = [];
  ring: Ring;
  killed = false;
  readonly gateway: Gateway;
  /** The gateway of work steps: they run inside the block, so they fail fast (see gateway.ts). */
  readonly workGateway: Gateway;
  /** Recovery after epoch changes, and the admission of local peer I/O meanwhile. */
  readonly recovery: RecoveryExecutor;
  readonly deps: SheepDeps;
  readonly identity: SheepIdentity;
  config: SheepConfig;

  #seq = 1;
  /** Cluster ops applied on this node, for the WAIT_APPLIED barrier. */
  readonly applied: AppliedOps;
  #closed = false;
  readonly #pending = new Map<number, PendingOp>();
  readonly #epochWaiters = new Set<{ epoch: number; wake(): void }>();

  constructor(identity: SheepIdentity, deps: SheepDeps) {
    checkLimits();
    this.identity = identity;
    this.self = identity.node;
    this.selfName = nodeAddrString(identity.node);
    this.deps = deps;
    this.store = deps.store;
    this.log = deps.log;
    this.peers = new PeerPool(deps.connectPeer);
    this.applied = new AppliedOps(deps.timers);
    this.config = {
      ctime: 0n,
      // v1.0 sets the vnode strategy at start: auto unless -V; dog format checks it.
      flags: identity.fixedVnodes ? 0 : ClusterFlag.AUTO_VNODES,
      copies: SD_DEFAULT_COPIES,
      defaultStore: "plain",
      shutdown: false,
      copyPolicy: 0,
      blockSizeShift: SD_DEFAULT_BLOCK_SIZE_SHIFT,
      version: SD_FORMAT_VERSION,
      space: identity.space,
    };
    this.cinfo = this.#cinfoFromConfig(0, []);
    this.ring = buildRing([]);
    this.gateway = new Gateway(this, deps);
    this.workGateway = new Gateway(this, deps, WORK_STEP_RETRY_DEADLINE_MS);
    // Op sequence numbers start at a random point so a restarted sheep's ops are not mistaken for
    // its previous incarnation's in the members' applied sets.
    this.#seq = 1 + Math.floor(deps.random() * 0x7fff0000);
    this.recovery = new RecoveryExecutor(this, identity.recoveryThrottle ?? null);
  }

  #cinfoFromConfig(epoch: number, nodes: SdNode[]): ClusterInfo {
    return {
      protoVer: SD_SHEEP_PROTO_VER,
      disableRecovery: false,
      epoch,
      ctime: this.config.ctime,
      flags: this.config.flags,
      nrCopies: this.config.copies,
      copyPolicy: this.config.copyPolicy,
      status: ClusterStatus.WAIT,
      blockSizeShift: this.config.blockSizeShift,
      defaultStore: this.config.defaultStore,
      nodes,
    };
  }

  /** Loads config, latest epoch and VDI state from the store directory. */
  async load(): Promise<void> {
    const cfgBytes = await this.deps.meta.readConfig();
    if (cfgBytes) {
      const cfg = decodeConfig(cfgBytes);
      if (cfg.version !== SD_FORMAT_VERSION) {
        throw new SdError(
          Res.INVALID_PARMS,
          `store format version ${cfg.version} is not ${SD_FORMAT_VERSION} (migration is not supported)`,
        );
      }
      this.config = { ...cfg, space: cfg.space || this.identity.space };
      if (cfg.ctime === 0n) {
        const auto = this.identity.fixedVnodes ? 0 : ClusterFlag.AUTO_VNODES;
        this.config.flags = (cfg.flags & ~ClusterFlag.AUTO_VNODES) | auto;
      }
    } else {
      await this.deps.meta.writeConfig(encodeConfig(this.config));
    }
    this.self.space = this.config.space;
    const epochs = await this.deps.meta.listEpochs();
    let nodes: SdNode[] = [];
    let epoch = 0;
    if (epochs.length > 0 && this.config.ctime !== 0n) {
      epoch = epochs[epochs.length - 1];
      nodes = decodeEpochFile((await this.deps.meta.readEpoch(epoch))!).nodes;
    }
    this.cinfo = this.#cinfoFromConfig(epoch, nodes);
    await this.#scanVdis();
    await this.recovery.init();
  }

  async #scanVdis(): Promise<void> {
    for (const oid of await this.store.list()) {
      if (!isVdiObj(oid)) continue;
      try {
        const h = decodeInodeHeader(await this.store.read(oid, 0, 572));
        this.vdis.add({
          vid: oidToVid(oid),
          nrCopies: h.nrCopies,
          copyPolicy: h.copyPolicy,
          blockSizeShift: h.blockSizeShift,
          snapshot: h.snapCtime !== 0n,
          deleted: h.name === "",
          parentVid: h.parentVdiId,
        });
      } catch (e) {
        this.log.error("cannot read a local inode", { oid: oid.toString(16), error: String(e) });
      }
    }
  }

  /** Joins the cluster through the driver; resolves once this node is a member. */
  async join(): Promise<void> {
    await this.deps.driver.init({
      onJoinCheck: (joining, members, opaque) => this.#onJoinCheck(joining, members, opaque),
      onAccept: (joined, members, opaque) => this.#onAccept(joined, members, opaque),
      onLeave: (left, members) => this.#onLeave(left, members),
      onNotify: (sender, msg) => this.#onNotify(sender, msg),
      onUpdateNode: (_node, members) => {
        this.members = [...members];
      },
      onLost: (reason) => this.#onLost(reason),
    });
    try {
      await this.deps.driver.join(this.self, encodeClusterInfo(this.cinfo));
    } catch (e) {
      // A refusal (another cluster's store, a conflicting epoch history, …): say why, then the
      // daemon exits non-zero without having touched the cluster.
      const reason = e instanceof Error ? e.message : String(e);
      this.log.error("the cluster refused this node", { reason, epoch: this.cinfo.epoch });
      throw new SdError(
        e instanceof SdError ? e.result : Res.JOIN_FAILED,
        `the cluster refused this node: ${reason}`,
        { cause: e },
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Membership

  #onJoinCheck(joining: SdNode, members: readonly SdNode[], opaque: Uint8Array): JoinDecision {
    let theirs: ClusterInfo;
    try {
      theirs = decodeClusterInfo(opaque);
    } catch (e) {
      return { accept: false, opaque, reason: `malformed join payload: ${String(e)}` };
    }
    const v = decideJoin(this.cinfo, members, joining, theirs);
    if (!v.accept) {
      this.log.warn("refusing a node", { node: nodeAddrString(joining), reason: v.reason });
    }
    return { accept: v.accept, opaque: encodeClusterInfo(v.cinfo), reason: v.reason };
  }

  async #onAccept(joined: SdNode, members: readonly SdNode[], opaque: Uint8Array): Promise<void> {
    this.members = [...members];
    let ci = decodeClusterInfo(opaque);
    const isSelf = sameNode(joined, this.self);
    if (isSelf && members.length === 1) ci = decideFirst(this.cinfo, this.self).cinfo;
    const prevEpoch = this.cinfo.epoch;
    // A joiner learns every VDI (and so every object's copies) before recovery places objects.
    if (isSelf && members.length > 1) await this.#pullVdiState();
    await this.#adopt(ci, { disableRecovery: this.cinfo.disableRecovery && !isSelf });
    this.log.info("node joined", {
      node: nodeAddrString(joined),
      epoch: ci.epoch,
      status: ci.status,
      members: members.length,
    });
    if (isSelf && members.length > 1) {
      await this.#pullEpochs();
    } else if (!isSelf) {
      // As v1.0's get_vdis(): the joiner pulls from every member, and every member pulls from
      // the joiner, which may know VDIs nobody here knows (its inodes, when the cluster restarts
      // one node at a time). The joiner listens only once its own accept is through, so this
      // runs beside the event stream and retries for a while.
      this.#pullVdiStateFrom(joined);
    }
    if (ci.epoch > prevEpoch && this.#isMaster()) this.#announceEpochTime(ci.epoch);
  }

  async #onLeave(left: SdNode, members: readonly SdNode[]): Promise<void> {
    this.members = [...members];
    this.peers.forget(nodeAddrString(left).split(":")[0], left.nid.port);
    // Every member drops the locks of a node that left, at the same place in the event order.
    const unlocked = releaseLocksOf(this.vdis, left.nid);
    if (unlocked.length > 0) {
      this.log.info("released the VDI locks of a node that left", {
        node: nodeAddrString(left),
        vids: unlocked.map((v) => v.toString(16)),
      });
    }
    const { cinfo, newEpoch } = applyLeave(this.cinfo, members);
    await this.#adopt(cinfo, {});
    this.log.info("node left", { node: nodeAddrString(left), epoch: cinfo.epoch });
    if (newEpoch && this.#isMaster()) this.#announceEpochTime(cinfo.epoch);
  }

  /** The first member in v1.0's node order announces epoch times (any fixed choice would do). */
  #isMaster(): boolean {
    const first = sortNodes(this.members)[0];
    return first !== undefined && sameNode(first, this.self);
  }

  #announceEpochTime(epoch: number): void {
    const time = BigInt(Math.floor(this.deps.now() / 1000));
    this.deps.driver.notify(encodeEpochTime(epoch, time)).catch((e) =>
      this.log.warn("cannot announce the epoch time", { error: String(e) })
    );
  }

  /** Makes `ci` the current state: epoch file, config, ring, waiters. */
  async #adopt(ci: ClusterInfo, opts: { disableRecovery?: boolean }): Promise<void> {
    const next: ClusterInfo = {
      ...ci,
      disableRecovery: opts.disableRecovery ?? ci.disableRecovery,
    };
    if (next.ctime !== 0n && next.epoch > 0) {
      const have = await this.deps.meta.readEpoch(next.epoch);
      if (!have) {
        const time = BigInt(Math.floor(this.deps.now() / 1000));
        await this.deps.meta.writeEpoch(next.epoch, encodeEpochFile(next.nodes, time));
      }
    }
    if (
      next.ctime !== this.config.ctime || next.flags !== this.config.flags ||
      next.nrCopies !== this.config.copies || next.blockSizeShift !== this.config.blockSizeShift ||
      this.config.shutdown
    ) {
      this.config = {
        ...this.config,
        ctime: next.ctime,
        flags: next.flags,
        copies: next.nrCopies,
        copyPolicy: next.copyPolicy,
        blockSizeShift: next.blockSizeShift,
        defaultStore: next.defaultStore || this.config.defaultStore,
        shutdown: false,
      };
      await this.deps.meta.writeConfig(encodeConfig(this.config));
    }
    const prev = this.cinfo;
    this.cinfo = next;
    this.ring = buildRing(next.status === ClusterStatus.OK ? next.nodes : []);
    for (const w of [...this.#epochWaiters]) if (next.epoch >= w.epoch) w.wake();
    // Moves to stale, durable, before this event ends; the rest of the recovery runs beside.
    await this.recovery.onAdopt(prev, next);
  }

  /**
   * Fetches the epoch files this node misses (it joined after them, or was away) from the members
   * with GET_EPOCH, so that every node holds the whole history (protocol sheet §10.1) and `dog
   * cluster info` prints the same table everywhere.
   */
  async #pullEpochs(): Promise<void> {
    if (this.cinfo.ctime === 0n) return;
    const have = new Set(await this.deps.meta.listEpochs());
    const peers = this.members.filter((m) => !sameNode(m, this.self));
    for (let epoch = this.cinfo.epoch; epoch >= 1; epoch--) {
      if (have.has(epoch)) continue;
      for (const m of peers) {
        try {
          const req = SdReq.of(Op.GET_EPOCH, SD_SHEEP_PROTO_VER, {
            dataLength: EPOCH_FILE_MAX,
          });
          req.obj.tgtEpoch = epoch;
          const host = nodeAddrString(m).split(":")[0];
          const { rsp, data } = await this.peers.request(host, m.nid.port, req);
          if (rsp.result !== Res.SUCCESS) continue;
          decodeEpochFile(data); // well-formed, or try the next member
          await this.deps.meta.writeEpoch(epoch, data);
          break;
        } catch (e) {
          this.log.warn("cannot fetch an epoch", {
            node: nodeAddrString(m),
            epoch,
            error: String(e),
          });
        }
      }
    }
  }

  async #pullVdiState(): Promise<void> {
    for (const m of this.members) {
      if (sameNode(m, this.self)) continue;
      try {
        await this.#getVdiCopies(m, true);
      } catch (e) {
        this.log.warn("cannot pull VDI state", { node: nodeAddrString(m), error: String(e) });
      }
    }
  }

  /** Merges `m`'s VDI state; its lock state only when `locks` (see VdiRegistry.merge). */
  async #getVdiCopies(m: SdNode, locks: boolean): Promise<void> {
    const req = SdReq.of(Op.GET_VDI_COPIES, SD_SHEEP_PROTO_VER, { dataLength: 64 << 20 });
    const host = nodeAddrString(m).split(":")[0];
    const { rsp, data } = await this.peers.request(host, m.nid.port, req);
    if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result, "GET_VDI_COPIES");
    this.vdis.merge(data, { locks });
  }

  /** Pulls the VDI state of a node that just joined, retrying until it listens (bounded). */
  #pullVdiStateFrom(node: SdNode): void {
    const deadline = this.deps.now() + VDI_PULL_DEADLINE_MS;
    const attempt = async (): Promise<void> => {
      for (;;) {
        if (this.#closed || this.killed || !this.members.some((m) => sameNode(m, node))) return;
        try {
          await this.#getVdiCopies(node, false);
          return;
        } catch (e) {
          if (this.deps.now() >= deadline) {
            this.log.warn("cannot pull VDI state", {
              node: nodeAddrString(node),
              error: String(e),
            });
            return;
          }
        }
        await sleep(VDI_PULL_RETRY_MS, this.deps.timers);
      }
    };
    attempt().catch((e) =>
      this.log.warn("cannot pull VDI state", { node: nodeAddrString(node), error: String(e) })
    );
  }

  #onLost(reason: string): void {
    this.log.error(
      "lost the cluster; stopping I/O and exiting so the service manager restarts us",
      {
        reason,
      },
    );
    this.killed = true;
    this.deps.stopListening();
    this.deps.exit(1, `lost the cluster: ${reason}`);
  }

  /** Resolves when the local epoch reaches `epoch`. */
  waitForEpoch(epoch: number, deadlineMs: number): Promise<void> {
    if (this.cinfo.epoch >= epoch) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        epoch,
        wake: () => {
          this.deps.timers.clearTimeout(timer);
          this.#epochWaiters.delete(w);
          resolve();
        },
      };
      const timer = this.deps.timers.setTimeout(() => {
        this.#epochWaiters.delete(w);
        reject(new SdError(Res.NEW_NODE_VER, `epoch ${epoch} not reached`));
      }, deadlineMs);
      this.#epochWaiters.add(w);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Requests

  /** Serves one request; never throws. */
  async handle(
    req: SdReq,
    data: Uint8Array | undefined,
    conn: ConnectionInfo,
  ): Promise<ServerReply> {
    const rsp = SdRsp.replyTo(req, this.cinfo.epoch, Res.SUCCESS);
    let out: Uint8Array | undefined;
    try {
      out = await this.#dispatch(req, data, rsp, conn);
    } catch (e) {
      if (e instanceof SdError) {
        rsp.result = e.result;
        if (e.result !== Res.NO_OBJ && e.result !== Res.NO_VDI) {
          this.log.debug("request failed", {
            opcode: req.opcode,
            result: e.result,
            error: e.message,
          });
        }
      } else {
        rsp.result = Res.EIO;
        this.log.error("request failed unexpectedly", { opcode: req.opcode, error: String(e) });
      }
      out = undefined;
    }
    rsp.epoch = this.cinfo.epoch;
    // The client sized its buffer with data_length; never send more than that.
    if (out && out.length > req.dataLength) out = out.subarray(0, req.dataLength);
    return { rsp, data: out };
  }

  #dispatch(
    req: SdReq,
    data: Uint8Array | undefined,
    rsp: SdRsp,
    conn: ConnectionInfo,
  ): Promise<Uint8Array | undefined> {
    // v1.0's order: the version is checked before the opcode is looked up.
    if (req.opcode >= 0x80) {
      if (req.protoVer !== SD_SHEEP_PROTO_VER) throw new SdError(Res.VER_MISMATCH);
    } else if (req.protoVer > SD_PROTO_VER) {
      throw new SdError(Res.VER_MISMATCH);
    }
    const spec = OP_TABLE.get(req.opcode);
    if (!spec) throw new SdError(Res.INVALID_PARMS, `unknown opcode 0x${req.opcode.toString(16)}`);
    if (this.killed) throw new SdError(Res.KILLED);
    if (this.cinfo.status === ClusterStatus.SHUTDOWN) throw new SdError(Res.SHUTDOWN);
    if (this.cinfo.status === ClusterStatus.WAIT && !spec.force) {
      throw new SdError(this.cinfo.ctime === 0n ? Res.WAIT_FOR_FORMAT : Res.WAIT_FOR_JOIN);
    }
    switch (spec.cls) {
      case "G":
        return handleGatewayOp(this, req, data, rsp, conn.signal);
      case "P":
        return this.#peer(req, data, rsp);
      case "L":
        return handleLocalOp(this, req, data, rsp, conn);
      case "C":
        return this.#clusterOp(req, data, rsp, spec.work === true);
    }
  }

  async #peer(
    req: SdReq,
    data: Uint8Array | undefined,
    rsp: SdRsp,
  ): Promise<Uint8Array | undefined> {
    if (req.epoch < this.cinfo.epoch) throw new SdError(Res.OLD_NODE_VER);
    if (req.epoch > this.cinfo.epoch) await this.waitForEpoch(req.epoch, EPOCH_WAIT_MS);
    return handlePeerOp(this, req, data, rsp);
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster ops

  async #clusterOp(
    req: SdReq,
    data: Uint8Array | undefined,
    rsp: SdRsp,
    hasWork: boolean,
  ): Promise<Uint8Array | undefined> {
    const seq = this.#seq++;
    const done = new Promise<{ rsp: SdRsp; data?: Uint8Array; members: SdNode[] }>((resolve) => {
      this.#pending.set(seq, { resolve });
    });
    const driver = this.deps.driver;
    try {
      if (req.opcode === Op.MAKE_FS && req.cluster.ctime === 0n) {
        req.cluster.ctime = nowStamp(this.deps.now());
      }
      if (hasWork) {
        await driver.block();
        let msg: Uint8Array;
        try {
          let outcome: Uint8Array | undefined;
          try {
            outcome = await this.#workStep(req, data, rsp);
          } catch (e) {
            if (!(e instanceof SdError)) throw e;
            rsp.result = e.result;
          }
          msg = encodeOpMessage(seq, req, rsp, outcome);
        } catch (e) {
          await driver.unblock(encodeOpMessage(seq, req, failed(rsp)));
          throw e;
        }
        await driver.unblock(msg);
      } else {
        await driver.notify(encodeOpMessage(seq, req, rsp, mainStepPayload(req, data)));
      }
    } catch (e) {
      this.#pending.delete(seq);
      throw e;
    }
    const r = await done;
    rsp.bytes.set(r.rsp.bytes);
    rsp.id = req.id;
    if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result);
    if (!NO_BARRIER_OPS.has(req.opcode)) await this.#awaitApplied(seq, r.members);
    return r.data;
  }

  /**
   * Waits until every member that received the op has applied it, so the client's next request
   * finds the new state on whichever node it reaches. A member that leaves or does not answer in
   * time is logged and skipped: it will learn the state when it rejoins.
   */
  async #awaitApplied(seq: number, members: SdNode[]): Promise<void> {
    const others = members.filter((m) => !sameNode(m, this.self));
    if (others.length === 0) return;
    const payload = new Uint8Array(SD_NODE_SIZE + 4);
    encodeNode(this.self, payload, 0);
    new DataView(payload.buffer).setUint32(SD_NODE_SIZE, seq >>> 0, true);
    await Promise.all(others.map(async (m) => {
      const req = SdReq.of(Op.WAIT_APPLIED, SD_SHEEP_PROTO_VER, {
        flags: Flag.CMD_WRITE,
        dataLength: payload.length,
      });
      try {
        const host = addrToString(m.nid.addr);
        const { rsp } = await this.peers.request(host, m.nid.port, req, payload);
        if (rsp.result !== Res.SUCCESS) throw new SdError(rsp.result);
      } catch (e) {
        if (this.members.some((x) => sameNode(x, m))) {
          this.log.warn("a member did not confirm a cluster op", {
            node: nodeAddrString(m),
            error: String(e),
          });
        }
      }
    }));
  }

  /** WAIT_APPLIED: resolves when the op named in `payload` was applied here. */
  async waitApplied(payload: Uint8Array | undefined): Promise<void> {
    if (!payload || payload.length !== SD_NODE_SIZE + 4) {
      throw new SdError(Res.INVALID_PARMS, "WAIT_APPLIED needs an sd_node and a sequence number");
    }
    const sender = nodeAddrString(decodeNode(payload, 0));
    const seq = new DataView(payload.buffer, payload.byteOffset).getUint32(SD_NODE_SIZE, true);
    if (!(await this.applied.waitFor(sender, seq, APPLIED_WAIT_MS))) {
      throw new SdError(Res.AGAIN, `op ${seq} of ${sender} not applied yet`);
    }
  }

  /** Runs the work step; returns what the main step on every node needs. */
  async #workStep(
    req: SdReq,
    data: Uint8Array | undefined,
    rsp: SdRsp,
  ): Promise<Uint8Array | undefined> {
    switch (req.opcode) {
      case Op.NEW_VDI: {
        const o = await newVdiWork(this, this.workGateway, req, data, this.deps.now());
        rsp.vdi.vdiId = o.vid;
        rsp.vdi.copies = o.copies;
        rsp.vdi.blockSizeShift = o.blockSizeShift;
        return encodeNewVdiOutcome(o);
      }
      case Op.DEL_VDI: {
        const o = await delVdiWork(this, this.workGateway, req, data);
        rsp.vdi.vdiId = o.vid;
        return encodeDelVdiOutcome(o);
      }
      case Op.GET_VDI_INFO:
      case Op.LOCK_VDI: {
        const { name, tag } = parseNameTag(data);
        const { found, result } = await lookupVdi(this, this.workGateway, name, {
          tag,
          snapId: req.vdi.snapid,
        });
        if (!found) throw new SdError(result);
        rsp.vdi.vdiId = found.vid;
        rsp.vdi.copies = found.header.nrCopies;
        rsp.vdi.blockSizeShift = found.header.blockSizeShift;
        return undefined;
      }
      case Op.GET_VDI_ATTR: {
        const r = await vdiAttrWork(this, this.workGateway, req, data);
        rsp.vdi.vdiId = r.nameVid;
        rsp.vdi.attrId = r.attrId;
        rsp.vdi.copies = r.copies;
        return undefined;
      }
    }
    return undefined;
  }

  async #onNotify(sender: SdNode, msg: Uint8Array): Promise<void> {
    let kind: number;
    try {
      kind = messageKind(msg);
    } catch (e) {
      this.log.error("ignoring a malformed cluster message", { error: String(e) });
      return;
    }
    if (kind === MsgKind.EPOCH_TIME) {
      const { epoch, time } = decodeEpochTime(msg);
      const bytes = await this.deps.meta.readEpoch(epoch);
      if (bytes) {
        const f = decodeEpochFile(bytes);
        if (f.time !== time) await this.deps.meta.writeEpoch(epoch, encodeEpochFile(f.nodes, time));
      }
      return;
    }
    if (kind === MsgKind.RECOVERY_DEGRADED) {
      this.recovery.onDegraded(sender, decodeDegradedMessage(msg));
      return;
    }
    const m = decodeOpMessage(msg);
    const fromSelf = sameNode(sender, this.self);
    let out: Uint8Array | undefined;
    if (m.rsp.result === Res.SUCCESS) {
      try {
        out = await this.#mainStep(sender, m.req, m.rsp, m.data, fromSelf);
      } catch (e) {
        m.rsp.result = e instanceof SdError ? e.result : Res.SYSTEM_ERROR;
        this.log.error("cluster op main step failed", {
          opcode: m.req.opcode,
          error: String(e),
        });
      }
    }
    this.applied.record(nodeAddrString(sender), m.seq);
    if (fromSelf) {
      const p = this.#pending.get(m.seq);
      if (p) {
        this.#pending.delete(m.seq);
        // The members at the op's place in the total order are the ones that apply it.
        p.resolve({ rsp: m.rsp, data: out, members: [...this.members] });
      }
    }
  }

  async #mainStep(
    sender: SdNode,
    req: SdReq,
    rsp: SdRsp,
    data: Uint8Array,
    fromSelf: boolean,
  ): Promise<Uint8Array | undefined> {
    return await applyMainStep(this, {
      sender,
      req,
      rsp,
      data,
      fromSelf,
      adopt: (ci) => this.#adopt(ci, {}),
    });
  }

  /** Marks the node killed (KILL_NODE): stops listening and exits after the reply. */
  kill(): void {
    this.killed = true;
    this.deps.stopListening();
    this.deps.timers.setTimeout(() => this.deps.exit(0, "killed by dog node kill"), 100);
  }

  /** Releases driver, peers and store. */
  async close(): Promise<void> {
    this.#closed = true;
    this.recovery.close();
    this.peers.close();
    try {
      await this.deps.driver.leave();
    } catch (e) {
      this.log.warn("leaving the cluster failed", { error: String(e) });
    }
    await this.deps.driver.close();
    await this.store.close();
  }
}

/** The request payload the main step needs (capped so a message stays within one event). */
function mainStepPayload(req: SdReq, data: Uint8Array | undefined): Uint8Array | undefined {
  if (!data) return undefined;
  switch (req.opcode) {
    case Op.MAKE_FS:
    case Op.NOTIFY_VDI_ADD:
    case Op.NOTIFY_VDI_DEL:
    case Op.RELEASE_VDI:
      return data.length <= 4096 ? data : data.subarray(0, 4096);
    default:
      return undefined;
  }
}

function failed(rsp: SdRsp): SdRsp {
  const r = new SdRsp(rsp.bytes.slice());
  if (r.result === Res.SUCCESS) r.result = Res.SYSTEM_ERROR;
  return r;
}
