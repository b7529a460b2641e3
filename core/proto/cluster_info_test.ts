import assert from "node:assert/strict";
import {
  CLUSTER_INFO_HEADER_SIZE,
  type ClusterInfo,
  decodeClusterInfo,
  encodeClusterInfo,
} from "./cluster_info.ts";
import {
  ClusterFlag,
  ClusterStatus,
  Res,
  SD_CLUSTER_INFO_SIZE,
  SD_SHEEP_PROTO_VER,
} from "./constants.ts";
import { encodeNode, makeNode } from "./node.ts";
import { SdError } from "./sd_error.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

const NODES = [
  makeNode("127.0.0.1", 7000, { space: 1n << 40n }),
  makeNode("127.0.0.1", 7001, { zone: 1, space: 1n << 40n }),
];

const CI: ClusterInfo = {
  protoVer: SD_SHEEP_PROTO_VER,
  disableRecovery: true,
  epoch: 0x0102,
  ctime: 0x655f1a2b1dcd6500n,
  flags: ClusterFlag.AUTO_VNODES | ClusterFlag.USE_LOCK,
  nrCopies: 3,
  copyPolicy: 0x22,
  status: ClusterStatus.WAIT,
  blockSizeShift: 22,
  defaultStore: "plain",
  nodes: NODES,
};

/** CI's 48-byte header, set one spec offset at a time. */
function headerBytes(nrNodes: number): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = 0x0a; // proto_ver
  b[1] = 1; // disable_recovery
  b.set([nrNodes, 0], 2); // nr_nodes i16
  b.set([0x02, 0x01, 0, 0], 4); // epoch
  b.set([0x00, 0x65, 0xcd, 0x1d, 0x2b, 0x1a, 0x5f, 0x65], 8); // ctime
  b.set([0x0c, 0x00], 16); // flags
  b[18] = 3; // nr_copies
  b[19] = 0x22; // copy_policy
  b[20] = 2; // status WAIT
  b[21] = 22; // block_size_shift
  b.set([0x70, 0x6c, 0x61, 0x69, 0x6e], 25); // default_store "plain"
  return b;
}

Deno.test("encodeClusterInfo() writes the 48-byte header at spec offsets then 80-byte nodes", () => {
  const b = encodeClusterInfo(CI);
  assert.equal(b.length, 48 + 2 * 80);
  assert.deepEqual(b.subarray(0, 48), headerBytes(2));
  assert.deepEqual(b.subarray(48, 128), encodeNode(NODES[0]));
  assert.deepEqual(b.subarray(128, 208), encodeNode(NODES[1]));
});

Deno.test("encodeClusterInfo(ci, true) is the whole 491,568-byte struct, zero after the nodes", () => {
  const b = encodeClusterInfo(CI, true);
  assert.equal(b.length, 491_568);
  assert.equal(SD_CLUSTER_INFO_SIZE, 491_568);
  assert.deepEqual(b.subarray(0, 208), encodeClusterInfo(CI));
  assert.ok(b.subarray(208).every((x) => x === 0));
});

Deno.test("decodeClusterInfo() reads a hand-built cluster_info", () => {
  const b = new Uint8Array(48 + 160);
  b.set(headerBytes(2));
  b.set(encodeNode(NODES[0]), 48);
  b.set(encodeNode(NODES[1]), 128);
  assert.deepEqual(decodeClusterInfo(b), CI);
});

Deno.test("decodeClusterInfo() round trips the used part and the full struct", () => {
  assert.deepEqual(decodeClusterInfo(encodeClusterInfo(CI)), CI);
  assert.deepEqual(decodeClusterInfo(encodeClusterInfo(CI, true)), CI);
  const none = { ...CI, nodes: [], disableRecovery: false, status: ClusterStatus.OK };
  assert.equal(encodeClusterInfo(none).length, CLUSTER_INFO_HEADER_SIZE);
  assert.deepEqual(decodeClusterInfo(encodeClusterInfo(none)), none);
});

Deno.test("decodeClusterInfo() refuses a buffer that cannot hold nr_nodes nodes", () => {
  assert.throws(() => decodeClusterInfo(new Uint8Array(47)), invalidParms);
  assert.throws(() => decodeClusterInfo(encodeClusterInfo(CI).subarray(0, 207)), invalidParms);
});

Deno.test("decodeClusterInfo() refuses a negative nr_nodes or one above 6144", () => {
  const neg = encodeClusterInfo(CI, true);
  neg.set([0xff, 0xff], 2); // -1 as i16
  assert.throws(() => decodeClusterInfo(neg), invalidParms);
  const big = encodeClusterInfo(CI, true);
  big.set([0x01, 0x18], 2); // 6145
  assert.throws(() => decodeClusterInfo(big), invalidParms);
  const max = encodeClusterInfo(CI, true);
  max.set([0x00, 0x18], 2); // 6144 fits the full struct
  assert.equal(decodeClusterInfo(max).nodes.length, 6144);
});

Deno.test("decodeClusterInfo() reads a 16-byte default_store without NUL", () => {
  const b = encodeClusterInfo(CI);
  b.fill(0x61, 25, 41);
  assert.equal(decodeClusterInfo(b).defaultStore, "a".repeat(16));
});

Deno.test("encodeClusterInfo() refuses a default_store of 16 bytes or more", () => {
  assert.throws(() => encodeClusterInfo({ ...CI, defaultStore: "x".repeat(16) }), invalidParms);
});
