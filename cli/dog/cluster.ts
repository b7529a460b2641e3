/**
 * `dog cluster …`: info, format, shutdown.
 *
 * @module
 */

import {
  ClusterFlag,
  Flag,
  Op,
  Res,
  resultText,
  SD_CLUSTER_INFO_SIZE,
  SD_DEFAULT_BLOCK_SIZE_SHIFT,
  SD_DEFAULT_COPIES,
  SD_DEFAULT_STORE,
  SD_MAX_NODES,
  STORE_LEN,
} from "../../core/proto/constants.ts";
import { decodeClusterInfo } from "../../core/proto/cluster_info.ts";
import { decodeEpochLogRecord, epochLogRecordSize } from "../../core/proto/epoch_log.ts";
import { addrToString } from "../../core/proto/node.ts";
import { type DegradedNode, DegradedReason } from "../../core/proto/degraded.ts";
import { MAX_REQUEST_DATA } from "../../core/limits.ts";
import type { Reply } from "../../core/net/client.ts";
import type { CommandContext, CommandGroup, OptionSpec } from "./command_spec.ts";
import { confirm, FORMAT_NOT_EMPTY } from "./confirm.ts";
import { DogError, Exit, ReportedError } from "./dog_error.ts";
import { clusterInfoText, type EpochView, redundancyScheme } from "./format.ts";
import { blockSizeShiftOption, copiesOption } from "./option_values.ts";
import { dogReq } from "./session.ts";
import { sendLightReq } from "./light_request.ts";
import { sdTimeOf, sdTimeSeconds } from "./time_format.ts";
import { readVdiBitmap, setBits } from "./vdi_access.ts";
import { clusterCheckCommand, clusterRecoverCommand, statDegraded } from "./recovery_cmds.ts";

const CLUSTER_OPTIONS: readonly OptionSpec[] = [
  { short: "b", long: "store", hasArg: true, desc: "specify backend store" },
  {
    short: "c",
    long: "copies",
    hasArg: true,
    desc: "specify the default data redundancy (number of copies)",
  },
  { short: "f", long: "force", hasArg: false, desc: "do not prompt for confirmation" },
  {
    short: "t",
    long: "strict",
    hasArg: false,
    desc: "do not serve write request if number of nodes is not sufficient",
  },
  {
    short: "z",
    long: "block_size_shift",
    hasArg: true,
    desc: "specify the shift num of default data object size",
  },
  { short: "V", long: "fixedvnodes", hasArg: false, desc: "disable automatic vnodes calculation" },
  { short: "R", long: "recycle-vid", hasArg: false, desc: "enable recycling of deleted VIDs" },
  { short: "l", long: "lock", hasArg: false, desc: "enable VDI locking" },
  {
    short: "F",
    long: "avoid-diskfull",
    hasArg: false,
    desc: "cancel recovery if it would fill a disk",
  },
];

/**
 * Reads the epoch history with STAT_CLUSTER: one record per epoch, each with room for the current
 * number of nodes. An older epoch may have had more nodes (some left since): the sheep then
 * answers BUFFER_SMALL, and, as v1.0's dog does, the node slots per record are doubled.
 */
async function statCluster(ctx: CommandContext): Promise<{ result: number; logs: EpochView[] }> {
  let slots = Math.max(ctx.session.nodes.length, 1);
  const nrLogs = Math.max(ctx.session.epoch, 1);
  let reply: Reply;
  while (true) {
    const length = nrLogs * epochLogRecordSize(slots);
    if (length > MAX_REQUEST_DATA) {
      throw new DogError(Exit.SYSFAIL, ["Failed to get cluster information: too many epochs"]);
    }
    const req = dogReq(Op.STAT_CLUSTER, { dataLength: length });
    req.cluster.nodesNr = slots;
    reply = await ctx.session.exec(req);
    if (reply.rsp.result !== Res.BUFFER_SMALL) break;
    if (slots >= SD_MAX_NODES) {
      throw new DogError(Exit.SYSFAIL, ["Failed to get cluster information: too many nodes"]);
    }
    slots = Math.min(slots * 2, SD_MAX_NODES);
  }
  const recordSize = epochLogRecordSize(slots);
  const count = Math.floor(reply.data.length / recordSize);
  const logs: EpochView[] = [];
  for (let i = 0; i < count; i++) {
    logs.push(decodeEpochLogRecord(reply.data, i * recordSize, slots));
  }
  return { result: reply.rsp.result, logs };
}

