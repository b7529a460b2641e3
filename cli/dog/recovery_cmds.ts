/**
 * dog's recovery and consistency commands (issue 4 §1, §3), as v1.0 prints them:
 *
 * - `node recovery [info] [-P]`: the nodes still recovering (STAT_RECOVERY on each), or with -P
 *   a progress line for the target node until it is done;
 * - `node recovery set-throttle <max> <interval ms>` / `get-throttle` (SET/GET_RECOVERY);
 * - `cluster recover force|enable|disable` (FORCE_RECOVER, ENABLE/DISABLE_RECOVER);
 * - `vdi check [-s snap] [-e] <vdi>` and `cluster check`: every replica of every object of a VDI
 *   (the inode and its allocated data objects) is compared by SHA-1 (GET_HASH; with -e only its
 *   existence, OIDS_EXIST), and a missing or different replica is rewritten from a good one
 *   (REPAIR_REPLICA: the bad node copies the object from the good one). The good copy is the
 *   digest most replicas agree on; on a tie, the first holder's in ring order.
 *
 * @module
 */

import { Flag, Op, Res, resultText, SD_MAX_NODES } from "../../core/proto/constants.ts";
import {
  decodeDegradedNodes,
  DEGRADED_NODE_SIZE,
  type DegradedNode,
  DegradedReason,
} from "../../core/proto/degraded.ts";
import { addrToString, type SdNode } from "../../core/proto/node.ts";
import {
  decodeRecoveryState,
  decodeRecoveryThrottling,
  encodeRecoveryThrottling,
  RECOVERY_STATE_SIZE,
  RECOVERY_THROTTLING_SIZE,
  RecoveryPhase,
  type RecoveryState,
} from "../../core/proto/stat.ts";
import { buildRing } from "../../core/placement/ring.ts";
import { vidToDataOid, vidToVdiOid } from "../../core/hash/oid.ts";
import type { CommandContext, Subcommand } from "./command_spec.ts";
import { confirm } from "./confirm.ts";
import { DogError, Exit, ReportedError, usageError } from "./dog_error.ts";
import { sendLightReq } from "./light_request.ts";
import { isNumeric, snapshotOption } from "./option_values.ts";
import { dogReq } from "./session.ts";
import { mapBounded } from "./bounded.ts";
import { forEachVdi, loadInode, openVdi, type SnapshotRef, WORKING } from "./vdi_access.ts";

// -------------------------------------------------------------------------------------------------
// node recovery

/**
 * The members whose recovery does not go on for lack of space (STAT_DEGRADED, a sheepdog-ts
 * extension). A sheep without it (v1.0) answers INVALID_PARMS: nothing to report then.
 */
export async function statDegraded(ctx: CommandContext): Promise<DegradedNode[]> {
  const slots = Math.min(Math.max(ctx.session.nodes.length, 1), SD_MAX_NODES);
  const req = dogReq(Op.STAT_DEGRADED, { dataLength: slots * DEGRADED_NODE_SIZE });
  const { rsp, data } = await ctx.session.exec(req);
  if (rsp.result !== Res.SUCCESS) return [];
  return decodeDegradedNodes(data);
}

async function stateOf(ctx: CommandContext, node?: SdNode): Promise<RecoveryState> {
  const req = dogReq(Op.STAT_RECOVERY, { dataLength: RECOVERY_STATE_SIZE });
  const { rsp, data } = node === undefined
    ? await ctx.session.exec(req)
    : await ctx.session.execOn(node, req);
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, [resultText(rsp.result)], { result: rsp.result });
  }
  return decodeRecoveryState(data);
}

function percent(done: bigint, total: bigint): string {
  const p = total === 0n ? 100 : (100 * Number(done)) / Number(total);
  return `${p.toFixed(1)}%`;
}

/** v1.0's show_progress line: `[====>   ] 42.0% done` style, on one line. */
function progressLine(done: bigint, total: bigint): string {
  const width = 40;
  const frac = total === 0n ? 1 : Math.min(1, Number(done) / Number(total));
  const fill = Math.round(frac * width);
  return `\r[${"=".repeat(fill)}${fill < width ? ">" : ""}${
    " ".repeat(Math.max(0, width - fill - 1))
  }] ` +
    `${(frac * 100).toFixed(1)}% (${done}/${total})`;
}

async function nodeRecoveryProgress(ctx: CommandContext): Promise<number> {
  let st = await stateOf(ctx);
  if (!st.inRecovery) return Exit.SUCCESS;
  let total = st.nrTotal;
  for (;;) {
    if (!st.inRecovery) {
      await ctx.out.print(progressLine(total, total) + "\n");
      return Exit.SUCCESS;
    }
    total = st.nrTotal;
    switch (st.state) {
      case RecoveryPhase.PREPARING_LIST:
        await ctx.out.print("\rpreparing a checked object list...");
        break;
      case RecoveryPhase.NOTIFYING_COMPLETION:
        await ctx.out.print("\rnotifying a completion of recovery...");
        break;
      default:
        await ctx.out.print(progressLine(st.nrFinished, st.nrTotal));
    }
    await new Promise((r) => setTimeout(r, 1000));
    st = await stateOf(ctx);
  }
}

