import assert from "node:assert/strict";
import { Res } from "./constants.ts";
import {
  decodeEpochFile,
  decodeEpochLogRecord,
  encodeEpochFile,
  encodeEpochLogRecord,
  type EpochLogRecord,
  epochLogRecordSize,
} from "./epoch_log.ts";
import { encodeNode, makeNode } from "./node.ts";
import { SdError } from "./sd_error.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

const NODES = [7000, 7001, 7002].map((p, i) => makeNode("127.0.0.1", p, { zone: i }));

Deno.test("encodeEpochFile() of 3 nodes is 248 bytes: the nodes, then the time_t", () => {
  const b = encodeEpochFile(NODES, 0x65601234n);
  assert.equal(b.length, 248);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(b.subarray(80 * i, 80 * i + 80), encodeNode(NODES[i]));
  }
  assert.deepEqual([...b.subarray(240)], [0x34, 0x12, 0x60, 0x65, 0, 0, 0, 0]);
});

Deno.test("decodeEpochFile() reads a hand-built epoch file", () => {
  const b = new Uint8Array(248);
  NODES.forEach((n, i) => b.set(encodeNode(n), 80 * i));
  b.set([0x34, 0x12, 0x60, 0x65, 0, 0, 0, 0], 240);
  assert.deepEqual(decodeEpochFile(b), { nodes: NODES, time: 0x65601234n });
});

Deno.test("decodeEpochFile() ignores rb bytes and reads an epoch with no nodes", () => {
  const b = encodeEpochFile(NODES.slice(0, 1), 5n);
  b.fill(0x99, 0, 24);
  assert.deepEqual(decodeEpochFile(b).nodes, NODES.slice(0, 1));
  assert.deepEqual(decodeEpochFile(encodeEpochFile([], 7n)), { nodes: [], time: 7n });
});

Deno.test("decodeEpochFile() refuses a size that is not 80n + 8", () => {
  for (const size of [0, 7, 9, 87, 89, 247, 249]) {
    assert.throws(() => decodeEpochFile(new Uint8Array(size)), invalidParms, `${size}`);
  }
});

const REC: EpochLogRecord = {
  ctime: 0x655f1a2b1dcd6500n,
  time: 0x65601234n,
  epoch: 4,
  nrNodes: 2,
  disableRecovery: true,
  nrCopies: 3,
  copyPolicy: 0x21,
  flags: 0x0014,
  drvName: "tree",
  nodes: NODES.slice(0, 2),
};

Deno.test("epochLogRecordSize() is 48 + 80 per node slot", () => {
  assert.equal(epochLogRecordSize(0), 48);
  assert.equal(epochLogRecordSize(3), 288);
  assert.equal(epochLogRecordSize(6144), 491_568);
});

Deno.test("encodeEpochLogRecord() writes every field at its spec offset and zero spare slots", () => {
  const b = encodeEpochLogRecord(REC, 3);
  const exp = new Uint8Array(288);
  exp.set([0x00, 0x65, 0xcd, 0x1d, 0x2b, 0x1a, 0x5f, 0x65], 0); // ctime
  exp.set([0x34, 0x12, 0x60, 0x65, 0, 0, 0, 0], 8); // time
  exp.set([4, 0, 0, 0], 16); // epoch
  exp.set([2, 0, 0, 0], 20); // nr_nodes
  exp[24] = 1; // disable_recovery
  exp[25] = 3; // nr_copies
  exp[26] = 0x21; // copy_policy
  exp.set([0x14, 0x00], 30); // flags
  exp.set([0x74, 0x72, 0x65, 0x65], 32); // drv_name "tree"
  exp.set(encodeNode(NODES[0]), 48);
  exp.set(encodeNode(NODES[1]), 128);
  assert.deepEqual(b, exp);
});

Deno.test("decodeEpochLogRecord() reads the second record of a STAT_CLUSTER reply", () => {
  const slots = 3;
  const older = { ...REC, ctime: 0n, epoch: 3, nrNodes: 3, nodes: NODES, drvName: "" };
  const reply = new Uint8Array(2 * epochLogRecordSize(slots));
  reply.set(encodeEpochLogRecord(REC, slots), 0);
  reply.set(encodeEpochLogRecord(older, slots), epochLogRecordSize(slots));
  assert.deepEqual(decodeEpochLogRecord(reply, 0, slots), REC);
  assert.deepEqual(decodeEpochLogRecord(reply, epochLogRecordSize(slots), slots), older);
});

Deno.test("decodeEpochLogRecord() keeps nr_nodes as sent but decodes at most nodeSlots nodes", () => {
  const b = encodeEpochLogRecord(REC, 2);
  b.set([0xff, 0xff, 0xff, 0xff], 20); // v1.0 stores -1 when it could not read the epoch
  const rec = decodeEpochLogRecord(b, 0, 2);
  assert.equal(rec.nrNodes, 0xffffffff);
  assert.deepEqual(rec.nodes, REC.nodes);
});

Deno.test("decodeEpochLogRecord() refuses a record past the end of the buffer", () => {
  const b = encodeEpochLogRecord(REC, 2);
  assert.throws(() => decodeEpochLogRecord(b, 0, 3), invalidParms);
  assert.throws(() => decodeEpochLogRecord(b, 1, 2), invalidParms);
});

Deno.test("encodeEpochLogRecord() refuses a drv_name of 16 bytes", () => {
  assert.throws(
    () => encodeEpochLogRecord({ ...REC, drvName: "0123456789abcdef" }, 2),
    invalidParms,
  );
});
