/**
 * The text v1.0 dog prints, as pure functions from decoded values to lines: node list and node
 * info rows, vdi list rows, the cluster info block, the object location block and the object map.
 * Field widths follow v1.0's printf formats; padding counts UTF-8 bytes as C's `%-8s` does.
 *
 * @module
 */

import { Res, resultText } from "../../core/proto/constants.ts";
import { nodeAddrString, type SdNode } from "../../core/proto/node.ts";
import { type DegradedNode, DegradedReason } from "../../core/proto/degraded.ts";
import { doubleToInt32 } from "./c_numbers.ts";
import { sizeToStr } from "./size.ts";
import { dateOfSeconds, formatCtime, formatMinute, formatSecond } from "./time_format.ts";

const encoder = new TextEncoder();

/** `%<width>s`: right-aligned in `width` bytes. */
export function padLeft(s: string | number, width: number): string {
  const text = String(s);
  const pad = width - encoder.encode(text).length;
  return pad > 0 ? " ".repeat(pad) + text : text;
}

/** `%-<width>s`: left-aligned in `width` bytes. */
export function padRight(s: string | number, width: number): string {
  const text = String(s);
  const pad = width - encoder.encode(text).length;
  return pad > 0 ? text + " ".repeat(pad) : text;
}

/** "N" for replication, "D:P" for an erasure-code policy byte ((D/2) << 4 | P). */
export function redundancyScheme(copies: number, copyPolicy: number): string {
  if (copyPolicy === 0) return String(copies);
  const { data, parity } = ecPolicyToDp(copyPolicy);
  return `${data}:${parity}`;
}

/** The data and parity strip counts of an erasure-code policy byte. */
export function ecPolicyToDp(copyPolicy: number): { data: number; parity: number } {
  return { data: (copyPolicy >> 4) * 2, parity: copyPolicy & 0x0f };
}

// ---------------------------------------------------------------------------------------------
// node list

/** Header line of `node list`. */
export const NODE_LIST_HEADER = "  Id   Host:Port         V-Nodes       Zone";

/** One `node list` row: `%4d   %-20s\t%2d%11u`, or `%d %s %d %u` raw. */
export function nodeListRow(index: number, node: SdNode, raw: boolean): string {
  const host = nodeAddrString(node);
  if (raw) return `${index} ${host} ${node.nrVnodes} ${node.zone >>> 0}`;
  return `${padLeft(index, 4)}   ${padRight(host, 20)}\t${padLeft(node.nrVnodes, 2)}${
    padLeft(node.zone >>> 0, 11)
  }`;
}

// ---------------------------------------------------------------------------------------------
// node info

/** Header line of `node info`. */
export const NODE_INFO_HEADER = "Id\tSize\tUsed\tAvail\tUse%";

/** `(int)((double)used / size * 100)` as v1.0 computes the Use% column. */
export function usePercent(size: bigint, free: bigint): number {
  const used = BigInt.asUintN(64, size - free);
  return doubleToInt32((Number(used) / Number(size)) * 100);
}

/** One `node info` row from a STAT_SHEEP reply. */
export function nodeInfoRow(index: number, size: bigint, free: bigint, raw: boolean): string {
  const used = BigInt.asUintN(64, size - free);
  const ratio = size === 0n ? 0 : usePercent(size, free);
  const cols = [sizeToStr(size, raw), sizeToStr(used, raw), sizeToStr(free, raw)];
  if (raw) return `${index} ${cols.join(" ")} ${ratio}%`;
  return `${padLeft(index, 2)}\t${cols.join("\t")}\t${padLeft(ratio, 3)}%`;
}

/**
 * The closing lines of `node info`: the Total row and the total virtual image size (on the Total
 * row itself in raw mode). Returns the lines without their newlines.
 */
