/**
 * The `corosync` cluster driver (`sheep -c corosync[:GROUP]`): one CPG group (default
 * "sheepdog"; the `:GROUP` suffix is an extension to run several clusters on one corosync), every
 * message multicast with CPG_TYPE_AGREED, membership from CPG confchgs. libcpg is loaded through
 * Deno FFI in init(), never at import (cpg_ffi.ts); the group logic, state transfer and majority
 * rule are in cpg_group.ts; the cluster rules (joins checked by the master, blocks, total order)
 * are the shared event log's, run by MemberRunner.
 *
 * Event loop: poll() on the CPG fd on a helper thread, then cpg_dispatch(CS_DISPATCH_ALL) on the
 * main thread (needs `--v8-flags=--stack-size=4096`), then the delivered items are handled in
 * order. The loop never blocks the daemon.
 *
 * Failures:
 * - libcpg missing, or corosync not running: init() throws SdError(CLUSTER_ERROR) with a one-line
 *   message; the daemon prints it and exits 1.
 * - corosync dies under a running sheep: cpg_dispatch returns CS_ERR_LIBRARY and the member is
 *   lost (onLost): the sheep stops serving I/O, logs why and exits 1, for its service manager to
 *   restart it once corosync is back (sheepdog.service: Restart=on-failure). It does not try to
 *   reconnect in place: a new CPG connection is a new member, with a new join check and epoch.
 * - minority side of a partition (see cpg_group.ts): lost the same way, without a new epoch;
 *   after the heal the restarted sheep joins the majority's cluster like any restarted node. A
 *   sheep restarted before the heal waits alone (no I/O) and gives way (exits) at the merge.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { ipv4ToAddr, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import { Cpg, CpgError } from "./cpg_ffi.ts";
import { CpgGroupMember } from "./cpg_group.ts";
import { withDeadline } from "./deadline.ts";
import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import { newMemberId } from "./local_liveness.ts";
import type { MemberRunner } from "./member_runner.ts";

/** The CPG group of `-c corosync`. */
export const DEFAULT_CPG_GROUP = "sheepdog";
/** How long init() waits for the group state from the other members. */
export const CPG_SYNC_TIMEOUT_MS = 30_000;
/** How long a multicast may stay refused by flow control. */
export const CPG_SEND_TIMEOUT_MS = 30_000;

/** Options of the corosync driver. */
export interface CorosyncDriverOptions {
  /** CPG group name (the option text after "corosync:"; default DEFAULT_CPG_GROUP). */
  group?: string;
  /** The library to load (default libcpg.so.4; tests name a missing one). */
  library?: string;
  syncTimeoutMs?: number;
  joinTimeoutMs?: number;
  blockTimeoutMs?: number;
  leaveTimeoutMs?: number;
  /** Diagnostics; default: none. */
  warn?(msg: string): void;
}

/** The group name of `-c corosync[:GROUP]`. */
export function corosyncGroupOption(option: string | undefined): string {
  if (option === undefined || option === "") return DEFAULT_CPG_GROUP;
  if (new TextEncoder().encode(option).length > 128) {
    throw new SdError(Res.INVALID_PARMS, `CPG group name '${option}' is longer than 128 bytes`);
  }
  return option;
}

/** One sheep's corosync driver. */
export class CorosyncDriver implements ClusterDriver {
  readonly name = "corosync";
  readonly group: string;
  readonly #opts: CorosyncDriverOptions;
  #cpg: Cpg | null = null;
  #member: CpgGroupMember | null = null;
  #loop: Promise<void> | null = null;
  #closed = false;
  #broken: string | null = null;

  constructor(opts: CorosyncDriverOptions = {}) {
    this.#opts = opts;
    this.group = corosyncGroupOption(opts.group);
  }

  /** This corosync node's id (after init). */
  get nodeid(): number | null {
    return this.#cpg?.nodeid ?? null;
  }

  /** The group view (after init; for tests). */
  get member(): CpgGroupMember | null {
    return this.#member;
  }

  /** The first IPv4 address of a non-loopback interface, else 127.0.0.1. */
  localAddr(): Uint8Array {
    try {
      for (const i of Deno.networkInterfaces()) {
        if (i.family === "IPv4" && !i.address.startsWith("127.")) return ipv4ToAddr(i.address);
      }
    } catch {
      // no --allow-sys: fall back to loopback
    }
    return ipv4ToAddr("127.0.0.1");
  }

