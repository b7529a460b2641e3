import assert from "node:assert/strict";
import {
  addrToString,
  compareNodeId,
  decodeNode,
  decodeNodes,
  defaultZone,
  encodeNode,
  encodeNodes,
  ipv4ToAddr,
  makeNode,
  nodeAddrString,
  type NodeId,
  sameNode,
  type SdNode,
  sortNodes,
} from "./node.ts";
import { Res } from "./constants.ts";
import { SdError } from "./sd_error.ts";

/** 127.0.0.1:7000, 128 vnodes, zone 0x0100007f, 1 TB, laid out by hand. */
// deno-fmt-ignore
const NODE_127_0_0_1_7000 = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // rb @0
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1, // addr @24
  0x58, 0x1b, // port 7000 @40
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // io_addr @42
  0, 0, // io_port @58
  0, 0, 0, 0, // pad @60
  0x80, 0x00, // nr_vnodes 128 @64
  0, 0, // padding @66
  0x7f, 0x00, 0x00, 0x01, // zone @68 = 0x0100007f
  0x00, 0x10, 0xa5, 0xd4, 0xe8, 0x00, 0x00, 0x00, // space 1e12 @72
]);

function node(ip: string, port: number, extra: Partial<SdNode> = {}): SdNode {
  return { ...makeNode(ip, port), ...extra };
}

Deno.test("encodeNode() writes 127.0.0.1:7000 as the 80-byte sd_node of the spec", () => {
  const n = makeNode("127.0.0.1", 7000, { space: 1_000_000_000_000n });
  assert.deepEqual(encodeNode(n), NODE_127_0_0_1_7000);
});

Deno.test("decodeNode() reads every field of a hand-built sd_node", () => {
  const n = decodeNode(NODE_127_0_0_1_7000);
  assert.deepEqual(n.nid.addr, ipv4ToAddr("127.0.0.1"));
  assert.equal(n.nid.port, 7000);
  assert.deepEqual(n.nid.ioAddr, new Uint8Array(16));
  assert.equal(n.nid.ioPort, 0);
  assert.equal(n.nrVnodes, 128);
  assert.equal(n.zone, 0x0100007f);
  assert.equal(n.space, 1_000_000_000_000n);
});

Deno.test("encodeNode() puts io_addr at 42, io_port at 58 and a u16 nr_vnodes at 64", () => {
  const n: SdNode = {
    nid: {
      addr: ipv4ToAddr("10.0.0.1"),
      port: 0xabcd,
      ioAddr: ipv4ToAddr("192.168.1.2"),
      ioPort: 0x1234,
    },
    nrVnodes: 0xffff,
    zone: 0xdeadbeef,
    space: 0xffffffffffffffffn,
  };
  const b = encodeNode(n);
  assert.equal(b.length, 80);
  assert.deepEqual([...b.subarray(36, 42)], [10, 0, 0, 1, 0xcd, 0xab]);
  assert.deepEqual([...b.subarray(54, 60)], [192, 168, 1, 2, 0x34, 0x12]);
  assert.deepEqual([...b.subarray(60, 80)], [
    0,
    0,
    0,
    0,
    0xff,
    0xff,
    0,
    0,
    0xef,
    0xbe,
    0xad,
    0xde,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
  ]);
  assert.deepEqual(decodeNode(b), n);
});

Deno.test("decodeNode() ignores the rb bytes 0-23 that GET_NODE_LIST fills with pointers", () => {
  const b = NODE_127_0_0_1_7000.slice();
  b.fill(0xa5, 0, 24);
  assert.deepEqual(decodeNode(b), decodeNode(NODE_127_0_0_1_7000));
});

Deno.test("encodeNode() zeroes the rb bytes and paddings of a reused buffer", () => {
  const out = new Uint8Array(80).fill(0xff);
  encodeNode(makeNode("127.0.0.1", 7000, { space: 1_000_000_000_000n }), out);
  assert.deepEqual(out, NODE_127_0_0_1_7000);
});

