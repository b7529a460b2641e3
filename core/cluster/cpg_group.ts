/**
 * The corosync driver's logic, without FFI: turns the stream a CPG group delivers (agreed-order
 * messages and configuration changes, identical on every member) into the cluster event log of
 * event_log.ts, run by a MemberRunner. Pure and synchronous apart from the `send` callback, so it
 * is tested against a simulated CPG (cpg_group_test.ts) as well as a real corosync.
 *
 * ## Items and positions
 * Every member sees the same sequence of items after its own join confchg: deliveries (a raw
 * event or a STATE message) and confchgs. A confchg's left members (reason LEAVE, NODEDOWN or
 * PROCDOWN alike) become LEAVE raw events for their log ids, at that position; so a SIGKILLed
 * sheep leaves at the same point of the order everywhere.
 *
 * ## State transfer
 * CPG has no history: a process that joins the group sees only what comes after its join. The
 * members that hold the log state ("synced") track the group: each entry (nodeid, pid) with the
 * item index of its join (`joinedAt`), whether it is synced, and its log id (learned from its first
 * raw event, normally its JOIN). The first synced member in join order multicasts a STATE message
 * for every unsynced member: the log snapshot and the group table at item index `at`. A joiner
 * buffers every item from its join confchg on; when a STATE names it, it starts from the snapshot
 * and replays the buffered items from index `at` on (the STATE item included). If that sender dies
 * first, the next synced member sends again; later duplicates are ignored.
 *
 * Only synced members post raw events (init() waits for the sync), and every STATE names all the
 * unsynced members its sender knows, so no member younger than an unsynced one can be synced
 * before it. Hence, when every member that was already in the group at a joiner's join confchg has
 * left and no STATE named it, no member of the group holds the state: the joiner (and those that
 * joined in the same confchg) start an empty log at that confchg. The log members of the old state
 * were all synced members, all gone, so the empty log is what the old one would have become.
 *
 * ## Majority rule
 * When a confchg removes corosync nodes (reason NODEDOWN) and fewer than ⌊n/2⌋+1 of the n nodes
 * (distinct nodeids) of the group before it remain, this member is on the minority side of a
 * partition: it is lost at once, before any leave of that confchg is delivered (so the minority
 * makes no new epoch), and leaves the group. onLost: the sheep stops serving I/O and exits; it
 * rejoins when restarted on the healed cluster. Processes that leave or die on a live node never
 * trigger the rule. With two nodes, either side of a split is a minority: both stop.
 *
 * ## Merges
 * A sheep restarted while still cut off starts a log of its own (it then waits for the nodes of
 * its epoch and serves no I/O). When the rings merge, each side's first synced member offers its
 * state to the other side's processes. Every log has an id (the cohort that started it), carried
 * by STATE messages; a synced member named by a STATE of another log compares the two: the log
 * with more live members wins (ties: the smaller id). The losing side is lost (its sheep exits and,
 * restarted, joins the winner); the winning side ignores the offer.
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import type { CpgAddress, CpgEvent } from "./cpg_ffi.ts";
import type { ClusterHandlers } from "./driver.ts";
import { emptySnapshot, type EventLogSnapshot, type MemberId, type RawEvent } from "./event_log.ts";
import { eventFromJson, eventToJson, snapshotFromJson, snapshotToJson } from "./event_codec.ts";
import { MemberRunner, type RunnerOptions } from "./member_runner.ts";

/** confchg reason of a node that went down (cpg_reason_t). */
const REASON_NODEDOWN = 3;

const KIND_EVENT = 1;
const KIND_STATE = 2;

/** One process of the CPG group as the synced members track it. */
export interface GroupEntry {
  nodeid: number;
  pid: number;
  /** Index of the item (its join confchg) that added it. */
  joinedAt: number;
  synced: boolean;
  /** Its log id, once it posted a raw event. */
  id: MemberId | null;
}

/** A STATE message. */
export interface StateMessage {
  /** The log it is a state of (random, made when a group starts an empty log). */
  logId: string;
  /** The unsynced members it is for. */
  targets: { nodeid: number; pid: number; joinedAt: number }[];
  /** The item index the snapshot was taken at (items before it are included). */
  at: number;
  group: GroupEntry[];
  log: EventLogSnapshot;
}

const te = new TextEncoder();
const td = new TextDecoder();

/** Encodes a raw event for the group. */
export function encodeEventMessage(ev: RawEvent): Uint8Array {
  return withKind(KIND_EVENT, eventToJson(ev));
}

/** Encodes a STATE message. */
export function encodeStateMessage(s: StateMessage): Uint8Array {
  return withKind(KIND_STATE, {
    logId: s.logId,
    targets: s.targets.map((t) => [t.nodeid, t.pid, t.joinedAt]),
    at: s.at,
    group: s.group.map((g) => [g.nodeid, g.pid, g.joinedAt, g.synced ? 1 : 0, g.id]),
    log: snapshotToJson(s.log),
  });
}