async function nodeRecoveryInfo(ctx: CommandContext): Promise<number> {
  if (ctx.opts.has("P")) return await nodeRecoveryProgress(ctx);
  if (!ctx.raw) {
    await ctx.out.lines(
      "Nodes In Recovery:",
      "  Id   Host:Port         V-Nodes       Zone       Progress",
    );
  }
  const notStarted = new Set(
    (await statDegraded(ctx))
      .filter((d) => d.reason === DegradedReason.NOT_STARTED)
      .map((d) => `${addrToString(d.node.nid.addr)}:${d.node.nid.port}`),
  );
  for (const [i, n] of ctx.session.nodes.entries()) {
    let st: RecoveryState;
    try {
      st = await stateOf(ctx, n);
    } catch (e) {
      if (e instanceof DogError) throw e;
      if (!(e instanceof ReportedError)) {
        await ctx.out.error(e instanceof Error ? e.message : String(e));
      }
      return Exit.SYSFAIL;
    }
    const host = `${addrToString(n.nid.addr)}:${n.nid.port}`;
    if (!st.inRecovery) {
      // Avoid-diskfull refused this node's recovery (a sheepdog-ts state): listed, not started.
      if (!notStarted.has(host)) continue;
      await ctx.out.lines(
        ctx.raw
          ? `${i} ${host} ${n.nrVnodes} ${n.zone >>> 0} not-started`
          : `${String(i).padStart(4)} ${host.padEnd(20)}${String(n.nrVnodes).padStart(5)}` +
            `${String(n.zone >>> 0).padStart(11)}${"not started".padStart(11)}`,
      );
      continue;
    }
    if (ctx.raw) {
      await ctx.out.lines(
        `${i} ${host} ${n.nrVnodes} ${n.zone >>> 0} ${st.nrFinished} ${st.nrTotal}`,
      );
    } else {
      await ctx.out.lines(
        `${String(i).padStart(4)} ${host.padEnd(20)}${String(n.nrVnodes).padStart(5)}` +
          `${String(n.zone >>> 0).padStart(11)}${percent(st.nrFinished, st.nrTotal).padStart(11)}`,
      );
    }
  }
  return Exit.SUCCESS;
}

async function setThrottle(ctx: CommandContext): Promise<number> {
  const [maxText, intervalText] = ctx.args;
  if (maxText === undefined || intervalText === undefined) throw usageError();
  if (!isNumeric(maxText) || !isNumeric(intervalText)) {
    throw usageError("Invalid throttle: <max> and <interval> must be numbers");
  }
  const max = Number(maxText);
  const interval = Number(intervalText);
  if (max > 0xffff_ffff || (max === 0) !== (interval === 0)) {
    throw usageError("Invalid throttle: give both <max> and <interval>, or both 0 to turn it off");
  }
  const payload = encodeRecoveryThrottling({
    maxExecCount: max,
    queueWorkInterval: BigInt(interval),
    throttling: max > 0,
  });
  const req = dogReq(Op.SET_RECOVERY, { flags: Flag.CMD_WRITE, dataLength: payload.length });
  const { rsp } = await ctx.session.exec(req, payload);
  if (rsp.result !== Res.SUCCESS) {
    await ctx.out.error(`Failed to set the recovery throttle: ${resultText(rsp.result)}`);
    return Exit.FAILURE;
  }
  return Exit.SUCCESS;
}

async function getThrottle(ctx: CommandContext): Promise<number> {
  const req = dogReq(Op.GET_RECOVERY, { dataLength: RECOVERY_THROTTLING_SIZE });
  const { rsp, data } = await ctx.session.exec(req);
  if (rsp.result !== Res.SUCCESS) {
    await ctx.out.error(`Failed to get the recovery throttle: ${resultText(rsp.result)}`);
    return Exit.FAILURE;
  }
  const t = decodeRecoveryThrottling(data);
  if (!t.throttling) await ctx.out.lines("Recovery throttling: off");
  else {
    await ctx.out.lines(
      `Recovery throttling: max ${t.maxExecCount} objects per ${t.queueWorkInterval} ms`,
    );
  }
  return Exit.SUCCESS;
}

