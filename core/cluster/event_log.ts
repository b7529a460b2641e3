/**
 * The cluster event log: a pure, deterministic state machine that every member feeds with the
 * same totally ordered sequence of raw driver events and that tells it which handler calls to make
 * and which actions to take. Transports only have to agree on an order (a file under a lock, a
 * ZooKeeper sequential queue, corosync's agreed order, the memory hub); the rules live here.
 *
 * Rules, in log order:
 * - JOIN(id) is queued. When it reaches the head of the queue and the cluster is empty, the joiner
 *   is accepted with its own payload and no check. Otherwise delivery stalls there until the
 *   master (the oldest member not known to be dead) posts ACCEPT or REFUSE for it; decisions from
 *   anyone else are ignored. A JOIN for a node whose address:port belongs to a live member or a
 *   pending joiner with another id first removes that older incarnation (as if it had left).
 * - LEAVE(id) of a member marks it dead at once (it can no longer be master, hold the block or
 *   send) and queues the onLeave, so it is delivered in log order. LEAVE of a pending joiner
 *   withdraws its join. Duplicate LEAVEs are ignored, so any number of watchers may post them.
 * - BLOCK(id) stalls delivery when it reaches the head: the sender holds the exclusive section
 *   until its UNBLOCK (whose message, if any, is delivered as a notify) or its death. Leaves are
 *   the one exception: a leave queued behind a held block is delivered at once (every member
 *   reads the same log, so they all move it forward alike). The holder's work may need the new
 *   epoch: a replica that died must leave before the work's I/O can go to its successors, and a
 *   block that held the leave back would make that work fail instead (issue: cluster ops failing
 *   with a network error while a node dies).
 * - NOTIFY and UPDATE_NODE are queued and delivered in order; events from senders that are not
 *   live members when read are dropped.
 * - If a join stalls while every member is dead, their leaves are delivered at once so that the
 *   joiner becomes the first member of an empty cluster (nobody else could ever answer).
 *
 * Delivered member lists are in acceptance order; the master is the first live one.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { nodeAddrString, sameNode, type SdNode } from "../proto/node.ts";

/** A transport-given identity of one member incarnation (never reused, never a pid). */
export type MemberId = string;

/** A raw event as posted to the totally ordered log by some member. */
export type RawEvent =
  | { type: "join"; id: MemberId; node: SdNode; opaque: Uint8Array }
  | { type: "accept"; id: MemberId; by: MemberId; opaque: Uint8Array }
  | { type: "refuse"; id: MemberId; by: MemberId; reason: string }
  | { type: "leave"; id: MemberId }
  | { type: "notify"; id: MemberId; msg: Uint8Array }
  | { type: "block"; id: MemberId }
  /** `msg` null releases the block without delivering anything (a cancelled block). */
  | { type: "unblock"; id: MemberId; msg: Uint8Array | null }
  | { type: "update_node"; id: MemberId; node: SdNode };

/** Raw events that wait in the delivery queue. */
export type QueuedEvent = Extract<
  RawEvent,
  { type: "join" | "leave" | "notify" | "block" | "update_node" }
>;

/** One queued event and its position in the log. */
export interface QueueItem {
  seq: number;
  ev: QueuedEvent;
}

/** A member as the log knows it. */
export interface Member {
  id: MemberId;
  node: SdNode;
}

/** The whole shared state after `seq` events: enough to resume without the earlier log. */
export interface EventLogSnapshot {
  /** Number of raw events applied so far. */
  seq: number;
  /** Delivered members in acceptance order. */
  members: Member[];
  /** Members whose LEAVE was read but not delivered yet. */
  dead: MemberId[];
  /** Events read but not delivered yet; the head may be a stalled join or a held block. */
  queue: QueueItem[];
}

/** What the machine tells its member to do, in order. */
export type Output =
  /** Deliver onAccept. */
  | { type: "accept"; joined: SdNode; members: SdNode[]; opaque: Uint8Array }
  /** Deliver onLeave. */
  | { type: "leave"; left: SdNode; members: SdNode[] }
  /** Deliver onNotify (a notify or an unblock message). */
  | { type: "notify"; sender: SdNode; msg: Uint8Array }
  /** Deliver onUpdateNode. */
  | { type: "update_node"; node: SdNode; members: SdNode[] }
  /** This member's own accept was just delivered: join() may resolve. */
  | { type: "joined" }
  /** This member's join was refused or withdrawn. */
  | { type: "join_failed"; reason: string }
  /** This member is the master: run onJoinCheck and post ACCEPT or REFUSE for `joiner`. */
  | { type: "check"; joiner: MemberId; joining: SdNode; members: SdNode[]; opaque: Uint8Array }
  /** This member now holds the block it asked for. */
  | { type: "block_granted" }
  /** This member is no longer part of the cluster (its LEAVE was read); nothing follows. */
  | { type: "removed"; reason: string };