/** `cluster info` as JSON. */
function clusterInfoJson(
  result: number,
  logs: readonly EpochView[],
  degraded: readonly DegradedNode[],
): string {
  const first = logs[0];
  const flags = first?.flags ?? 0;
  return JSON.stringify({
    status: result === Res.SUCCESS ? "running" : resultText(result),
    degraded: degraded.map((d) => ({
      host: addrToString(d.node.nid.addr),
      port: d.node.nid.port,
      reason: d.reason === DegradedReason.NOT_STARTED ? "recovery not started" : "out of space",
      neededBytes: d.needed,
      freeBytes: d.free,
    })),
    autoRecovery: first === undefined ? null : !first.disableRecovery,
    store: first?.drvName ?? null,
    redundancy: first === undefined ? null : redundancyScheme(first.nrCopies, first.copyPolicy),
    copies: first?.nrCopies ?? null,
    copyPolicy: first?.copyPolicy ?? null,
    vnodesStrategy: flags & ClusterFlag.AUTO_VNODES ? "auto" : "fixed",
    vnodeMode: flags & ClusterFlag.DISKMODE ? "disk" : "node",
    createdAt: first === undefined ? null : Number(sdTimeSeconds(first.ctime)),
    epochs: logs.map((l) => ({
      epoch: l.epoch,
      time: Number(l.time),
      nodes: l.nodes.map((n) => ({
        host: addrToString(n.nid.addr),
        port: n.nid.port,
        vnodes: n.nrVnodes,
        zone: n.zone,
      })),
    })),
  }) + "\n";
}

async function clusterInfo(ctx: CommandContext): Promise<number> {
  const { result, logs } = await statCluster(ctx);
  const degraded = result === Res.SUCCESS ? await statDegraded(ctx) : [];
  if (ctx.json) await ctx.out.print(clusterInfoJson(result, logs, degraded));
  else {
    await ctx.out.print(
      clusterInfoText(result, logs, { raw: ctx.raw, verbose: ctx.verbose, degraded }),
    );
  }
  return Exit.SUCCESS;
}

/** The vnode-strategy check v1.0 makes on every member before formatting. */
async function checkVnodeStrategy(ctx: CommandContext, fixed: boolean): Promise<void> {
  for (const node of ctx.session.nodes) {
    const req = dogReq(Op.CLUSTER_INFO, { dataLength: SD_CLUSTER_INFO_SIZE });
    let reply: Reply;
    try {
      reply = await ctx.session.execOn(node, req);
    } catch (e) {
      const lines = e instanceof ReportedError ? [] : [e instanceof Error ? e.message : String(e)];
      throw new DogError(Exit.SYSFAIL, [...lines, "Fail to execute request"], { cause: e });
    }
    if (reply.rsp.result !== Res.SUCCESS) {
      throw new DogError(Exit.FAILURE, [resultText(reply.rsp.result)], {
        result: reply.rsp.result,
      });
    }
    const auto = (decodeClusterInfo(reply.data).flags & ClusterFlag.AUTO_VNODES) !== 0;
    if (node.nrVnodes === 0) continue;
    if (auto && fixed) {
      throw new DogError(Exit.FAILURE, [
        "Can not apply the option of '-V', because there are vnode strategy of sheep is auto in the cluster",
      ]);
    }
    if (!auto && !fixed) {
      throw new DogError(Exit.FAILURE, [
        "Need to specify the option of '-V', because there are vnode strategy of sheep is fixed in the cluster",
      ]);
    }
  }
}

/** GET_STORE_LIST after a NO_STORE format failure (v1.0's list_store). */
async function listStores(ctx: CommandContext): Promise<number> {
  const req = dogReq(Op.GET_STORE_LIST, { dataLength: 512 });
  const { rsp, data } = await ctx.session.exec(req);
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, [`Failed to get the store list: ${resultText(rsp.result)}`]);
  }
  const nul = data.indexOf(0);
  const names = new TextDecoder().decode(nul < 0 ? data : data.subarray(0, nul));
  await ctx.out.lines("Available stores:", "---------------------------------------", names);
  return Exit.SYSFAIL;
}

