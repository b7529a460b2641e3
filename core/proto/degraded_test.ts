import assert from "node:assert/strict";
import { Res } from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { makeNode } from "./node.ts";
import {
  decodeDegradedNodes,
  DEGRADED_NODE_SIZE,
  type DegradedNode,
  DegradedReason,
  encodeDegradedNodes,
} from "./degraded.ts";

const nodes: DegradedNode[] = [
  {
    node: makeNode("127.0.0.1", 7001, { zone: 1, space: 42n }),
    reason: DegradedReason.NOT_STARTED,
    needed: 5 * 2 ** 30,
    free: 123,
  },
  {
    node: makeNode("10.0.0.2", 7002, { zone: 2 }),
    reason: DegradedReason.OUT_OF_SPACE,
    needed: 0,
    free: 0,
  },
];

Deno.test("degraded_node records round-trip, 104 bytes each", () => {
  const bytes = encodeDegradedNodes(nodes, 1000);
  assert.equal(bytes.length, 2 * DEGRADED_NODE_SIZE);
  assert.equal(DEGRADED_NODE_SIZE, 104);
  assert.deepEqual(decodeDegradedNodes(bytes), nodes);
  assert.deepEqual(decodeDegradedNodes(new Uint8Array(0)), []);
});

Deno.test("degraded_node: BUFFER_SMALL when the reply does not fit, INVALID_PARMS when damaged", () => {
  assert.throws(
    () => encodeDegradedNodes(nodes, DEGRADED_NODE_SIZE),
    (e) => e instanceof SdError && e.result === Res.BUFFER_SMALL,
  );
  const bytes = encodeDegradedNodes(nodes, 1000);
  assert.throws(
    () => decodeDegradedNodes(bytes.subarray(1)),
    (e) => e instanceof SdError && e.result === Res.INVALID_PARMS,
  );
  bytes[80] = 9;
  assert.throws(
    () => decodeDegradedNodes(bytes),
    (e) => e instanceof SdError && e.result === Res.INVALID_PARMS,
  );
});
