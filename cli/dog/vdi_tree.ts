/**
 * `dog vdi tree` and `dog vdi graph` as v1.0 prints them, as pure functions of the VDIs in the
 * order parse_vdi visits them (increasing vid).
 *
 * Tree (v1.0's treeview.c): a VDI hangs under the VDI whose vid is its parent_vdi_id *and* whose
 * name is its own (so a clone starts a tree of its own); one tree per root, the root's name first,
 * then each level's label joined with "---" (only child), "-+-" (first of several), "|-" and
 * "`-" on the following lines, aligned on the byte widths of the labels above.
 *
 * @module
 */

import { sizeToStr } from "./size.ts";
import { dateOfSeconds, formatMinute } from "./time_format.ts";

const encoder = new TextEncoder();
const TEXT_BOLD = "\x1b[1m";
const TEXT_NORMAL = "\x1b[0m";

function width(s: string): number {
  return encoder.encode(s).length;
}

/** One VDI of the tree. */
export interface TreeVdi {
  name: string;
  /** "(you are here)" for a working VDI, "[YYYY-MM-DD HH:MM]" (create time) for a snapshot. */
  label: string;
  vid: number;
  parentVid: number;
  /** Printed bold (working VDIs, when stdout is a terminal). */
  highlight: boolean;
}

/** The label v1.0 gives a VDI in the tree. */
export function treeLabel(isSnapshot: boolean, createSeconds: bigint): string {
  return isSnapshot ? `[${formatMinute(dateOfSeconds(createSeconds))}]` : "(you are here)";
}

interface Node extends TreeVdi {
  children: Node[];
}

function find(parent: Node, vid: number, name: string): Node | undefined {
  for (const c of parent.children) {
    if (c.vid === vid && c.name === name) return c;
    const r = find(c, vid, name);
    if (r) return r;
  }
  return undefined;
}

/** Moves nodes added before their parent under it (v1.0's compaction). */
function compact(root: Node, parent: Node): void {
  for (const c of [...parent.children]) {
    const p = find(root, c.parentVid, c.name);
    if (p && p !== parent && !contains(c, p)) {
      parent.children.splice(parent.children.indexOf(c), 1);
      p.children.push(c);
    }
  }
  for (const c of parent.children) compact(root, c);
}

function contains(n: Node, target: Node): boolean {
  return n === target || n.children.some((c) => contains(c, target));
}

/** The whole `vdi tree` output. */
export function renderTree(vdis: readonly TreeVdi[]): string {
  const root: Node = {
    name: "",
    label: "",
    vid: 0,
    parentVid: 0,
    highlight: false,
    children: [],
  };
  for (const v of vdis) {
    const node: Node = { ...v, children: [] };
    (find(root, v.parentVid, v.name) ?? root).children.push(node);
  }
  compact(root, root);
  let out = "";
  const widths: number[] = [];
  const more: boolean[] = [];
  const indent = (level: number, first: boolean, last: boolean) => {
    if (first) {
      out += last ? "---" : "-+-";
      return;
    }
    for (let lvl = 0; lvl < level - 1; lvl++) {
      out += " ".repeat(widths[lvl] + 1);
      out += more[lvl + 1] ? "| " : "  ";
    }
    out += " ".repeat(widths[level - 1] + 1);
    out += last ? "`-" : "|-";
  };
  const dump = (cur: Node, level: number, first: boolean, last: boolean) => {
    indent(level, first, last);
    out += cur.highlight ? `${TEXT_BOLD}${cur.label}${TEXT_NORMAL}` : cur.label;
    widths[level] = width(cur.label);
    if (cur.children.length === 0) {
      out += "\n";
      return;
    }
    more[level] = !last;
    cur.children.forEach((c, i) => dump(c, level + 1, i === 0, i === cur.children.length - 1));
  };
  for (const top of root.children) {
    out += top.name;
    more[0] = false;
    widths[0] = width(top.name);
    dump(top, 1, true, true);
  }
  return out;
}

/** One VDI of the graph. */
export interface GraphVdi {
  name: string;
  vid: number;
  parentVid: number;
  snapId: number;
  vdiSize: bigint;
  createSeconds: bigint;
  isCurrent: boolean;
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** `%10s` */
function right10(s: string): string {
  const pad = 10 - width(s);
  return pad > 0 ? " ".repeat(pad) + s : s;
}

/** The header of `vdi graph`. */
export const GRAPH_HEADER = 'digraph G {\n  node [shape = "box", fontname = "Courier"];\n\n' +
  '  "0" [shape = "ellipse", label = "root"];\n\n';
/** The footer of `vdi graph`. */
export const GRAPH_FOOTER = "}\n";

/** One VDI's edge and node in `vdi graph` (v1.0's print_vdi_graph; "Tag" prints the snap id). */
export function graphEntry(v: GraphVdi, raw: boolean): string {
  const d = dateOfSeconds(v.createSeconds);
  const date = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  let out = `  "${v.parentVid.toString(16)}" -> "${v.vid.toString(16)}";\n`;
  out += `  "${v.vid.toString(16)}" [\n    group = "${v.name}",\n    label = "`;
  out += `Name: ${right10(v.name)}\\nTag:  ${right10(v.snapId.toString(16))}\\n` +
    `Size: ${right10(sizeToStr(v.vdiSize, raw))}\\nDate: ${right10(date)}\\nTime: ${right10(time)}`;
  out += v.isCurrent ? '"\n    color="red"\n  ];\n\n' : '"\n  ];\n\n';
  return out;
}