export function nodeInfoTotal(
  size: bigint,
  free: bigint,
  totalVdiSize: bigint,
  raw: boolean,
): string[] {
  const used = BigInt.asUintN(64, size - free);
  const ratio = usePercent(size, free);
  const cols = [sizeToStr(size, raw), sizeToStr(used, raw), sizeToStr(free, raw)];
  if (raw) return [`Total ${cols.join(" ")} ${ratio}% ${sizeToStr(totalVdiSize, raw)}`];
  return [
    `Total\t${cols.join("\t")}\t${padLeft(ratio, 3)}%`,
    "",
    `Total virtual image size\t${sizeToStr(totalVdiSize, raw)}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// vdi list

/** Header line of `vdi list`. */
export const VDI_LIST_HEADER =
  "  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift";

/** What one `vdi list` row shows. */
export interface VdiListEntry {
  vid: number;
  name: string;
  tag: string;
  /** snap_id for a snapshot, 0 for a working VDI or clone. */
  snapId: number;
  kind: "working" | "snapshot" | "clone";
  vdiSize: bigint;
  /** Bytes of objects this vid owns. */
  used: bigint;
  /** Bytes of objects owned by another vid (shared with a parent). */
  shared: bigint;
  /** Seconds of create_time. */
  createTime: bigint;
  copies: number;
  copyPolicy: number;
  blockSizeShift: number;
}

/** The name as raw mode prints it: white space and backslashes escaped with a backslash. */
export function escapeRawName(name: string): string {
  return name.replace(/[ \t\n\v\f\r\\]/g, (c) => "\\" + c);
}

/** One `vdi list` row (v1.0's print_vdi_list). */
export function vdiListRow(e: VdiListEntry, raw: boolean): string {
  const vid = e.vid.toString(16);
  const copies = redundancyScheme(e.copies, e.copyPolicy);
  if (raw) {
    const flag = e.kind === "snapshot" ? "s" : e.kind === "clone" ? "c" : "=";
    return `${flag} ${escapeRawName(e.name)} ${e.snapId} ${sizeToStr(e.vdiSize, true)} ${
      sizeToStr(e.used, true)
    } ${sizeToStr(e.shared, true)} ${e.createTime} ${vid} ${copies} ${e.tag} ${e.blockSizeShift}`;
  }
  const flag = e.kind === "snapshot" ? "s" : e.kind === "clone" ? "c" : " ";
  const date = formatMinute(dateOfSeconds(e.createTime));
  return `${flag} ${padRight(e.name, 8)} ${padLeft(e.snapId, 5)} ${
    padLeft(sizeToStr(e.vdiSize, false), 7)
  } ${padLeft(sizeToStr(e.used, false), 7)} ${padLeft(sizeToStr(e.shared, false), 7)} ${date}  ${
    padLeft(vid, 7)
  } ${padLeft(copies, 6)} ${padLeft(e.tag, 13)} ${padLeft(e.blockSizeShift, 3)}`;
}

// ---------------------------------------------------------------------------------------------
// cluster info

/** One epoch of the cluster history, as STAT_CLUSTER returns it. */
export interface EpochView {
  /** Cluster creation time (Sheepdog timestamp: seconds << 32 | nsec). */
  ctime: bigint;
  /** Unix seconds at which this epoch began. */
  time: bigint;
  epoch: number;
  disableRecovery: boolean;
  nrCopies: number;
  copyPolicy: number;
  flags: number;
  drvName: string;
  nodes: readonly SdNode[];
}

/** Cluster flag bits that `cluster info -v` reports. */
const FLAG_DISKMODE = 0x0002;
const FLAG_AUTO_VNODES = 0x0004;

/**
 * The whole `cluster info` text (v1.0's cluster_info) for a STAT_CLUSTER result and its records,
 * newest first. The verbose block's last line has no newline of its own: the blank line that
 * follows the status supplies it, which is why `-v` shows no blank line before "Cluster created".
 */
export function clusterInfoText(
  result: number,
  logs: readonly EpochView[],
  opts: { raw: boolean; verbose: boolean; degraded?: readonly DegradedNode[] },
): string {
  const { raw, verbose } = opts;
  const first = logs[0];
  let out = raw ? "" : "Cluster status: ";
  if (result === Res.SUCCESS && (opts.degraded?.length ?? 0) > 0) {
    out += `running, ${degradedStatus(opts.degraded!)}\n`;
  } else if (result === Res.SUCCESS) {
    out += `running, auto-recovery ${first?.disableRecovery ? "disabled" : "enabled"}\n`;
  } else {
    out += `${resultText(result)}\n`;
  }
  if (verbose) {
    out += raw ? "" : "Cluster store: ";
    if (result === Res.SUCCESS) {
      const copy = redundancyScheme(first?.nrCopies ?? 0, first?.copyPolicy ?? 0);
      out += `${first?.drvName ?? ""} with ${copy} redundancy policy\n`;
    } else {
      out += `${resultText(result)}\n`;
    }
    const flags = first?.flags ?? 0;
    out += raw ? "" : "Cluster vnodes strategy: ";
    out += flags & FLAG_AUTO_VNODES ? "auto\n" : "fixed\n";
    out += raw ? "" : "Cluster vnode mode: ";
    out += flags & FLAG_DISKMODE ? "disk" : "node";
  }
  out += "\n";
  if (!raw && first !== undefined) {
    out += `Cluster created at ${formatCtime(dateOfSeconds(first.ctime >> 32n))}\n\n`;
    out += "Epoch Time           Version [Host:Port:V-Nodes,,,]\n";
  }
  for (const log of logs) {
    const time = raw ? String(log.time) : formatSecond(dateOfSeconds(log.time));
    const nodes = log.nodes.map((n) => `${nodeAddrString(n)}:${n.nrVnodes}`).join(", ");
    out += `${time} ${raw ? String(log.epoch) : padLeft(log.epoch, 6)} [${nodes}]\n`;
  }
  return out;
}

/**
 * The status words of a cluster that serves degraded because some members' recovery does not go
 * on (a sheepdog-ts extension; v1.0 has no such state). They replace v1.0's "auto-recovery …"
 * after "running, ":
 * `degraded (recovery not started: node 127.0.0.1:7001 would be out of space)`,
 * `degraded (recovery not started: nodes 127.0.0.1:7001, 127.0.0.1:7002 would be out of space)`,
 * `degraded (recovery stalled: node 127.0.0.1:7001 is out of space)`, and both parts joined by
 * "; " when both kinds are reported.
 */
export function degradedStatus(nodes: readonly DegradedNode[]): string {
  const names = (reason: number) =>
    nodes.filter((n) => n.reason === reason).map((n) => nodeAddrString(n.node));
  const parts: string[] = [];
  const notStarted = names(DegradedReason.NOT_STARTED);
  if (notStarted.length > 0) {
    const who = notStarted.length === 1 ? "node" : "nodes";
    parts.push(`recovery not started: ${who} ${notStarted.join(", ")} would be out of space`);
  }
  const stalled = names(DegradedReason.OUT_OF_SPACE);
  if (stalled.length > 0) {
    const who = stalled.length === 1 ? "node" : "nodes";
    const verb = stalled.length === 1 ? "is" : "are";
    parts.push(`recovery stalled: ${who} ${stalled.join(", ")} ${verb} out of space`);
  }
  return `degraded (${parts.join("; ")})`;
}

// ---------------------------------------------------------------------------------------------
// vdi object

/** What `vdi object location` learned about one node. */
export interface NodeHolding {
  node: SdNode;
  /** true: has it; false: does not; a string: the error while asking. */
  has: boolean | string;
}

/** The `vdi object location` block for a data object. */
export function objectLocationText(
  what: { oid: bigint; vid: number; index: number | undefined; copies: number },
  nrNodes: number,
  holdings: readonly NodeHolding[],
  placement: readonly SdNode[],
): string {
  const oidHex = what.oid.toString(16).padStart(16, "0");
  let out = what.index === undefined
    ? `Looking for the inode object ${oidHex} (vid 0x${
      what.vid.toString(16)
    }, ${what.copies} copies) with ${nrNodes} nodes\n\n`
    : `Looking for the object ${oidHex} (vid 0x${
      what.vid.toString(16)
    } idx ${what.index}, ${what.copies} copies) with ${nrNodes} nodes\n\n`;
  for (const h of holdings) {
    const host = nodeAddrString(h.node);
    if (h.has === true) out += `${host} has the object\n`;
    else if (h.has === false) out += `${host} doesn't have the object\n`;
    else out += `${host}: failed to check the object: ${h.has}\n`;
  }
  out += "\nAccording to sheepdog algorithm, the object should be located at:\n";
  out += placement.map(nodeAddrString).join(" ") + "\n";
  return out;
}

/** Header line of `vdi object map`. */
export const OBJECT_MAP_HEADER = "Index       VID";

/** One `vdi object map` row: `%08u %8x`. */
export function objectMapRow(index: number, vid: number): string {
  return `${String(index).padStart(8, "0")} ${padLeft(vid.toString(16), 8)}`;
}
