/**
 * JSON form of raw cluster events and event log snapshots, for transports that store events as
 * text (the local driver's log file; usable as ZooKeeper znode data). Bytes are base64, nodes are
 * their 80-byte sd_node encoding in base64. Decoding validates everything and throws
 * SdError(CLUSTER_ERROR) on malformed input, since it comes from a shared file or the network.
 *
 * @module
 */

import { Res, SD_NODE_SIZE } from "../proto/constants.ts";
import { decodeNode, encodeNode, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import type { EventLogSnapshot, Member, QueuedEvent, QueueItem, RawEvent } from "./event_log.ts";

/** A JSON value as produced by JSON.parse. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const b64 = (b: Uint8Array): string => b.toBase64();
const node64 = (n: SdNode): string => b64(encodeNode(n));

/** The JSON form of a raw event. */
export function eventToJson(ev: RawEvent): { [k: string]: Json } {
  switch (ev.type) {
    case "join":
      return { type: ev.type, id: ev.id, node: node64(ev.node), opaque: b64(ev.opaque) };
    case "accept":
      return { type: ev.type, id: ev.id, by: ev.by, opaque: b64(ev.opaque) };
    case "refuse":
      return { type: ev.type, id: ev.id, by: ev.by, reason: ev.reason };
    case "leave":
    case "block":
      return { type: ev.type, id: ev.id };
    case "notify":
      return { type: ev.type, id: ev.id, msg: b64(ev.msg) };
    case "unblock":
      return { type: ev.type, id: ev.id, msg: ev.msg === null ? null : b64(ev.msg) };
    case "update_node":
      return { type: ev.type, id: ev.id, node: node64(ev.node) };
  }
}

function bad(what: string): SdError {
  return new SdError(Res.CLUSTER_ERROR, `malformed cluster event: ${what}`);
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) {
    throw bad(`${what} is not an object`);
  }
  return x as Record<string, unknown>;
}

function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== "string") throw bad(`'${k}' is not a string`);
  return v;
}

function bytes(o: Record<string, unknown>, k: string): Uint8Array {
  const s = str(o, k);
  try {
    return Uint8Array.fromBase64(s);
  } catch (e) {
    throw new SdError(Res.CLUSTER_ERROR, `malformed cluster event: '${k}' is not base64`, {
      cause: e,
    });
  }
}

function node(o: Record<string, unknown>, k: string): SdNode {
  const b = bytes(o, k);
  if (b.length !== SD_NODE_SIZE) throw bad(`'${k}' is ${b.length} bytes, not ${SD_NODE_SIZE}`);
  return decodeNode(b);
}

/** Decodes and validates the JSON form of a raw event. */
export function eventFromJson(x: unknown): RawEvent {
  const o = obj(x, "event");
  const type = str(o, "type");
  const id = str(o, "id");
  switch (type) {
    case "join":
      return { type, id, node: node(o, "node"), opaque: bytes(o, "opaque") };
    case "accept":
      return { type, id, by: str(o, "by"), opaque: bytes(o, "opaque") };
    case "refuse":
      return { type, id, by: str(o, "by"), reason: str(o, "reason") };
    case "leave":
    case "block":
      return { type, id };
    case "notify":
      return { type, id, msg: bytes(o, "msg") };
    case "unblock":
      return { type, id, msg: o.msg === null ? null : bytes(o, "msg") };
    case "update_node":
      return { type, id, node: node(o, "node") };
    default:
      throw bad(`unknown type '${type}'`);
  }
}

const QUEUED = new Set(["join", "leave", "notify", "block", "update_node"]);

/** The JSON form of a snapshot. */
export function snapshotToJson(s: EventLogSnapshot): { [k: string]: Json } {
  return {
    seq: s.seq,
    members: s.members.map((m) => ({ id: m.id, node: node64(m.node) })),
    dead: [...s.dead],
    queue: s.queue.map((q) => ({ seq: q.seq, ev: eventToJson(q.ev) })),
  };
}

function arr(o: Record<string, unknown>, k: string): unknown[] {
  const v = o[k];
  if (!Array.isArray(v)) throw bad(`'${k}' is not an array`);
  return v;
}

function int(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw bad(`'${k}' is not a count`);
  }
  return v;
}

/** Decodes and validates the JSON form of a snapshot. */
export function snapshotFromJson(x: unknown): EventLogSnapshot {
  const o = obj(x, "snapshot");
  const members: Member[] = arr(o, "members").map((m) => {
    const mo = obj(m, "member");
    return { id: str(mo, "id"), node: node(mo, "node") };
  });
  const dead = arr(o, "dead").map((d) => {
    if (typeof d !== "string") throw bad("a dead member id is not a string");
    if (!members.some((m) => m.id === d)) throw bad(`dead member '${d}' is not a member`);
    return d;
  });
  const queue: QueueItem[] = arr(o, "queue").map((q) => {
    const qo = obj(q, "queue item");
    const ev = eventFromJson(qo.ev);
    if (!QUEUED.has(ev.type)) throw bad(`a '${ev.type}' event cannot be queued`);
    return { seq: int(qo, "seq"), ev: ev as QueuedEvent };
  });
  return { seq: int(o, "seq"), members, dead, queue };
}
