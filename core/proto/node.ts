/**
 * `node_id` (40 B) and `sd_node` (80 B): a sheep's identity on the wire, in epoch files and in
 * cluster_info. IPv4 addresses are stored as 12 zero bytes followed by the 4 address bytes.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res, SD_NODE_SIZE } from "./constants.ts";
import { SdError } from "./sd_error.ts";

/** A sheep's network identity. */
export interface NodeId {
  /** 16 address bytes. */
  addr: Uint8Array;
  port: number;
  /** 16 bytes of the dedicated I/O address (all zero when unused). */
  ioAddr: Uint8Array;
  ioPort: number;
}

/** One member of the cluster. */
export interface SdNode {
  nid: NodeId;
  /** 0 for a gateway-only node. */
  nrVnodes: number;
  zone: number;
  /** Bytes available to sheepdog on that node. */
  space: bigint;
}

/**
 * The 16 address bytes of an IPv4 dotted quad (12 zero bytes + 4). SdError(INVALID_PARMS) on a
 * malformed one.
 */
export function ipv4ToAddr(ip: string): Uint8Array {
  const bad = () => new SdError(Res.INVALID_PARMS, `invalid IPv4 address '${ip}'`);
  const parts = ip.split(".");
  if (parts.length !== 4) throw bad();
  const out = new Uint8Array(16);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw bad();
    out[12 + i] = Number(p);
  });
  return out;
}

/**
 * Text form of 16 address bytes as v1.0's addr_to_str prints it: a dotted quad when the first 12
 * bytes are zero and byte 12 is not, else glibc's inet_ntop(AF_INET6) form (longest run of two or
 * more zero groups shortened to "::", lowercase hex, embedded IPv4 for ::a.b.c.d and
 * ::ffff:a.b.c.d).
 */
export function addrToString(addr: Uint8Array): string {
  assert(addr.length === 16, "address must be 16 bytes");
  let v4 = addr[12] !== 0;
  for (let i = 0; i < 12; i++) if (addr[i] !== 0) v4 = false;
  if (v4) return `${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((addr[i] << 8) | addr[i + 1]);
  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (words[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
      if (cur.len > best.len) best = cur;
    } else {
      cur = { base: -1, len: 0 };
    }
  }
  if (best.len < 2) best = { base: -1, len: 0 };
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff))) {
      return out + `${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
    }
    out += words[i].toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ":";
  return out;
}

/** `HOST:PORT` of a node, as dog prints it. */
export function nodeAddrString(node: SdNode): string {
  return `${addrToString(node.nid.addr)}:${node.nid.port}`;
}

/** A new node record. */
export function makeNode(
  ip: string,
  port: number,
  opts: { nrVnodes?: number; zone?: number; space?: bigint } = {},
): SdNode {
  const addr = ipv4ToAddr(ip);
  return {
    nid: { addr, port, ioAddr: new Uint8Array(16), ioPort: 0 },
    nrVnodes: opts.nrVnodes ?? 128,
    zone: opts.zone ?? defaultZone(addr),
    space: opts.space ?? 0n,
  };
}

/** The default zone: the last 4 address bytes read as a little-endian u32. */
export function defaultZone(addr: Uint8Array): number {
  return new DataView(addr.buffer, addr.byteOffset + 12, 4).getUint32(0, true);
}

/** Writes `node` as 80 bytes at `off` of `out` (the rb bytes 0-23 are zeroed). */
export function encodeNode(node: SdNode, out = new Uint8Array(SD_NODE_SIZE), off = 0): Uint8Array {
  assert(off + SD_NODE_SIZE <= out.length, "sd_node does not fit");
  assert(node.nid.addr.length === 16 && node.nid.ioAddr.length === 16, "node addr is 16 bytes");
  const v = new DataView(out.buffer, out.byteOffset + off, SD_NODE_SIZE);
  out.fill(0, off, off + SD_NODE_SIZE);
  out.set(node.nid.addr, off + 24);
  v.setUint16(40, node.nid.port, true);
  out.set(node.nid.ioAddr, off + 42);
  v.setUint16(58, node.nid.ioPort, true);
  v.setUint16(64, node.nrVnodes, true);
  v.setUint32(68, node.zone >>> 0, true);
  v.setBigUint64(72, BigInt.asUintN(64, node.space), true);
  return out;
}

/** Reads an 80-byte sd_node at `off` (ignores the rb bytes). */
export function decodeNode(buf: Uint8Array, off = 0): SdNode {
  assert(off + SD_NODE_SIZE <= buf.length, "sd_node truncated");
  const v = new DataView(buf.buffer, buf.byteOffset + off, SD_NODE_SIZE);
  return {
    nid: {
      addr: buf.slice(off + 24, off + 40),
      port: v.getUint16(40, true),
      ioAddr: buf.slice(off + 42, off + 58),
      ioPort: v.getUint16(58, true),
    },
    nrVnodes: v.getUint16(64, true),
    zone: v.getUint32(68, true),
    space: v.getBigUint64(72, true),
  };
}

/** Encodes a list of nodes back to back. */
export function encodeNodes(nodes: readonly SdNode[]): Uint8Array {
  const out = new Uint8Array(nodes.length * SD_NODE_SIZE);
  nodes.forEach((n, i) => encodeNode(n, out, i * SD_NODE_SIZE));
  return out;
}

/** Decodes `count` nodes back to back from `off`. */
export function decodeNodes(buf: Uint8Array, count: number, off = 0): SdNode[] {
  const nodes: SdNode[] = [];
  for (let i = 0; i < count; i++) nodes.push(decodeNode(buf, off + i * SD_NODE_SIZE));
  return nodes;
}

/** v1.0's node order: memcmp of the address bytes, then port. */
export function compareNodeId(a: NodeId, b: NodeId): number {
  for (let i = 0; i < 16; i++) {
    if (a.addr[i] !== b.addr[i]) return a.addr[i] - b.addr[i];
  }
  return a.port - b.port;
}

/** True when two nodes have the same address and port. */
export function sameNode(a: SdNode, b: SdNode): boolean {
  return compareNodeId(a.nid, b.nid) === 0;
}

/** A sorted copy of `nodes` in v1.0's order. */
export function sortNodes(nodes: readonly SdNode[]): SdNode[] {
  return [...nodes].sort((a, b) => compareNodeId(a.nid, b.nid));
}
