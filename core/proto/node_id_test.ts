import assert from "node:assert/strict";
import { ipv4ToAddr, type NodeId } from "./node.ts";
import { decodeNodeId, encodeNodeId, NODE_ID_SIZE } from "./node_id.ts";

// deno-fmt-ignore
const NID = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 7, // addr @0
  0x59, 0x1b, // port 7001 @16
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 168, 0, 7, // io_addr @18
  0x34, 0x12, // io_port @34
  0, 0, 0, 0, // pad @36
]);

const nid: NodeId = {
  addr: ipv4ToAddr("10.0.0.7"),
  port: 7001,
  ioAddr: ipv4ToAddr("192.168.0.7"),
  ioPort: 0x1234,
};

Deno.test("encodeNodeId() writes the 40-byte node_id: addr, port @16, io_addr @18, io_port @34", () => {
  assert.equal(NODE_ID_SIZE, 40);
  assert.deepEqual(encodeNodeId(nid), NID);
});

Deno.test("decodeNodeId() reads a hand-built node_id", () => {
  assert.deepEqual(decodeNodeId(NID), nid);
});

Deno.test("encodeNodeId() writes at an offset, zeroes the pad and touches nothing around", () => {
  const out = new Uint8Array(50).fill(0xee);
  encodeNodeId(nid, out, 5);
  assert.deepEqual(out.subarray(5, 45), NID);
  assert.equal(out[4], 0xee);
  assert.equal(out[45], 0xee);
  assert.deepEqual(decodeNodeId(out, 5), nid);
});

Deno.test("decodeNodeId() asserts when the buffer is too short", () => {
  assert.throws(() => decodeNodeId(new Uint8Array(39)), /truncated/);
  assert.throws(() => encodeNodeId(nid, new Uint8Array(40), 1), /does not fit/);
});