async function clusterFormat(ctx: CommandContext): Promise<number> {
  const c = ctx.opts.get("c");
  const { copies, copyPolicy } = typeof c === "string"
    ? copiesOption(c)
    : { copies: SD_DEFAULT_COPIES, copyPolicy: 0 };
  const z = ctx.opts.get("z");
  const shift = typeof z === "string" ? blockSizeShiftOption(z) : SD_DEFAULT_BLOCK_SIZE_SHIFT;
  const b = ctx.opts.get("b");
  // pstrcpy into store[16]: at most 15 bytes.
  const store = typeof b === "string" ? b.slice(0, STORE_LEN - 1) : SD_DEFAULT_STORE;
  const force = ctx.opts.has("f");
  const fixed = ctx.opts.has("V");

  await checkVnodeStrategy(ctx, fixed);

  const nrNodes = ctx.session.nodes.length;
  if (!force && copies > nrNodes) {
    const question = `Number of copies (${copies}) is larger than number of nodes (${nrNodes}).\n` +
      "Are you sure you want to continue? [yes/no]: ";
    if (!(await confirm(ctx.out, ctx.stdin, question))) return Exit.SUCCESS;
  }
  if (!force) {
    // v1.0 calls a cluster non-empty when any bit of the in-use VDI bitmap is set; deleted VDIs
    // keep their bit, so a cluster whose VDIs were all deleted still asks.
    if (setBits(await readVdiBitmap(ctx.session)).length > 0) {
      if (!(await confirm(ctx.out, ctx.stdin, FORMAT_NOT_EMPTY))) return Exit.SUCCESS;
    }
  }

  let flags = 0;
  if (ctx.opts.has("t")) flags |= ClusterFlag.STRICT;
  if (ctx.opts.has("l")) flags |= ClusterFlag.USE_LOCK;
  if (ctx.opts.has("R")) flags |= ClusterFlag.RECYCLE_VID;
  if (ctx.opts.has("F")) flags |= ClusterFlag.AVOID_DISKFULL;
  if (!fixed) flags |= ClusterFlag.AUTO_VNODES;

  const payload = new Uint8Array(new TextEncoder().encode(store + "\0"));
  const req = dogReq(Op.MAKE_FS, { flags: Flag.CMD_WRITE, dataLength: payload.length });
  req.cluster.copies = copies;
  req.cluster.copyPolicy = copyPolicy;
  req.cluster.flags = flags;
  req.cluster.blockSizeShift = shift;
  req.cluster.ctime = sdTimeOf(ctx.io.now());

  await ctx.out.lines(`using backend ${store} store`);
  const { rsp } = await ctx.session.exec(req, payload);
  if (rsp.result !== Res.SUCCESS) {
    await ctx.out.error(`Format failed: ${resultText(rsp.result)}`);
    if (rsp.result === Res.NO_STORE) return await listStores(ctx);
    return Exit.SYSFAIL;
  }
  return Exit.SUCCESS;
}

async function clusterShutdown(ctx: CommandContext): Promise<number> {
  if (!(await sendLightReq(ctx.session, undefined, dogReq(Op.SHUTDOWN)))) {
    await ctx.out.error("Failed to execute request");
    return Exit.FAILURE;
  }
  return Exit.SUCCESS;
}

/** The `cluster` command group. */
export const clusterCommands: CommandGroup = {
  name: "cluster",
  options: CLUSTER_OPTIONS,
  subcommands: [
    {
      name: "info",
      desc: "show cluster information",
      opts: "aprhvT",
      json: true,
      needNodeList: true,
      needArg: false,
      run: clusterInfo,
    },
    {
      name: "format",
      desc: "create a Sheepdog store",
      opts: "bcfthzaVRlpTF",
      needNodeList: true,
      needArg: false,
      run: clusterFormat,
    },
    {
      name: "shutdown",
      desc: "stop Sheepdog",
      opts: "aphT",
      needNodeList: true,
      needArg: false,
      run: clusterShutdown,
    },
    clusterRecoverCommand,
    clusterCheckCommand,
  ],
};