  async init(handlers: ClusterHandlers): Promise<void> {
    assert(this.#cpg === null && !this.#closed, "init() is called once");
    const o = this.#opts;
    let cpg: Cpg;
    try {
      cpg = Cpg.open(this.group, o.library);
    } catch (e) {
      throw clusterError("corosync driver", e);
    }
    this.#cpg = cpg;
    const member = new CpgGroupMember({
      self: { nodeid: cpg.nodeid, pid: Deno.pid },
      me: `${cpg.nodeid}.${Deno.pid}.${newMemberId()}`,
      handlers,
      send: (msg) => this.#send(msg),
      runner: {
        joinTimeoutMs: o.joinTimeoutMs,
        blockTimeoutMs: o.blockTimeoutMs,
        leaveTimeoutMs: o.leaveTimeoutMs,
      },
      warn: o.warn,
    });
    this.#member = member;
    try {
      await cpg.join();
      this.#loop = this.#run();
      const ms = o.syncTimeoutMs ?? CPG_SYNC_TIMEOUT_MS;
      await withDeadline(
        member.whenSynced(),
        ms,
        () =>
          new SdError(
            Res.CLUSTER_ERROR,
            `corosync driver: no group state from the members of CPG group '${this.group}' ` +
              `within ${ms} ms`,
          ),
      );
    } catch (e) {
      await this.close();
      throw clusterError("corosync driver", e);
    }
  }

  async join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    return await this.#live("join").join(myself, opaque);
  }

  async leave(): Promise<void> {
    return await this.#live("leave").leave();
  }

  async notify(msg: Uint8Array): Promise<void> {
    return await this.#live("notify").notify(msg);
  }

  async block(): Promise<void> {
    return await this.#live("block").block();
  }

  async unblock(msg: Uint8Array): Promise<void> {
    return await this.#live("unblock").unblock(msg);
  }

  async updateNode(node: SdNode): Promise<void> {
    return await this.#live("updateNode").updateNode(node);
  }

  /** Leaves the cluster if still in it, then leaves the CPG group and unloads libcpg. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const r = this.#member?.runner ?? null;
    try {
      if (r !== null && this.#broken === null && (r.phase === "member" || r.phase === "joining")) {
        await r.leave();
      }
    } finally {
      this.#closed = true;
      r?.stop("driver closed");
      const cpg = this.#cpg;
      if (cpg !== null) {
        const closing = cpg.close(this.#broken === null);
        await this.#loop;
        await closing;
      }
    }
  }

  #live(op: string): MemberRunner {
    const r = this.#member?.runner;
    assert(r !== undefined && r !== null, "init() first");
    if (this.#broken !== null || this.#closed) {
      throw new SdError(
        Res.CLUSTER_ERROR,
        `${op}(): the corosync driver lost the cluster: ${this.#broken ?? "closed"}`,
      );
    }
    return r;
  }

  async #send(msg: Uint8Array): Promise<void> {
    const cpg = this.#cpg;
    if (cpg === null || this.#closed) throw new SdError(Res.CLUSTER_ERROR, "CPG connection closed");
    try {
      await cpg.mcast(msg, CPG_SEND_TIMEOUT_MS);
    } catch (e) {
      throw clusterError("cpg_mcast_joined", e);
    }
  }

  /** The event loop: wait on a helper thread, dispatch on this one, handle items in order. */
  async #run(): Promise<void> {
    const cpg = this.#cpg!;
    const member = this.#member!;
    while (!this.#closed && this.#broken === null) {
      let r: Awaited<ReturnType<Cpg["wait"]>>;
      try {
        r = await cpg.wait();
      } catch (e) {
        this.#fail(`poll() on the CPG fd failed: ${String(e)}`);
        return;
      }
      if (r === "closed" || this.#closed) return;
      if (r !== "ready") continue;
      let items;
      try {
        items = cpg.dispatch();
      } catch (e) {
        // Deliver what came before the failure, then lose the cluster.
        if (e instanceof CpgError) { for (const it of e.delivered) member.handle(it); }
        this.#fail(e instanceof Error ? e.message : String(e));
        return;
      }
      for (const it of items) member.handle(it);
      if (member.lost) {
        // Minority side, or left the group: stop taking part in the group at once.
        this.#broken = "lost the CPG group";
        cpg.close(true).catch(() => {});
        return;
      }
    }
  }

  #fail(reason: string): void {
    if (this.#broken !== null || this.#closed) return;
    this.#broken = reason;
    this.#opts.warn?.(`corosync driver: ${reason}`);
    this.#member?.lose(reason);
    this.#cpg?.close(false).catch(() => {});
  }
}

function clusterError(what: string, e: unknown): SdError {
  if (e instanceof SdError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SdError(Res.CLUSTER_ERROR, `${what}: ${msg}`, {
    cause: e instanceof CpgError ? e : undefined,
  });
}
