/**
 * `dog vdi lock list` and `dog vdi lock unlock [-s SNAP] VDI` (clusters formatted with `-l`).
 *
 * `lock list` reads the lock state of every VDI with GET_VDI_COPIES (the 1,428-byte vdi_state
 * records every sheep keeps alike) and names the locked ones from their inodes, in v1.0's shape:
 *
 * ```
 * VDI | owner node
 * vol | IPv4 ip:127.0.0.1 port:7000
 * tgt-disk (shared) | IPv4 ip:127.0.0.1 port:7000, IPv4 ip:127.0.0.1 port:7001
 * ```
 *
 * A snapshot is shown as NAME:ID (the NBD export name). `-r` prints `NAME STATE HOST:PORT[,…]`
 * per VDI without the header; `--json` an array of {name, snapId, vid, state, owners}.
 *
 * `lock unlock` frees the VDI whoever holds it. The request is v1.0 dog's byte for byte:
 * RELEASE_VDI with base_vdi_id and lock type normal and no payload. Our sheep treats a release
 * without a payload as forced (lock holders name the VDI in the payload and release only their
 * own node's lock). A VDI that is not locked is reported ("VDI NAME is not locked", exit 1).
 *
 * @module
 */

import {
  LockState,
  LockType,
  Op,
  Res,
  resultText,
  SD_INODE_HEADER_SIZE,
} from "../../core/proto/constants.ts";
import { decodeInodeHeader } from "../../core/proto/inode.ts";
import { addrToString, type NodeId } from "../../core/proto/node.ts";
import { decodeVdiStates, type VdiStateRecord } from "../../core/proto/vdi_state.ts";
import { vidToVdiOid } from "../../core/hash/oid.ts";
import { MAX_REQUEST_DATA } from "../../core/limits.ts";
import type { CommandContext, Subcommand } from "./command_spec.ts";
import { DogError, Exit } from "./dog_error.ts";
import { snapshotOption } from "./option_values.ts";
import { dogReq, type DogSession } from "./session.ts";
import { openVdi, type SnapshotRef, WORKING } from "./vdi_access.ts";

/** The header line of `vdi lock list`. */
export const LOCK_LIST_HEADER = "VDI | owner node";

/** v1.0's node_id_to_str: "IPv4 ip:ADDR port:PORT" (IPv6 for non-IPv4 addresses). */
export function nodeIdText(nid: NodeId): string {
  let v4 = nid.addr[12] !== 0;
  for (let i = 0; i < 12; i++) if (nid.addr[i] !== 0) v4 = false;
  return `${v4 ? "IPv4" : "IPv6"} ip:${addrToString(nid.addr)} port:${nid.port}`;
}

/** One locked VDI as `lock list` shows it. */
export interface LockedVdi {
  vid: number;
  name: string;
  /** 0 for a working VDI. */
  snapId: number;
  shared: boolean;
  /** The lock owner, or the participants of a shared lock. */
  holders: NodeId[];
}

/** The holders of a vdi_state's lock; null when it is unlocked. */
export function lockHolders(r: VdiStateRecord): { shared: boolean; holders: NodeId[] } | null {
  if (r.lockState === LockState.LOCKED) {
    return { shared: false, holders: r.lockOwner ? [r.lockOwner] : [] };
  }
  if (r.lockState === LockState.SHARED) {
    return { shared: true, holders: r.participants.map((p) => p.nid) };
  }
  return null;
}

/** One `lock list` row: the text form, or the raw one (single spaces, HOST:PORT). */
export function lockListRow(v: LockedVdi, raw: boolean): string {
  const label = v.snapId === 0 ? v.name : `${v.name}:${v.snapId}`;
  if (raw) {
    const holders = v.holders.map((n) => `${addrToString(n.addr)}:${n.port}`).join(",");
    return `${label} ${v.shared ? "shared" : "locked"} ${holders}`;
  }
  const holders = v.holders.map(nodeIdText).join(", ");
  return `${label}${v.shared ? " (shared)" : ""} | ${holders}`;
}