/** An empty cluster's state. */
export function emptySnapshot(): EventLogSnapshot {
  return { seq: 0, members: [], dead: [], queue: [] };
}

/** The deterministic event log state machine of one member (or of an observer). */
export class EventLog {
  /** The member this machine acts for; null for an observer that delivers everything. */
  readonly me: MemberId | null;
  #seq: number;
  #members: Member[];
  #dead: Set<MemberId>;
  #queue: QueueItem[];
  #removed = false;
  #checkIssued: { seq: number; master: MemberId } | null = null;
  #grantedSeq = -1;
  #out: Output[] = [];

  constructor(me: MemberId | null, snapshot: EventLogSnapshot = emptySnapshot()) {
    this.me = me;
    this.#seq = snapshot.seq;
    this.#members = snapshot.members.map((m) => ({ ...m }));
    this.#dead = new Set(snapshot.dead);
    this.#queue = snapshot.queue.map((q) => ({ ...q }));
    for (const id of this.#dead) {
      assert(this.#members.some((m) => m.id === id), "a dead member must be a member");
    }
    if (me !== null) {
      assert(!this.#isKnown(me), "a fresh member must not appear in the snapshot");
    }
  }

  /** Number of raw events applied so far (the log position). */
  get seq(): number {
    return this.#seq;
  }

  /** Delivered members in acceptance order (dead ones included until their leave is delivered). */
  get members(): readonly Member[] {
    return this.#members;
  }

  /** The member that answers joins: the oldest one not known to be dead. */
  get master(): Member | undefined {
    return this.#members.find((m) => !this.#dead.has(m.id));
  }

  /** The current block holder, if a block is held. */
  get blockHolder(): MemberId | null {
    const head = this.#queue[0];
    return head?.ev.type === "block" ? head.ev.id : null;
  }

  /** The joiner whose join is stalled at the head, waiting for the master. */
  get pendingJoin(): MemberId | null {
    const head = this.#queue[0];
    return head?.ev.type === "join" ? head.ev.id : null;
  }

  /** True once this machine's member left, was removed, or failed to join. */
  get removed(): boolean {
    return this.#removed;
  }

  /** True when `id` is a member whose leave has not been read. */
  isLiveMember(id: MemberId): boolean {
    return !this.#dead.has(id) && this.#members.some((m) => m.id === id);
  }

  /**
   * Every incarnation whose death the transport should watch for: live members and queued
   * joiners (other than this machine's own member).
   */
  watchList(): MemberId[] {
    const ids = this.#members.filter((m) => !this.#dead.has(m.id)).map((m) => m.id);
    for (const q of this.#queue) if (q.ev.type === "join") ids.push(q.ev.id);
    return ids.filter((id) => id !== this.me);
  }

  /** The shared state, for compaction or for a member that starts reading here. */
  snapshot(): EventLogSnapshot {
    return {
      seq: this.#seq,
      members: this.#members.map((m) => ({ ...m })),
      dead: [...this.#dead],
      queue: this.#queue.map((q) => ({ ...q })),
    };
  }

  /** Applies the next raw event of the log and returns what this member must do, in order. */
  apply(ev: RawEvent): Output[] {
    const seq = this.#seq++;
    switch (ev.type) {
      case "join":
        this.#readJoin(ev, seq);
        break;
      case "accept":
      case "refuse":
        this.#readDecision(ev);
        break;
      case "leave":
        this.#readLeave(ev.id, "a leave was posted for it (it left or was found dead)", seq);
        break;
      case "unblock": {
        const head = this.#queue[0];
        if (head?.ev.type === "block" && head.ev.id === ev.id && this.isLiveMember(ev.id)) {
          this.#queue.shift();
          if (ev.msg !== null) {
            this.#deliver({ type: "notify", sender: this.#node(ev.id), msg: ev.msg });
          }
        }
        break;
      }
      case "notify":
      case "block":
      case "update_node":
        if (this.isLiveMember(ev.id)) this.#queue.push({ seq, ev });
        break;
    }
    this.#drain();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #readJoin(ev: Extract<RawEvent, { type: "join" }>, seq: number): void {
    if (this.#isKnown(ev.id)) return;
    const older = [
      ...this.#members.filter((m) => !this.#dead.has(m.id)),
      ...this.#queue.flatMap((q) => q.ev.type === "join" ? [{ id: q.ev.id, node: q.ev.node }] : []),
    ].filter((m) => sameNode(m.node, ev.node));
    for (const m of older) {
      this.#readLeave(m.id, `replaced by a new incarnation of ${nodeAddrString(ev.node)}`, seq);
    }
    this.#queue.push({ seq, ev });
  }

  #readDecision(ev: Extract<RawEvent, { type: "accept" | "refuse" }>): void {
    const head = this.#queue[0];
    if (head?.ev.type !== "join" || head.ev.id !== ev.id) return;
    if (this.master?.id !== ev.by) return;
    this.#queue.shift();
    if (ev.type === "accept") {
      this.#admit(head.ev, ev.opaque);
    } else if (ev.id === this.me) {
      this.#removed = true;
      this.#out.push({ type: "join_failed", reason: ev.reason });
    }
  }

  #readLeave(id: MemberId, reason: string, seq: number): void {
    if (this.isLiveMember(id)) {
      this.#dead.add(id);
      this.#queue.push({ seq, ev: { type: "leave", id } });
      if (id === this.me && !this.#removed) {
        this.#removed = true;
        this.#out.push({ type: "removed", reason });
      }
      return;
    }
    const i = this.#queue.findIndex((q) => q.ev.type === "join" && q.ev.id === id);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    if (id === this.me && !this.#removed) {
      this.#removed = true;
      this.#out.push({ type: "join_failed", reason: `join withdrawn: ${reason}` });
    }
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const { seq, ev } = this.#queue[0];
      switch (ev.type) {
        case "join": {
          if (this.#members.length > 0 && this.master === undefined) this.#flushDead();
          if (this.#members.length === 0) {
            this.#queue.shift();
            this.#admit(ev, ev.opaque);
            continue;
          }
          const master = this.master;
          assert(master !== undefined, "a non-empty cluster without dead members has a master");
          const issued = this.#checkIssued;
          if (master.id === this.me && (issued?.seq !== seq || issued.master !== master.id)) {
            this.#checkIssued = { seq, master: master.id };
            this.#out.push({
              type: "check",
              joiner: ev.id,
              joining: ev.node,
              members: this.#nodes(),
              opaque: ev.opaque,
            });
          }
          return;
        }
        case "block": {
          if (!this.isLiveMember(ev.id)) {
            this.#queue.shift();
            continue;
          }
          if (ev.id === this.me && this.#grantedSeq !== seq) {
            this.#grantedSeq = seq;
            this.#out.push({ type: "block_granted" });
          }
          this.#deliverLeavesPastBlock();
          return;
        }
        case "leave": {
          this.#queue.shift();
          this.#deliverLeave(ev.id);
          continue;
        }
        case "notify": {
          this.#queue.shift();
          const m = this.#members.find((m) => m.id === ev.id);
          if (m) this.#deliver({ type: "notify", sender: m.node, msg: ev.msg });
          continue;
        }
        case "update_node": {
          this.#queue.shift();
          const i = this.#members.findIndex((m) => m.id === ev.id);
          if (i < 0 || !sameNode(this.#members[i].node, ev.node)) continue;
          this.#members[i] = { id: ev.id, node: ev.node };
          this.#deliver({ type: "update_node", node: ev.node, members: this.#nodes() });
          continue;
        }
      }
    }
  }

  /** Delivers the leaves queued behind the held block at the head, in log order. */
  #deliverLeavesPastBlock(): void {
    for (let i = 1; i < this.#queue.length;) {
      const ev = this.#queue[i].ev;
      if (ev.type !== "leave") {
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      this.#deliverLeave(ev.id);
    }
  }

  #deliverLeave(id: MemberId): void {
    const i = this.#members.findIndex((m) => m.id === id);
    if (i < 0) return;
    const [left] = this.#members.splice(i, 1);
    this.#dead.delete(id);
    this.#deliver({ type: "leave", left: left.node, members: this.#nodes() }, left.id);
  }

  /** Delivers the leaves of every member (all dead) so that a stalled joiner can be accepted. */
  #flushDead(): void {
    while (this.#members.length > 0) {
      const left = this.#members.shift()!;
      assert(this.#dead.has(left.id), "only dead members are flushed");
      this.#dead.delete(left.id);
      this.#deliver({ type: "leave", left: left.node, members: this.#nodes() }, left.id);
    }
  }

  #admit(ev: Extract<RawEvent, { type: "join" }>, opaque: Uint8Array): void {
    this.#members.push({ id: ev.id, node: ev.node });
    this.#deliver({ type: "accept", joined: ev.node, members: this.#nodes(), opaque });
    if (ev.id === this.me) this.#out.push({ type: "joined" });
  }

  /** Queues a handler call when this machine's member is a member (or for an observer). */
  #deliver(o: Output, leaving?: MemberId): void {
    if (this.me !== null) {
      if (this.#removed || leaving === this.me) return;
      if (!this.#members.some((m) => m.id === this.me)) return;
    }
    this.#out.push(o);
  }

  #isKnown(id: MemberId): boolean {
    return this.#members.some((m) => m.id === id) ||
      this.#queue.some((q) => q.ev.type === "join" && q.ev.id === id);
  }

  #node(id: MemberId): SdNode {
    const m = this.#members.find((m) => m.id === id);
    assert(m !== undefined, `unknown member ${id}`);
    return m.node;
  }

  #nodes(): SdNode[] {
    return this.#members.map((m) => m.node);
  }
}