function withKind(kind: number, json: unknown): Uint8Array {
  const body = te.encode(JSON.stringify(json));
  const out = new Uint8Array(body.length + 1);
  out[0] = kind;
  out.set(body, 1);
  return out;
}

/** A decoded group message; throws SdError(CLUSTER_ERROR) on malformed input. */
export function decodeMessage(
  msg: Uint8Array,
): { kind: "event"; ev: RawEvent } | { kind: "state"; state: StateMessage } {
  const bad = (what: string) => new SdError(Res.CLUSTER_ERROR, `malformed CPG message: ${what}`);
  if (msg.length < 1) throw bad("empty");
  let json: unknown;
  try {
    json = JSON.parse(td.decode(msg.subarray(1)));
  } catch (e) {
    throw new SdError(Res.CLUSTER_ERROR, "malformed CPG message: not JSON", { cause: e });
  }
  if (msg[0] === KIND_EVENT) return { kind: "event", ev: eventFromJson(json) };
  if (msg[0] !== KIND_STATE) throw bad(`unknown kind ${msg[0]}`);
  const o = json as Record<string, unknown>;
  const u32 = (x: unknown) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0) throw bad("not a count");
    return x;
  };
  const list = (x: unknown) => {
    if (!Array.isArray(x)) throw bad("not a list");
    return x as unknown[];
  };
  const targets = list(o?.targets).map((t) => {
    const [nodeid, pid, joinedAt] = list(t).map(u32);
    return { nodeid, pid, joinedAt };
  });
  const group = list(o?.group).map((g) => {
    const [n, p, j, s, id] = list(g);
    if (id !== null && typeof id !== "string") throw bad("member id");
    return { nodeid: u32(n), pid: u32(p), joinedAt: u32(j), synced: s === 1, id };
  });
  if (typeof o.logId !== "string") throw bad("log id");
  return {
    kind: "state",
    state: { logId: o.logId, targets, at: u32(o.at), group, log: snapshotFromJson(o.log) },
  };
}

/** Options of a group member. */
export interface CpgGroupOptions {
  /** This process in the group. */
  self: { nodeid: number; pid: number };
  /** Its log id. */
  me: MemberId;
  handlers: ClusterHandlers;
  /** Multicasts a message in agreed order. */
  send(msg: Uint8Array): Promise<void>;
  /** Deadlines and timers of the member runner. */
  runner?: Omit<RunnerOptions, "me" | "post" | "snapshot">;
  /** Diagnostics (dropped messages, lost STATE sends). */
  warn?(msg: string): void;
}

const key = (a: { nodeid: number; pid: number }) => `${a.nodeid}:${a.pid}`;

/** One process's view of the CPG group, feeding its MemberRunner. */
export class CpgGroupMember {
  readonly #o: CpgGroupOptions;
  #runner: MemberRunner | null = null;
  /** Absolute index of the next item (valid once synced). */
  #pos = 0;
  #group: GroupEntry[] = [];
  /** Items since this member's own join confchg, while unsynced. */
  #buffer: CpgEvent[] | null = null;
  /** Members already in the group at this member's join, still present (while unsynced). */
  #older = new Set<string>();
  /** The processes that joined in the same confchg as this one. */
  #cohort = new Set<string>();
  /** STATE messages this member sent, by target incarnation. */
  #stateSent = new Set<string>();
  #lost = false;
  /** The identity of the log this member holds (valid once synced). */
  #logId = "";
  #syncWaiters: { resolve(): void; reject(e: Error): void }[] = [];

  constructor(opts: CpgGroupOptions) {
    this.#o = opts;
  }

  /** The log runner (once synced). */
  get runner(): MemberRunner | null {
    return this.#runner;
  }

  /** True once this member holds the log state. */
  get synced(): boolean {
    return this.#runner !== null;
  }

  /** True once the member was found lost (minority side, left the group). */
  get lost(): boolean {
    return this.#lost;
  }

  /** The group table (synced members only; for tests). */
  get group(): readonly GroupEntry[] {
    return this.#group;
  }