/** GET_VDI_COPIES from the target sheep: every VDI's state record. */
async function vdiStates(session: DogSession): Promise<VdiStateRecord[]> {
  const { rsp, data } = await session.exec(dogReq(Op.GET_VDI_COPIES, {
    dataLength: MAX_REQUEST_DATA,
  }));
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.SYSFAIL, [`Failed to get VDI states: ${resultText(rsp.result)}`], {
      result: rsp.result,
    });
  }
  return decodeVdiStates(data);
}

async function lockList(ctx: CommandContext): Promise<number> {
  const locked: LockedVdi[] = [];
  let failed = false;
  for (const r of await vdiStates(ctx.session)) {
    if (r.deleted) continue;
    const held = lockHolders(r);
    if (held === null) continue;
    const { result, data } = await ctx.session.readObject(
      vidToVdiOid(r.vid),
      SD_INODE_HEADER_SIZE,
      0,
    );
    if (result !== Res.SUCCESS) {
      failed = true;
      continue;
    }
    const h = decodeInodeHeader(data);
    locked.push({
      vid: r.vid,
      name: h.name,
      snapId: h.snapCtime !== 0n ? h.snapId : 0,
      ...held,
    });
  }
  locked.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.snapId - b.snapId);
  if (ctx.json) {
    await ctx.out.print(
      JSON.stringify(locked.map((v) => ({
        name: v.name,
        snapId: v.snapId,
        vid: v.vid.toString(16),
        state: v.shared ? "shared" : "locked",
        owners: v.holders.map((n) => `${addrToString(n.addr)}:${n.port}`),
      }))) + "\n",
    );
  } else {
    const lines = ctx.raw ? [] : [LOCK_LIST_HEADER];
    for (const v of locked) lines.push(lockListRow(v, ctx.raw));
    await ctx.out.lines(...lines);
  }
  return failed ? Exit.FAILURE : Exit.SUCCESS;
}

function notLocked(name: string, snap: SnapshotRef): DogError {
  const label = snap.id !== 0
    ? `${name}:${snap.id}`
    : snap.tag !== ""
    ? `${name}:${snap.tag}`
    : name;
  return new DogError(Exit.FAILURE, [`VDI ${label} is not locked`], { result: Res.VDI_NOT_LOCKED });
}

async function lockUnlock(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const s = ctx.opts.get("s");
  const snap = typeof s === "string" ? snapshotOption(s) : WORKING;
  const vid = await openVdi(ctx.session, name, snap);
  const state = (await vdiStates(ctx.session)).find((r) => r.vid === vid);
  if (state === undefined || lockHolders(state) === null) throw notLocked(name, snap);
  const req = dogReq(Op.RELEASE_VDI);
  req.vdi.type = LockType.NORMAL;
  req.vdi.baseVdiId = vid;
  const { rsp } = await ctx.session.exec(req);
  if (rsp.result === Res.VDI_NOT_LOCKED) throw notLocked(name, snap);
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, [`Failed to unlock VDI ${name}: ${resultText(rsp.result)}`], {
      result: rsp.result,
    });
  }
  return Exit.SUCCESS;
}

/** `dog vdi lock {list|unlock}`. */
export const vdiLockCommand: Subcommand = {
  name: "lock",
  args: "{list|unlock} [vdiname]",
  desc: "list locked images, or unlock one forcibly",
  // The options of both subcommands: they are parsed before the subcommand is chosen.
  opts: "saprhT",
  json: true,
  needNodeList: true,
  needArg: true,
  sub: [
    {
      name: "list",
      desc: "list locked VDIs",
      opts: "aprhT",
      json: true,
      needNodeList: true,
      needArg: false,
      run: lockList,
    },
    {
      name: "unlock",
      args: "<vdiname>",
      desc: "unlock locked VDI forcibly",
      opts: "saphT",
      needNodeList: true,
      needArg: true,
      run: lockUnlock,
    },
  ],
};
