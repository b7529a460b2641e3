/**
 * The 40-byte `node_id` as it appears on its own (vdi_state's lock owner and participants):
 * addr[16] @0, port u16 @16, io_addr[16] @18, io_port u16 @34, pad[4] @36. Inside an 80-byte
 * sd_node the same bytes sit at offset 24 (see node.ts).
 *
 * @module
 */

import { assert } from "../assert.ts";
import type { NodeId } from "./node.ts";

/** Size of a `node_id`. */
export const NODE_ID_SIZE = 40;

/** Writes `nid` as 40 bytes at `off` of `out` (the pad is zeroed) and returns `out`. */
export function encodeNodeId(
  nid: NodeId,
  out: Uint8Array = new Uint8Array(NODE_ID_SIZE),
  off = 0,
): Uint8Array {
  assert(off >= 0 && off + NODE_ID_SIZE <= out.length, "node_id does not fit");
  assert(nid.addr.length === 16 && nid.ioAddr.length === 16, "node_id addresses are 16 bytes");
  const v = new DataView(out.buffer, out.byteOffset + off, NODE_ID_SIZE);
  out.fill(0, off, off + NODE_ID_SIZE);
  out.set(nid.addr, off);
  v.setUint16(16, nid.port, true);
  out.set(nid.ioAddr, off + 18);
  v.setUint16(34, nid.ioPort, true);
  return out;
}

/** Reads a 40-byte `node_id` at `off` of `buf` (the caller has checked the length). */
export function decodeNodeId(buf: Uint8Array, off = 0): NodeId {
  assert(off >= 0 && off + NODE_ID_SIZE <= buf.length, "node_id truncated");
  const v = new DataView(buf.buffer, buf.byteOffset + off, NODE_ID_SIZE);
  return {
    addr: buf.slice(off, off + 16),
    port: v.getUint16(16, true),
    ioAddr: buf.slice(off + 18, off + 34),
    ioPort: v.getUint16(34, true),
  };
}