  /** Resolves once synced; rejects when lost first. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.#lost) return Promise.reject(this.#lostError());
    return new Promise((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
  }

  #lostReason = "";

  #lostError(): SdError {
    return new SdError(Res.CLUSTER_ERROR, `lost the CPG group: ${this.#lostReason}`);
  }

  /** Processes the next item the group delivered. */
  handle(item: CpgEvent): void {
    if (this.#lost) return;
    if (this.#runner === null) {
      this.#handleUnsynced(item);
    } else {
      this.#apply(item);
      this.#sendStates();
    }
  }

  /** The transport is gone (corosync died, dispatch failed): onLost after what was delivered. */
  lose(reason: string): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#lostReason = reason;
    this.#runner?.lose(reason);
    for (const w of this.#syncWaiters.splice(0)) w.reject(this.#lostError());
  }

  #handleUnsynced(item: CpgEvent): void {
    const selfKey = key(this.#o.self);
    if (this.#buffer === null) {
      // Nothing counts before our own join confchg.
      if (item.type !== "confchg" || !item.joined.some((a) => key(a) === selfKey)) return;
      this.#buffer = [item];
      this.#cohort = new Set(item.joined.map(key));
      this.#older = new Set(item.members.map(key).filter((k) => !this.#cohort.has(k)));
      if (this.#older.size === 0) this.#selfSync();
      return;
    }
    this.#buffer.push(item);
    if (item.type === "confchg") {
      if (item.left.some((a) => key(a) === selfKey)) {
        this.lose("this process left the CPG group");
        return;
      }
      for (const a of item.left) this.#older.delete(key(a));
      if (this.#older.size === 0) this.#selfSync();
      return;
    }
    let m;
    try {
      m = decodeMessage(item.msg);
    } catch {
      return; // a malformed message is dropped when replayed, with its warning
    }
    if (m.kind !== "state") return;
    const mine = m.state.targets.find((t) => key(t) === selfKey);
    if (mine === undefined) return;
    this.#startFrom(m.state, mine.joinedAt);
  }

  /**
   * Nobody in the group holds the state: start an empty log at the last buffered item (our join
   * confchg is index 0), with the cohort synced and younger joiners unsynced.
   */
  #selfSync(): void {
    const buf = this.#buffer!;
    const joinedAt = new Map<string, number>();
    buf.forEach((it, i) => {
      if (it.type === "confchg") { for (const a of it.joined) joinedAt.set(key(a), i); }
    });
    const last = buf[buf.length - 1];
    if (last.type !== "confchg") throw new Error("self-sync happens at a confchg");
    const members = [...last.members].sort((a, b) => a.nodeid - b.nodeid || a.pid - b.pid);
    this.#group = members.map((a) => ({
      nodeid: a.nodeid,
      pid: a.pid,
      joinedAt: joinedAt.get(key(a)) ?? 0,
      synced: this.#cohort.has(key(a)),
      id: null,
    }));
    // Group order is join order: the cohort (sorted) first, then younger joiners as they came.
    this.#group.sort((a, b) => a.joinedAt - b.joinedAt || a.nodeid - b.nodeid || a.pid - b.pid);
    this.#pos = buf.length;
    this.#buffer = null;
    // Every member of the cohort names the new log alike, from the cohort (nodeid:pid pairs,
    // unique among the processes alive at the time).
    this.#logId = [...this.#cohort].sort().join(",");
    this.#makeRunner(emptySnapshot());
    this.#sendStates();
  }

  #startFrom(state: StateMessage, joinedAt: number): void {
    const buf = this.#buffer!;
    const from = state.at - joinedAt;
    if (from < 0 || from >= buf.length) {
      this.#o.warn?.(`ignoring a STATE message at ${state.at} for a join at ${joinedAt}`);
      return;
    }
    this.#group = state.group.map((g) => ({ ...g }));
    this.#logId = state.logId;
    this.#pos = state.at;
    this.#buffer = null;
    this.#makeRunner(state.log);
    for (const it of buf.slice(from)) {
      if (this.#lost) return;
      this.#apply(it);
    }
    this.#sendStates();
  }

  #makeRunner(snapshot: EventLogSnapshot): void {
    this.#runner = new MemberRunner(this.#o.handlers, {
      ...this.#o.runner,
      me: this.#o.me,
      snapshot,
      post: (ev) => this.#o.send(encodeEventMessage(ev)),
    });
    for (const w of this.#syncWaiters.splice(0)) w.resolve();
  }

  /** Applies one item to the synced state. */
  #apply(item: CpgEvent): void {
    this.#pos++;
    if (item.type === "confchg") return this.#applyConfchg(item);
    const sender = this.#group.find((g) => g.nodeid === item.nodeid && g.pid === item.pid);
    let m;
    try {
      m = decodeMessage(item.msg);
    } catch (e) {
      this.#o.warn?.(`dropping a message from ${item.nodeid}:${item.pid}: ${String(e)}`);
      return;
    }
    if (m.kind === "state") {
      if (
        m.state.logId !== this.#logId && m.state.targets.some((t) => key(t) === key(this.#o.self))
      ) {
        this.#merged(m.state);
        return;
      }
      for (const t of m.state.targets) {
        const g = this.#group.find((x) => key(x) === key(t) && x.joinedAt === t.joinedAt);
        if (g !== undefined) g.synced = true;
      }
      return;
    }
    if (sender === undefined || !sender.synced) {
      this.#o.warn?.(`dropping an event from ${item.nodeid}:${item.pid}, not a synced member`);
      return;
    }
    const ev = m.ev;
    const poster = ev.type === "accept" || ev.type === "refuse" ? ev.by : ev.id;
    if (sender.id === null) {
      if (this.#group.some((g) => g.id === poster)) {
        this.#o.warn?.(`dropping an event from ${key(sender)}: id ${poster} is taken`);
        return;
      }
      sender.id = poster;
    } else if (sender.id !== poster) {
      this.#o.warn?.(`dropping an event from ${key(sender)} posted as ${poster}`);
      return;
    }
    this.#runner!.feed(ev);
  }

  #applyConfchg(c: Extract<CpgEvent, { type: "confchg" }>): void {
    const selfKey = key(this.#o.self);
    if (c.left.some((a) => key(a) === selfKey)) {
      this.lose("this process left the CPG group");
      return;
    }
    // The majority rule comes first: on the minority side nobody's leave is delivered (the
    // others are most likely alive on the other side), so no new epoch is made here.
    if (c.left.some((a) => a.reason === REASON_NODEDOWN)) {
      const nodesBefore = new Set(this.#group.map((g) => g.nodeid)).size;
      const nodesAfter = new Set(c.members.map((a) => a.nodeid)).size;
      const majority = Math.floor(nodesBefore / 2) + 1;
      if (nodesAfter < majority) {
        this.lose(
          `network partition: this side has ${nodesAfter} of the ${nodesBefore} corosync nodes, ` +
            `fewer than the majority of ${majority}`,
        );
        return;
      }
    }
    for (const a of c.left) {
      const i = this.#group.findIndex((g) => key(g) === key(a));
      if (i < 0) continue;
      const [g] = this.#group.splice(i, 1);
      if (g.id !== null) this.#runner!.feed({ type: "leave", id: g.id });
    }
    for (const a of c.joined) {
      if (this.#group.some((g) => key(g) === key(a))) continue;
      this.#group.push({
        nodeid: a.nodeid,
        pid: a.pid,
        joinedAt: this.#pos - 1,
        synced: false,
        id: null,
      });
    }
  }

  /**
   * A STATE of another log names this (synced) member: two groups that formed apart (a partition,
   * or corosync rings that started apart) have merged, and each side offers its log to the
   * other. The log with more live members wins (ties: the smaller log id); every member applies
   * the same rule to the same two STATE messages, so the members of the losing log leave (onLost:
   * the sheep exits and, restarted, joins the winning cluster) and the others ignore the offer.
   */
  #merged(theirs: StateMessage): void {
    const log = this.#runner!.eventLog;
    const mine = log.members.filter((m) => log.isLiveMember(m.id)).length;
    const dead = new Set(theirs.log.dead);
    const other = theirs.log.members.filter((m) => !dead.has(m.id)).length;
    if (other > mine || (other === mine && theirs.logId < this.#logId)) {
      this.lose(
        `merged with another cluster of ${other} member(s) after a partition; this side ` +
          `(${mine} member(s)) gives way and must rejoin`,
      );
    }
  }

  /** When this member is the first synced one, sends the state to every unsynced member. */
  #sendStates(): void {
    if (this.#lost || this.#runner === null) return;
    const first = this.#group.find((g) => g.synced);
    if (first === undefined || key(first) !== key(this.#o.self)) return;
    const targets = this.#group.filter((g) => !g.synced);
    const incarnation = (g: GroupEntry) => `${key(g)}@${g.joinedAt}`;
    if (targets.every((t) => this.#stateSent.has(incarnation(t)))) return;
    for (const t of targets) this.#stateSent.add(incarnation(t));
    const msg = encodeStateMessage({
      logId: this.#logId,
      targets: targets.map((t) => ({ nodeid: t.nodeid, pid: t.pid, joinedAt: t.joinedAt })),
      at: this.#pos,
      group: this.#group.map((g) => ({ ...g })),
      log: this.#runner.eventLog.snapshot(),
    });
    this.#o.send(msg).catch((e) => {
      // The transport is failing; the loop will see it too. Another member may send instead.
      this.#o.warn?.(`cannot send the group state: ${String(e)}`);
      for (const t of targets) this.#stateSent.delete(incarnation(t));
    });
  }
}

/** The reasons of a confchg list, for logs. */
export function describeAddresses(list: readonly CpgAddress[]): string {
  return list.map((a) => `${a.nodeid}:${a.pid}(${a.reason})`).join(",");
}