Deno.test("encodeNode() and decodeNode() work at an offset of a larger buffer", () => {
  const out = new Uint8Array(200).fill(0x11);
  const n = makeNode("127.0.0.1", 7000, { space: 1_000_000_000_000n });
  encodeNode(n, out.subarray(5), 33);
  assert.deepEqual(out.subarray(38, 118), NODE_127_0_0_1_7000);
  assert.equal(out[37], 0x11);
  assert.equal(out[118], 0x11);
  assert.deepEqual(decodeNode(out.subarray(5), 33), n);
});

Deno.test("decodeNode() returns addresses that do not alias the input buffer", () => {
  const b = NODE_127_0_0_1_7000.slice();
  const n = decodeNode(b);
  b[39] = 9;
  assert.equal(n.nid.addr[15], 1);
});

Deno.test("encodeNode() asserts when the node does not fit", () => {
  const n = makeNode("127.0.0.1", 7000);
  assert.throws(() => encodeNode(n, new Uint8Array(100), 21), /does not fit/);
  assert.throws(() => decodeNode(new Uint8Array(79)), /truncated/);
});

Deno.test("encodeNodes() lays nodes back to back and decodeNodes() reads them", () => {
  const nodes = [node("127.0.0.1", 7000), node("127.0.0.1", 7001), node("10.1.2.3", 7000)];
  const b = encodeNodes(nodes);
  assert.equal(b.length, 240);
  assert.deepEqual([...b.subarray(80 + 36, 80 + 42)], [127, 0, 0, 1, 0x59, 0x1b]);
  assert.deepEqual([...b.subarray(160 + 36, 160 + 42)], [10, 1, 2, 3, 0x58, 0x1b]);
  assert.deepEqual(decodeNodes(b, 3), nodes);
  assert.deepEqual(decodeNodes(b, 2, 80), nodes.slice(1));
  assert.deepEqual(decodeNodes(b, 0), []);
});

Deno.test("ipv4ToAddr() stores IPv4 as 12 zero bytes and the 4 address bytes (not ::ffff:)", () => {
  assert.deepEqual([...ipv4ToAddr("192.168.10.254")], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    192,
    168,
    10,
    254,
  ]);
});

Deno.test("ipv4ToAddr() refuses malformed addresses with SdError(INVALID_PARMS)", () => {
  for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "a.b.c.d", "1..2.3"]) {
    assert.throws(
      () => ipv4ToAddr(bad),
      (e: unknown) => e instanceof SdError && e.result === Res.INVALID_PARMS,
      bad,
    );
  }
});

Deno.test("defaultZone() reads the last 4 address bytes as a little-endian u32", () => {
  assert.equal(defaultZone(ipv4ToAddr("127.0.0.1")), 0x0100007f);
  assert.equal(defaultZone(ipv4ToAddr("192.168.1.10")), 0x0a01a8c0);
  assert.equal(makeNode("192.168.1.10", 7000).zone, 0x0a01a8c0);
  assert.equal(makeNode("192.168.1.10", 7000, { zone: 5 }).zone, 5);
});

Deno.test("makeNode() defaults to 128 vnodes, no I/O address and zero space", () => {
  const n = makeNode("127.0.0.1", 7002);
  assert.equal(n.nrVnodes, 128);
  assert.deepEqual(n.nid.ioAddr, new Uint8Array(16));
  assert.equal(n.nid.ioPort, 0);
  assert.equal(n.space, 0n);
  assert.equal(makeNode("127.0.0.1", 7002, { nrVnodes: 0 }).nrVnodes, 0);
});

Deno.test("addrToString() prints IPv4 as a dotted quad and nodeAddrString() appends the port", () => {
  assert.equal(addrToString(ipv4ToAddr("127.0.0.1")), "127.0.0.1");
  assert.equal(addrToString(ipv4ToAddr("10.20.30.40")), "10.20.30.40");
  assert.equal(nodeAddrString(makeNode("127.0.0.1", 7000)), "127.0.0.1:7000");
});

function v6(hex: string): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

