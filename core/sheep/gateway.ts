/**
 * The gateway: turns object I/O into peer I/O on the replicas of the current epoch. Reads go to
 * the local replica when this node has one, else to the others in random order; writes go to all
 * replicas in parallel and succeed only when every replica has the data. Transient failures
 * (a peer in another epoch, a connection reset, a node joining) are retried with a deadline, so
 * clients never see OLD_NODE_VER / NEW_NODE_VER.
 *
 * @module
 */

import { Op, Res, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { addrToString, sameNode, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { oidToString, oidToVid } from "../hash/oid.ts";
import { Flag } from "../proto/constants.ts";
import type { ObjectIoKind, SheepContext } from "./context.ts";
import { peerCreate, peerRead, peerRemove, peerWrite } from "./peer_ops.ts";
import { NotSentError } from "../net/peer_pool.ts";
import { sleep, type Timers } from "../cluster/deadline.ts";

/** What a gateway takes from its surroundings: randomness (read order) and time (retries). */
export interface GatewayDeps {
  random(): number;
  now(): number;
  timers: Timers;
}

/** How long the gateway keeps retrying transient failures before giving up (ms). */
export const GATEWAY_RETRY_DEADLINE_MS = 60_000;
/**
 * The retry deadline of the I/O a cluster op's work step does inside the cluster-wide block (ms).
 * Leaves pass a held block (core/cluster/event_log.ts), so a replica that dies during the work
 * leaves, the new epoch comes, and the retries reach its successors. Joins stay held back, and
 * the block holds every other cluster op: the work must still end, within a bound that covers
 * the drivers' failure detection (the local driver ~0.5 s, corosync's token timeout, a ZooKeeper
 * session timeout), rather than the client's full minute.
 */
export const WORK_STEP_RETRY_DEADLINE_MS = 20_000;
/** Pause between retries of transient failures (ms). */
const RETRY_PAUSE_MS = 50;

const RETRYABLE = new Set<number>([
  Res.OLD_NODE_VER,
  Res.NEW_NODE_VER,
  Res.NETWORK_ERROR,
  Res.WAIT_FOR_JOIN,
  Res.WAIT_FOR_FORMAT,
  Res.KILLED,
  Res.AGAIN,
]);

/** Object I/O over the replicas of the current epoch. */
export class Gateway {
  readonly #ctx: SheepContext;
  readonly #random: () => number;
  readonly #deps: GatewayDeps;
  readonly #retryDeadlineMs: number;

  constructor(
    ctx: SheepContext,
    deps: GatewayDeps,
    retryDeadlineMs: number = GATEWAY_RETRY_DEADLINE_MS,
  ) {
    this.#ctx = ctx;
    this.#deps = deps;
    this.#random = () => deps.random();
    this.#retryDeadlineMs = retryDeadlineMs;
  }

  /** The copy count for `oid`: the request's, else its VDI's, else the cluster default. */
  copiesFor(oid: bigint, requested = 0): number {
    if (requested > 0) return requested;
    return this.#ctx.vdis.get(oidToVid(oid))?.nrCopies || this.#ctx.cinfo.nrCopies || 1;
  }

  /** The nodes that hold `oid` in the current epoch. */
  replicas(oid: bigint, copies = 0): SdNode[] {
    const nodes = this.#ctx.ring.place(oid, this.copiesFor(oid, copies));
    if (nodes.length === 0) throw new SdError(Res.HALT, "no node with vnodes is left");
    return nodes;
  }

  /** Reads `length` bytes at `offset` of `oid`. */
  read(oid: bigint, offset: number, length: number, copies = 0): Promise<Uint8Array> {
    return this.#retry(`read ${oidToString(oid)}`, undefined, async () => {
      const epoch = this.#ctx.cinfo.epoch;
      const nodes = this.replicas(oid, copies);
      const order = this.#readOrder(nodes);
      let lastErr: unknown = null;
      let retryErr: unknown = null;
      for (const n of order) {
        try {
          if (sameNode(n, this.#ctx.self)) {
            return await this.#local(
              oid,
              "read",
              epoch,
              () => peerRead(this.#ctx, oid, offset, length),
            );
          }
          this.#checkEpoch(epoch);
          const req = this.#peerReq(Op.READ_PEER, oid, offset, length);
          const { rsp, data } = await this.#send(n, req);
          if (rsp.result === Res.SUCCESS) return data;
          throw new SdError(rsp.result, `READ_PEER ${oidToString(oid)} on ${nodeName(n)}`);
        } catch (e) {
          lastErr = e;
          if (isRetryable(e)) retryErr = e;
          // Another replica may have it (for instance while this one is being recovered).
        }
      }
      // A replica in another epoch (or unreachable) may be the one that has it: retry then.
      throw retryErr ?? lastErr;
    });
  }

  /**
   * Overwrites part of an existing object on every replica. `client` is aborted when the client
   * that asked went away: the write is then not retried (see #retry). `writeback`: the replicas
   * answer before the write is durable (Flag.CMD_WRITEBACK); flushNodes() makes it durable.
   */
  write(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    copies = 0,
    client?: AbortSignal,
    writeback = false,
  ): Promise<void> {
    return this.#retry(
      `write ${oidToString(oid)}`,
      client,
      () =>
        this.#all(oid, copies, (n, epoch) => {
          if (sameNode(n, this.#ctx.self)) {
            return this.#local(
              oid,
              "write",
              epoch,
              () => peerWrite(this.#ctx, oid, offset, data, writeback),
            );
          }
          const req = this.#peerReq(Op.WRITE_PEER, oid, offset, data.length, true, writeback);
          return this.#expectOk(n, req, data);
        }),
    );
  }

  /**
   * Creates the object on every replica with `data` at `offset`. With `cowOid`, a partial write is
   * laid over the whole source object first (copy-on-write at the gateway). `writeback` as for
   * write().
   */
  async create(
    oid: bigint,
    offset: number,
    data: Uint8Array,
    copies = 0,
    cowOid = 0n,
    objectSize?: number,
    client?: AbortSignal,
    writeback = false,
  ): Promise<void> {
    if (cowOid !== 0n && objectSize !== undefined && (offset !== 0 || data.length < objectSize)) {
      const whole = await this.read(cowOid, 0, objectSize);
      whole.set(data, offset);
      data = whole;
      offset = 0;
    }
    const payload = data;
    const off = offset;
    await this.#retry(
      `create ${oidToString(oid)}`,
      client,
      () =>
        this.#all(oid, copies, (n, epoch) => {
          if (sameNode(n, this.#ctx.self)) {
            return this.#local(
              oid,
              "create",
              epoch,
              () => peerCreate(this.#ctx, oid, off, payload, writeback),
            );
          }
          const req = this.#peerReq(
            Op.CREATE_AND_WRITE_PEER,
            oid,
            off,
            payload.length,
            true,
            writeback,
          );
          return this.#expectOk(n, req, payload);
        }),
    );
  }

  /**
   * Makes every writeback write acknowledged before the call durable: FLUSH_PEER to every member
   * of the current epoch (this node's own store directly), retried like a write until all answer
   * at one epoch. A replica that left since it acknowledged a write needs nothing: its objects
   * are recovered from the others, which this flush reaches, onto nodes that create them durably.
   */
  flushNodes(client?: AbortSignal): Promise<void> {
    return this.#retry("flush", client, async () => {
      const epoch = this.#ctx.cinfo.epoch;
      const results = await Promise.allSettled(this.#ctx.cinfo.nodes.map(async (n) => {
        if (sameNode(n, this.#ctx.self)) return await this.#ctx.store.flush();
        this.#checkEpoch(epoch);
        await this.#expectOk(n, this.#peerReq(Op.FLUSH_PEER, 0n, 0, 0));
      }));
      throwFirstFailure(results);
    });
  }

  /** Removes the object from every replica; absent replicas are fine. */
  remove(oid: bigint, copies = 0, client?: AbortSignal): Promise<void> {
    return this.#retry(
      `remove ${oidToString(oid)}`,
      client,
      () =>
        this.#all(oid, copies, async (n, epoch) => {
          try {
            if (sameNode(n, this.#ctx.self)) {
              return await this.#local(oid, "remove", epoch, () => peerRemove(this.#ctx, oid));
            }
            await this.#expectOk(n, this.#peerReq(Op.REMOVE_PEER, oid, 0, 0));
          } catch (e) {
            if (e instanceof SdError && e.result === Res.NO_OBJ) return;
            throw e;
          }
        }),
    );
  }

  /**
   * A peer op that is not idempotent (DECREF_PEER) on every replica of `oid`: each replica is
   * retried on its own after a failure that happens before the op applies (another epoch, a node
   * joining), and one that applied it is not asked again. A broken connection is not retried.
   * `local` runs it on this node's own store, admitted at `epoch`; `makeReq` builds the request
   * for a peer.
   */
  eachReplicaOnce(
    oid: bigint,
    copies: number,
    makeReq: (epoch: number) => SdReq,
    local: (epoch: number) => Promise<void>,
  ): Promise<void> {
    const done = new Set<string>();
    return this.#retry(
      `peer op on ${oidToString(oid)}`,
      undefined,
      () =>
        this.#all(oid, copies, async (n, epoch) => {
          const key = nodeName(n);
          if (done.has(key)) return;
          if (sameNode(n, this.#ctx.self)) {
            await this.#local(oid, "write", epoch, () => local(epoch));
          } else {
            try {
              await this.#expectOk(n, makeReq(this.#ctx.cinfo.epoch));
            } catch (e) {
              // A broken connection may have lost the reply of an applied request: asking again
              // could apply it twice. Fail instead (for DECREF: a leak, never a loss). A request
              // that was never sent (connection refused: a member that joined and does not listen
              // yet, or one that died and has not left) is retried like any transient failure;
              // failing it leaked every object released meanwhile (cluster sim, seed 20331).
              if (
                e instanceof SdError && e.result === Res.NETWORK_ERROR &&
                !(e instanceof NotSentError)
              ) {
                throw new SdError(Res.EIO, `${e.message} (not retried: not idempotent)`, {
                  cause: e,
                });
              }
              throw e;
            }
          }
          done.add(key);
        }),
    );
  }

  #readOrder(nodes: SdNode[]): SdNode[] {
    const local = nodes.filter((n) => sameNode(n, this.#ctx.self));
    const others = nodes.filter((n) => !sameNode(n, this.#ctx.self));
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [others[i], others[j]] = [others[j], others[i]];
    }
    return [...local, ...others];
  }

  async #all(
    oid: bigint,
    copies: number,
    op: (n: SdNode, epoch: number) => Promise<void>,
  ): Promise<void> {
    // The epoch of the ring the replicas come from: a local replica is admitted at it.
    const epoch = this.#ctx.cinfo.epoch;
    const nodes = this.replicas(oid, copies);
    throwFirstFailure(await Promise.allSettled(nodes.map((n) => op(n, epoch))));
  }

  /**
   * The local replica's part, through recovery's admission (recovery_executor.ts): it waits for
   * the object's recovery, and answers OLD_NODE_VER (retried) when the epoch moved on since
   * `epoch`, the epoch the replicas were taken at.
   */
  #local<T>(oid: bigint, kind: ObjectIoKind, epoch: number, op: () => Promise<T>): Promise<T> {
    const guard = this.#ctx.recovery;
    return guard ? guard.io(oid, kind, epoch, op) : op();
  }

  /** A replica list taken at `epoch` is out of date once the epoch moved on. */
  #checkEpoch(epoch: number): void {
    if (this.#ctx.cinfo.epoch !== epoch) {
      throw new SdError(Res.OLD_NODE_VER, `the epoch moved on from ${epoch}`);
    }
  }

  #peerReq(
    opcode: number,
    oid: bigint,
    offset: number,
    length: number,
    write = false,
    writeback = false,
  ): SdReq {
    const req = SdReq.of(opcode, SD_SHEEP_PROTO_VER, {
      epoch: this.#ctx.cinfo.epoch,
      dataLength: length,
      flags: (write ? Flag.CMD_WRITE : 0) | (writeback ? Flag.CMD_WRITEBACK : 0),
    });
    req.obj.oid = oid;
    req.obj.offset = offset;
    return req;
  }

  async #send(n: SdNode, req: SdReq, data?: Uint8Array) {
    try {
      return await this.#ctx.peers.request(addrToString(n.nid.addr), n.nid.port, req, data);
    } catch (e) {
      if (e instanceof SdError) throw e;
      throw new SdError(Res.NETWORK_ERROR, `${nodeName(n)}: ${errText(e)}`, { cause: e });
    }
  }

  async #expectOk(n: SdNode, req: SdReq, data?: Uint8Array): Promise<void> {
    const { rsp } = await this.#send(n, req, data);
    if (rsp.result !== Res.SUCCESS) {
      throw new SdError(rsp.result, `peer op 0x${req.opcode.toString(16)} on ${nodeName(n)}`);
    }
  }

  /**
   * Runs `attempt` again after transient failures until the deadline. When `client` is aborted
   * (the client's connection is gone) a failed attempt is not retried: the client has seen the
   * write fail and may write the same block again through another gateway; a retry of the old
   * data landing after that would overwrite its newer, acknowledged write (found by the cluster
   * simulation, seed 1082: a gateway kept retrying an abandoned write across an epoch change).
   */
  async #retry<T>(
    what: string,
    client: AbortSignal | undefined,
    attempt: () => Promise<T>,
  ): Promise<T> {
    const deadline = this.#deps.now() + this.#retryDeadlineMs;
    for (let n = 0;; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (!isRetryable(e) || this.#deps.now() > deadline) throw e;
        if (client?.aborted) {
          throw new SdError(Res.NETWORK_ERROR, `${what}: the client went away`, { cause: e });
        }
        if (n === 0 || n % 100 === 0) {
          this.#ctx.log.debug(`retrying ${what}`, { error: errText(e), attempt: n });
        }
        await sleep(RETRY_PAUSE_MS, this.#deps.timers);
        if (client?.aborted) {
          throw new SdError(Res.NETWORK_ERROR, `${what}: the client went away`, { cause: e });
        }
      }
    }
  }
}

/**
 * Throws the first failure that cannot be retried, else a retryable one (the whole attempt is then
 * retried), else returns.
 */
function throwFirstFailure(results: PromiseSettledResult<unknown>[]): void {
  let retryable: unknown = null;
  for (const r of results) {
    if (r.status === "rejected") {
      if (isRetryable(r.reason)) retryable = r.reason;
      else throw r.reason;
    }
  }
  if (retryable) throw retryable;
}

function isRetryable(e: unknown): boolean {
  return e instanceof SdError && RETRYABLE.has(e.result);
}

function nodeName(n: SdNode): string {
  return `${addrToString(n.nid.addr)}:${n.nid.port}`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
