/**
 * `dog node …`: list, info, kill, log level get|set|list.
 *
 * @module
 */

import { Flag, Op, Res } from "../../core/proto/constants.ts";
import { addrToString } from "../../core/proto/node.ts";
import type { CommandContext, CommandGroup, OptionSpec } from "./command_spec.ts";
import { DogError, Exit, usageError } from "./dog_error.ts";
import {
  NODE_INFO_HEADER,
  NODE_LIST_HEADER,
  nodeInfoRow,
  nodeInfoTotal,
  nodeListRow,
} from "./format.ts";
import { lightRequest } from "./light_request.ts";
import { isNumeric, LOG_LEVELS } from "./option_values.ts";
import { dogReq } from "./session.ts";
import { forEachVdi } from "./vdi_access.ts";
import { isSnapshot } from "../../core/proto/inode.ts";
import { nodeRecoveryCommand } from "./recovery_cmds.ts";

const NODE_OPTIONS: readonly OptionSpec[] = [
  { short: "P", long: "progress", hasArg: false, desc: "show progress of recovery in the node" },
  { short: "l", long: "local", hasArg: false, desc: "issue request to local node" },
];

async function nodeList(ctx: CommandContext): Promise<number> {
  const nodes = ctx.session.nodes;
  if (ctx.json) {
    await ctx.out.print(
      JSON.stringify(nodes.map((n, id) => ({
        id,
        host: addrToString(n.nid.addr),
        port: n.nid.port,
        vnodes: n.nrVnodes,
        zone: n.zone >>> 0,
      }))) + "\n",
    );
    return Exit.SUCCESS;
  }
  const lines = ctx.raw ? [] : [NODE_LIST_HEADER];
  nodes.forEach((n, i) => lines.push(nodeListRow(i, n, ctx.raw)));
  await ctx.out.lines(...lines);
  return Exit.SUCCESS;
}

async function nodeInfo(ctx: CommandContext): Promise<number> {
  if (!ctx.raw) await ctx.out.lines(NODE_INFO_HEADER);
  let totalSize = 0n;
  let totalFree = 0n;
  let success = 0;
  for (const [i, node] of ctx.session.nodes.entries()) {
    const rsp = await lightRequest(ctx.session, node, dogReq(Op.STAT_SHEEP));
    if (rsp === undefined) continue;
    const size = rsp.node.storeSize;
    const free = rsp.node.storeFree;
    await ctx.out.lines(nodeInfoRow(i, size, free, ctx.raw));
    success++;
    totalSize += size;
    totalFree += free;
  }
  if (success === 0) throw new DogError(Exit.SYSFAIL, ["Cannot get information from any nodes"]);
  let totalVdiSize = 0n;
  await forEachVdi(ctx.session, { noDeleted: true, withIndex: false }, ({ header }) => {
    if (!isSnapshot(header)) totalVdiSize += header.vdiSize;
  });
  await ctx.out.lines(
    ...nodeInfoTotal(
      BigInt.asUintN(64, totalSize),
      BigInt.asUintN(64, totalFree),
      BigInt.asUintN(64, totalVdiSize),
      ctx.raw,
    ),
  );
  return Exit.SUCCESS;
}

async function nodeKill(ctx: CommandContext): Promise<number> {
  const local = ctx.opts.has("l");
  const id = ctx.args[0];
  let node = undefined;
  if (!local) {
    if (id === undefined) throw usageError();
    if (!isNumeric(id)) {
      throw usageError(`Invalid node id '${id}', please specify a numeric value`);
    }
    const n = Number(id);
    if (n >= ctx.session.nodes.length) throw usageError(`Invalid node id '${n}'`);
    node = ctx.session.nodes[n];
  }
  if ((await lightRequest(ctx.session, node, dogReq(Op.KILL_NODE))) === undefined) {
    await ctx.out.error("Failed to execute request");
    return Exit.FAILURE;
  }
  return Exit.SUCCESS;
}

async function logLevelGet(ctx: CommandContext): Promise<number> {
  const { rsp, data } = await ctx.session.exec(dogReq(Op.GET_LOGLEVEL, { dataLength: 4 }));
  if (rsp.result !== Res.SUCCESS || data.length < 4) {
    await ctx.out.error("Failed to execute request");
    return Exit.MINUS_ONE;
  }
  const level = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
  const name = LOG_LEVELS[level] ?? "unknown";
  await ctx.out.lines(`${name} (${level})`);
  return Exit.SUCCESS;
}

async function logLevelSet(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  if (name === undefined) throw usageError();
  const level = (LOG_LEVELS as readonly string[]).indexOf(name);
  if (level < 0) throw usageError(`invalid log level: ${name}`);
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setInt32(0, level, true);
  const req = dogReq(Op.SET_LOGLEVEL, { flags: Flag.CMD_WRITE, dataLength: 4 });
  const { rsp } = await ctx.session.exec(req, payload);
  if (rsp.result !== Res.SUCCESS) {
    await ctx.out.error("Failed to execute request");
    return Exit.MINUS_ONE;
  }
  return Exit.SUCCESS;
}

async function logLevelList(ctx: CommandContext): Promise<number> {
  await ctx.out.lines(...LOG_LEVELS.map((name, i) => `${name} (${i})`));
  return Exit.SUCCESS;
}

/** The `node` command group. */
export const nodeCommands: CommandGroup = {
  name: "node",
  options: NODE_OPTIONS,
  subcommands: [
    {
      name: "kill",
      args: "<node id>",
      desc: "kill node",
      opts: "aprhlT",
      needNodeList: true,
      needArg: false,
      run: nodeKill,
    },
    {
      name: "list",
      desc: "list nodes",
      opts: "aprhT",
      json: true,
      needNodeList: true,
      needArg: false,
      run: nodeList,
    },
    {
      name: "info",
      desc: "show information about each node",
      opts: "aprhT",
      needNodeList: true,
      needArg: false,
      run: nodeInfo,
    },
    nodeRecoveryCommand,
    {
      name: "log",
      args: "level {get|set|list}",
      desc: "show or set log level of the node",
      opts: "aphT",
      needNodeList: true,
      needArg: true,
      sub: [{
        name: "level",
        args: "{get|set|list}",
        desc: "show or set log level of the node",
        opts: "aphT",
        needNodeList: true,
        needArg: true,
        sub: [
          {
            name: "get",
            desc: "get log level of the node",
            opts: "aphT",
            needNodeList: true,
            needArg: false,
            run: logLevelGet,
          },
          {
            name: "set",
            args: "<level>",
            desc: "set log level of the node",
            opts: "aphT",
            needNodeList: true,
            needArg: true,
            run: logLevelSet,
          },
          {
            name: "list",
            desc: "list log levels",
            opts: "aphT",
            needNodeList: false,
            needArg: false,
            run: logLevelList,
          },
        ],
      }],
    },
  ],
};