Deno.test("addrToString() prints IPv6 as glibc's inet_ntop does", () => {
  // Expected texts were produced by glibc inet_ntop(AF_INET6) (Python socket.inet_ntop).
  const cases: [string, string][] = [
    ["fe800000000000000000000000000001", "fe80::1"],
    ["20010db8000000000001000000000001", "2001:db8::1:0:0:1"],
    ["20010db8000000010000000000000001", "2001:db8:0:1::1"],
    ["20010db8000100010001000100010001", "2001:db8:1:1:1:1:1:1"],
    ["20010db8000000010001000100010000", "2001:db8:0:1:1:1:1:0"],
    ["00010000000000000000000000000000", "1::"],
    ["00000000000000000000000000000001", "::1"],
    ["00000000000000000000000000000000", "::"],
    ["00000000000000000000ffffc0a80001", "::ffff:192.168.0.1"],
    ["abcd00000000abcd0000000000000000", "abcd:0:0:abcd::"],
    ["abcd000000001234000000000000abcd", "abcd:0:0:1234::abcd"],
    ["00010000000000010000000000010001", "1::1:0:0:1:1"],
    ["0000000000000000000000ff01020304", "::ff:102:304"],
    ["00000000000000000000fffe01020304", "::fffe:102:304"],
  ];
  for (const [hex, text] of cases) assert.equal(addrToString(v6(hex)), text, hex);
});

Deno.test("addrToString() follows v1.0: 12 zero bytes and a zero byte 12 is not IPv4", () => {
  // v1.0's addr_to_str only picks AF_INET when addr[12] != 0; inet_ntop6 then prints the rest.
  assert.equal(addrToString(v6("00000000000000000000000000010203")), "::0.1.2.3");
  assert.equal(addrToString(v6("00000000000000000000000000000102")), "::102");
});

Deno.test("compareNodeId() orders by memcmp of the address, then by port", () => {
  const id = (ip: string, port: number): NodeId => makeNode(ip, port).nid;
  assert.ok(compareNodeId(id("127.0.0.1", 7001), id("127.0.0.2", 7000)) < 0);
  assert.ok(compareNodeId(id("127.0.0.1", 7000), id("127.0.0.1", 7001)) < 0);
  assert.ok(compareNodeId(id("127.0.0.1", 7001), id("127.0.0.1", 7000)) > 0);
  assert.equal(compareNodeId(id("127.0.0.1", 7000), id("127.0.0.1", 7000)), 0);
  // memcmp, not the LE zone value: 10.0.0.2 < 127.0.0.1 although its zone u32 is larger.
  assert.ok(compareNodeId(id("10.0.0.2", 9000), id("127.0.0.1", 7000)) < 0);
  // Port is compared as a number, not by its LE bytes: 256 (00 01) > 255 (ff 00).
  assert.ok(compareNodeId(id("127.0.0.1", 256), id("127.0.0.1", 255)) > 0);
  // An IPv6 address with a non-zero leading byte sorts after every IPv4 one.
  const six: NodeId = {
    addr: v6("fe800000000000000000000000000001"),
    port: 1,
    ioAddr: new Uint8Array(16),
    ioPort: 0,
  };
  assert.ok(compareNodeId(id("255.255.255.255", 65535), six) < 0);
});

Deno.test("compareNodeId() ignores io_addr, io_port, vnodes, zone and space", () => {
  const a = makeNode("127.0.0.1", 7000, { nrVnodes: 1, zone: 1, space: 1n });
  const b = makeNode("127.0.0.1", 7000, { nrVnodes: 2, zone: 2, space: 2n });
  b.nid.ioAddr = ipv4ToAddr("10.0.0.1");
  b.nid.ioPort = 9;
  assert.equal(compareNodeId(a.nid, b.nid), 0);
  assert.ok(sameNode(a, b));
  assert.ok(!sameNode(a, makeNode("127.0.0.1", 7001)));
});

Deno.test("sortNodes() returns a sorted copy and leaves its input alone", () => {
  const input = [
    node("127.0.0.1", 7002),
    node("127.0.0.2", 7000),
    node("10.0.0.5", 7000),
    node("127.0.0.1", 7000),
  ];
  const sorted = sortNodes(input);
  assert.deepEqual(sorted.map(nodeAddrString), [
    "10.0.0.5:7000",
    "127.0.0.1:7000",
    "127.0.0.1:7002",
    "127.0.0.2:7000",
  ]);
  assert.equal(nodeAddrString(input[0]), "127.0.0.1:7002");
});
