import assert from "node:assert/strict";
import { eventFromJson, eventToJson, snapshotFromJson, snapshotToJson } from "./event_codec.ts";
import { EventLog, type RawEvent } from "./event_log.ts";
import { makeNode } from "../proto/node.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";

const node = makeNode("10.0.0.7", 7001, { nrVnodes: 64, zone: 3, space: 1n << 40n });
const bytes = new Uint8Array([0, 1, 2, 254, 255]);

const EVENTS: RawEvent[] = [
  { type: "join", id: "a", node, opaque: bytes },
  { type: "accept", id: "a", by: "m", opaque: new Uint8Array(0) },
  { type: "refuse", id: "a", by: "m", reason: "ctime differs" },
  { type: "leave", id: "a" },
  { type: "notify", id: "a", msg: bytes },
  { type: "block", id: "a" },
  { type: "unblock", id: "a", msg: bytes },
  { type: "unblock", id: "a", msg: null },
  { type: "update_node", id: "a", node },
];

Deno.test("every raw event survives a JSON text round trip", () => {
  for (const ev of EVENTS) {
    const text = JSON.stringify(eventToJson(ev));
    assert.ok(!text.includes("\n"), "one event is one line");
    assert.deepEqual(eventFromJson(JSON.parse(text)), ev);
  }
});

Deno.test("a snapshot survives a JSON text round trip", () => {
  const log = new EventLog(null);
  const te = new TextEncoder();
  for (
    const ev of [
      { type: "join", id: "a", node, opaque: bytes },
      { type: "join", id: "b", node: makeNode("10.0.0.8", 7000), opaque: bytes },
      { type: "accept", id: "b", by: "a", opaque: bytes },
      { type: "block", id: "b" },
      { type: "notify", id: "a", msg: te.encode("x") },
      { type: "leave", id: "a" },
    ] satisfies RawEvent[]
  ) log.apply(ev);
  const snap = log.snapshot();
  assert.equal(snap.queue.length, 2, "block and notify (the leave passed the block)");
  assert.deepEqual(snapshotFromJson(JSON.parse(JSON.stringify(snapshotToJson(snap)))), snap);
});

Deno.test("malformed events are rejected with CLUSTER_ERROR", () => {
  const cases: unknown[] = [
    null,
    [],
    { type: "notify" },
    { type: "notify", id: "a", msg: 3 },
    { type: "notify", id: "a", msg: "!!not base64" },
    { type: "join", id: "a", node: "AAAA", opaque: "" },
    { type: "explode", id: "a" },
  ];
  for (const c of cases) {
    assert.throws(
      () => eventFromJson(c),
      (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
      JSON.stringify(c),
    );
  }
});

Deno.test("malformed snapshots are rejected with CLUSTER_ERROR", () => {
  const ok = { seq: 1, members: [], dead: [], queue: [] };
  assert.deepEqual(snapshotFromJson(ok), ok);
  const cases: unknown[] = [
    { ...ok, seq: -1 },
    { ...ok, dead: ["ghost"] },
    { ...ok, queue: [{ seq: 0, ev: { type: "unblock", id: "a", msg: null } }] },
    { ...ok, members: "x" },
  ];
  for (const c of cases) {
    assert.throws(
      () => snapshotFromJson(c),
      (e) => e instanceof SdError && e.result === Res.CLUSTER_ERROR,
      JSON.stringify(c),
    );
  }
});