/** `node recovery` with its subcommands (the bare command shows the recovering nodes). */
export const nodeRecoveryCommand: Subcommand = {
  name: "recovery",
  desc: "show recovery information of nodes (finished/all)",
  opts: "aphPrT",
  needNodeList: true,
  needArg: false,
  run: nodeRecoveryInfo,
  sub: [
    {
      name: "info",
      desc: "show recovery information of nodes (finished/all)",
      opts: "aphPrT",
      needNodeList: true,
      needArg: false,
      run: nodeRecoveryInfo,
    },
    {
      name: "set-throttle",
      args: "<max exec count> <interval (msec)>",
      desc: "set the recovery throttle of the node",
      opts: "aphT",
      needNodeList: false,
      needArg: true,
      run: setThrottle,
    },
    {
      name: "get-throttle",
      desc: "show the recovery throttle of the node",
      opts: "aphT",
      needNodeList: false,
      needArg: false,
      run: getThrottle,
    },
  ],
};

// -------------------------------------------------------------------------------------------------
// cluster recover

const RECOVER_PROMPT = "Caution! Please try starting all the cluster nodes normally before\n" +
  "you run this command.\n\n" +
  "The cluster may need to be force recovered if:\n" +
  "  - the master node fails to start because of epoch mismatch; or\n" +
  "  - some nodes fail to start after a cluster shutdown.\n\n" +
  "Are you sure you want to continue? [yes/no]: ";

async function recoverForce(ctx: CommandContext): Promise<number> {
  if (!ctx.opts.has("f") && !(await confirm(ctx.out, ctx.stdin, RECOVER_PROMPT))) {
    return Exit.SUCCESS;
  }
  const { rsp } = await ctx.session.exec(dogReq(Op.FORCE_RECOVER));
  if (rsp.result !== Res.SUCCESS) {
    await ctx.out.error(`failed to execute request, ${resultText(rsp.result)}`);
    return Exit.FAILURE;
  }
  return Exit.SUCCESS;
}

function toggle(opcode: number, word: string) {
  return async (ctx: CommandContext): Promise<number> => {
    if (!(await sendLightReq(ctx.session, undefined, dogReq(opcode)))) return Exit.FAILURE;
    await ctx.out.lines(`Cluster recovery: ${word}`);
    return Exit.SUCCESS;
  };
}

/** `cluster recover force|enable|disable`. */
export const clusterRecoverCommand: Subcommand = {
  name: "recover",
  args: "{force|enable|disable}",
  desc: "See 'dog cluster recover' for more information",
  opts: "aphfT",
  needNodeList: true,
  needArg: true,
  sub: [
    {
      name: "force",
      desc: "forcibly recover the cluster",
      opts: "aphfT",
      needNodeList: true,
      needArg: false,
      run: recoverForce,
    },
    {
      name: "enable",
      desc: "enable automatic recovery and run once recover if necessary",
      opts: "aphT",
      needNodeList: true,
      needArg: false,
      run: toggle(Op.ENABLE_RECOVER, "enable"),
    },
    {
      name: "disable",
      desc: "disable automatic recovery",
      opts: "aphT",
      needNodeList: true,
      needArg: false,
      run: toggle(Op.DISABLE_RECOVER, "disable"),
    },
  ],
};

// -------------------------------------------------------------------------------------------------
// vdi check, cluster check

/** Objects checked at the same time. */
const CHECK_WINDOW = 8;

/** What checking one VDI found. */
export interface CheckSummary {
  objects: number;
  repaired: number;
  failed: number;
}

type ReplicaState = { node: SdNode; digest: string | null; error?: string };

function hexOf(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function replicaState(
  ctx: CommandContext,
  node: SdNode,
  oid: bigint,
  existOnly: boolean,
): Promise<ReplicaState> {
  try {
    if (existOnly) {
      const payload = new Uint8Array(8);
      new DataView(payload.buffer).setBigUint64(0, oid, true);
      const req = dogReq(Op.OIDS_EXIST, { flags: Flag.CMD_WRITE, dataLength: 8 });
      const { rsp } = await ctx.session.execOn(node, req, payload);
      if (rsp.result === Res.SUCCESS) return { node, digest: "exists" };
      if (rsp.result === Res.NO_OBJ) return { node, digest: null };
      return { node, digest: null, error: resultText(rsp.result) };
    }
    const req = dogReq(Op.GET_HASH);
    req.obj.oid = oid;
    const { rsp } = await ctx.session.execOn(node, req);
    if (rsp.result === Res.SUCCESS) return { node, digest: hexOf(rsp.hash.digest) };
    if (rsp.result === Res.NO_OBJ) return { node, digest: null };
    return { node, digest: null, error: resultText(rsp.result) };
  } catch (e) {
    return { node, digest: null, error: e instanceof Error ? e.message : String(e) };
  }
}

/** Checks and repairs one object on its holders; returns how many replicas were repaired. */
async function checkObject(
  ctx: CommandContext,
  oid: bigint,
  holders: SdNode[],
  existOnly: boolean,
): Promise<{ repaired: number; failed: number }> {
  const states = await Promise.all(holders.map((n) => replicaState(ctx, n, oid, existOnly)));
  const unreachable = states.filter((s) => s.error !== undefined);
  for (const s of unreachable) {
    await ctx.out.error(
      `failed to check ${oid.toString(16)} on ${
        addrToString(s.node.nid.addr)
      }:${s.node.nid.port}: ${s.error}`,
    );
  }
  const votes = new Map<string, number>();
  for (const s of states) {
    if (s.digest !== null) votes.set(s.digest, (votes.get(s.digest) ?? 0) + 1);
  }
  if (votes.size === 0) {
    await ctx.out.error(`no replica of ${oid.toString(16)} found`);
    return { repaired: 0, failed: 1 };
  }
  let best = "";
  let bestVotes = 0;
  // Ties go to the holder that comes first in ring order.
  for (const s of states) {
    if (s.digest !== null && (votes.get(s.digest)! > bestVotes)) {
      best = s.digest;
      bestVotes = votes.get(s.digest)!;
    }
  }
  const good = states.find((s) => s.digest === best)!.node;
  let repaired = 0;
  let failed = 0;
  for (const s of states) {
    if (s.error !== undefined || s.digest === best) continue;
    const req = dogReq(Op.REPAIR_REPLICA);
    req.forw.oid = oid;
    req.forw.addr = good.nid.addr;
    req.forw.port = good.nid.port;
    try {
      const { rsp } = await ctx.session.execOn(s.node, req);
      if (rsp.result !== Res.SUCCESS) throw new Error(resultText(rsp.result));
      await ctx.out.lines(
        `${s.digest === null ? "fixed missing" : "fixed replica"} ${oid.toString(16)}`,
      );
      repaired++;
    } catch (e) {
      failed++;
      await ctx.out.error(
        `failed to repair ${oid.toString(16)} on ${
          addrToString(s.node.nid.addr)
        }:${s.node.nid.port}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  return { repaired, failed: failed + unreachable.length };
}

/** Checks every replica of the inode and the allocated data objects of `vid`. */
export async function checkVdi(
  ctx: CommandContext,
  vid: number,
  existOnly: boolean,
): Promise<CheckSummary> {
  const { header, index } = await loadInode(ctx.session, vid);
  const oids = [vidToVdiOid(vid)];
  for (const [idx, owner] of index.allocated()) oids.push(vidToDataOid(owner, idx));
  const ring = buildRing(ctx.session.nodes);
  const copies = Math.min(header.nrCopies || 1, ring.nrZones);
  const summary: CheckSummary = { objects: oids.length, repaired: 0, failed: 0 };
  if (ring.isEmpty) throw new DogError(Exit.FAILURE, ["no node with vnodes"]);
  await mapBounded(
    oids,
    CHECK_WINDOW,
    (oid) => checkObject(ctx, oid, ring.place(oid, copies), existOnly),
    (r) => {
      summary.repaired += r.repaired;
      summary.failed += r.failed;
    },
  );
  return summary;
}

async function vdiCheck(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  if (name === undefined) throw usageError();
  const s = ctx.opts.get("s");
  const snap: SnapshotRef = typeof s === "string" ? snapshotOption(s) : WORKING;
  const vid = await openVdi(ctx.session, name, snap);
  const r = await checkVdi(ctx, vid, ctx.opts.has("e"));
  await ctx.out.lines(`finish check&repair ${name}`);
  return r.failed > 0 ? Exit.FAILURE : Exit.SUCCESS;
}

/** `vdi check`. */
export const vdiCheckCommand: Subcommand = {
  name: "check",
  args: "<vdiname>",
  desc: "check and repair image's consistency",
  opts: "seaphT",
  needNodeList: true,
  needArg: true,
  run: vdiCheck,
};

async function clusterCheck(ctx: CommandContext): Promise<number> {
  const vdis: { vid: number; name: string }[] = [];
  await forEachVdi(ctx.session, { noDeleted: true, withIndex: false }, (v) => {
    if (v.header.snapCtime === 0n) vdis.push({ vid: v.vid, name: v.header.name });
  });
  let failed = 0;
  for (const v of vdis) {
    await ctx.out.lines(`fix vdi ${v.name}`);
    const r = await checkVdi(ctx, v.vid, false);
    failed += r.failed;
    await ctx.out.lines(`finish check&repair ${v.name}`);
  }
  return failed > 0 ? Exit.FAILURE : Exit.SUCCESS;
}

/** `cluster check`. */
export const clusterCheckCommand: Subcommand = {
  name: "check",
  desc: "check and repair cluster",
  opts: "aphT",
  needNodeList: true,
  needArg: false,
  run: clusterCheck,
};
