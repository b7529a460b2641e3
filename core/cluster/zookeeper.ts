/**
 * The `zookeeper` cluster driver:
 * `sheep -c zookeeper:HOST:PORT[,HOST:PORT…][/CLUSTER_ID][,timeout=MS]`.
 *
 * Znodes under the base `/sheepdog`, or `/<CLUSTER_ID>` (several clusters share one ensemble):
 * - `member/<id>` — ephemeral, one per member incarnation (random id), created before its JOIN;
 *   its disappearance (session closed or expired) is the member's death.
 * - `queue/e<%010d>` — persistent sequential, one raw cluster event each (JSON
 *   `{"n":NONCE,"p":POSTER,"ev":EVENT}`, event_codec.ts). The sequence is the cluster's total order; every
 *   member reads it in order and feeds the shared event log state machine (event_log.ts) through
 *   a MemberRunner. (ZooKeeper's client library refuses a path ending in "/", hence the "e".)
 * - `queue_pos/<id>` — ephemeral: the last queue entry this member applied.
 * - `snapshot` — persistent: `{"pos":SEQ,"log":SNAPSHOT,"nonces":{…}}`, the log state after
 *   entry SEQ. A member starts from it and reads the entries after it.
 *
 * Master: joins are accepted by the master of the event log (the oldest live member in
 * acceptance order), not by the lowest `master/` sequential znode of v1.0. Both pick the oldest
 * member; the log's rule is derived from the queue itself, so every member agrees on it at every
 * position without a second source of truth that could race with the queue.
 *
 * Deaths: every member watches `member/`; an incarnation the log lists (member or pending
 * joiner) whose znode is gone gets a LEAVE posted by whoever sees it first (the log ignores
 * duplicates).
 *
 * Retries: a create that fails with CONNECTION_LOSS may have happened. Every post carries a
 * per-member nonce and is retried with the same nonce; readers drop an entry whose nonce is not
 * above the last one they applied from that member, so an event is applied once.
 *
 * Bounded queue: the log's master writes a snapshot every ZK_COMPACT_EVERY entries and deletes
 * the entries that every member has applied (the minimum `queue_pos`) and the snapshot covers.
 * A member that finds a gap after the snapshot it read (entries deleted under it) reads the
 * newer snapshot and starts again.
 *
 * Sessions: a ZooKeeper restart or leader change within the session timeout is invisible (the
 * client reconnects to any listed server; requests wait, and in-flight ones are retried as
 * above). A session that expires, or a connection lost for longer than the session timeout,
 * loses the cluster (onLost: the sheep stops serving I/O and exits, and rejoins with a new
 * session when restarted); the others see its member znode disappear and deliver its leave.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { ipv4ToAddr, type SdNode } from "../proto/node.ts";
import { SdError } from "../proto/sd_error.ts";
import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import type { EventLogSnapshot, MemberId, RawEvent } from "./event_log.ts";
import { emptySnapshot } from "./event_log.ts";
import { eventFromJson, eventToJson, snapshotFromJson, snapshotToJson } from "./event_codec.ts";
import { newMemberId } from "./local_liveness.ts";
import { MemberRunner } from "./member_runner.ts";
import { ZkClient, ZkCode, ZkError, ZkMode } from "./zk_client.ts";

/** The session timeout when `timeout=` is not given (v1.0's code default). */
export const ZK_DEFAULT_TIMEOUT_MS = 30_000;
/** Entries between two snapshots. */
export const ZK_COMPACT_EVERY = 200;
/** How often a member reads the queue and the members without a watch firing. */
export const ZK_POLL_MS = 1000;
/** A member's queue_pos is written at most this often. */
const POS_WRITE_MS = 500;
/** A dead member still listed this long after its LEAVE was posted gets another one. */
const REPOST_LEAVE_MS = 2000;
/** Snapshots bigger than this are not written (ZooKeeper's default limit is 1 MiB). */
const MAX_SNAPSHOT_BYTES = 900 * 1024;
/** Nonces of incarnations the log no longer knows are kept for this many entries. */
const NONCE_KEEP_ENTRIES = 10_000;

/** The parsed `-c zookeeper:…` option. */
export interface ZookeeperOptions {
  /** "host:port,host:port" for the client. */
  servers: string;
  /** The base znode: "/sheepdog" or "/<cluster id>". */
  base: string;
  sessionTimeoutMs: number;
  /** Deadline of join(), block() and leave() (defaults in member_runner.ts). */
  joinTimeoutMs?: number;
  blockTimeoutMs?: number;
  leaveTimeoutMs?: number;
  /** How long init() waits for a first connection (default: the session timeout). */
  connectTimeoutMs?: number;
  /** Snapshot period in entries (default ZK_COMPACT_EVERY). */
  compactEvery?: number;
  /** Diagnostics; default none. */
  warn?(msg: string): void;
}

function usage(why: string): SdError {
  return new SdError(
    Res.INVALID_PARMS,
    `invalid zookeeper option: ${why} ` +
      "(expected zookeeper:HOST:PORT[,HOST:PORT...][/CLUSTER_ID][,timeout=MS])",
  );
}

const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ID_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses the text after "zookeeper:": `HOST:PORT[,HOST:PORT…][/CLUSTER_ID][,timeout=MS]`.
 * Pure; throws SdError(INVALID_PARMS) with the reason.
 */
export function parseZookeeperOption(text: string): ZookeeperOptions {
  if (text === "") throw usage("no ZooKeeper server given");
  let rest = text;
  let sessionTimeoutMs = ZK_DEFAULT_TIMEOUT_MS;
  const t = /,timeout=([^,/]*)$/.exec(rest);
  if (t) {
    if (!/^\d+$/.test(t[1]) || Number(t[1]) < 1 || Number(t[1]) > 3_600_000) {
      throw usage(`timeout '${t[1]}' is not a number of milliseconds (1-3600000)`);
    }
    sessionTimeoutMs = Number(t[1]);
    rest = rest.slice(0, t.index);
  } else if (/(^|,)timeout=/.test(rest)) {
    throw usage("timeout= must come last");
  }
  let base = "/sheepdog";
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const id = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (!ID_RE.test(id) || id === "." || id === ".." || id === "zookeeper") {
      throw usage(`cluster id '${id}' must be letters, digits, '_', '-' or '.'`);
    }
    base = `/${id}`;
  }
  const servers = rest.split(",").map((hp) => {
    const i = hp.lastIndexOf(":");
    if (i <= 0) throw usage(`server '${hp}' is not HOST:PORT`);
    const host = hp.slice(0, i);
    const port = hp.slice(i + 1);
    if (!HOST_RE.test(host)) throw usage(`server '${hp}': bad host name`);
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw usage(`server '${hp}': bad port`);
    }
    return `${host}:${Number(port)}`;
  });
  return { servers: servers.join(","), base, sessionTimeoutMs };
}

/** The data of one queue entry. */
interface Entry {
  /** The posting member's nonce. */
  n: number;
  /** The posting member. */
  p: MemberId;
  ev: RawEvent;
}

/** The snapshot znode's content. */
interface ZkSnapshot {
  pos: number;
  log: EventLogSnapshot;
  /** Last applied nonce per poster, and the entry it was in. */
  nonces: Record<string, [number, number]>;
}

const te = new TextEncoder();
const td = new TextDecoder();

function entrySeq(name: string): number {
  const m = /^e(\d{10})$/.exec(name);
  return m ? Number(m[1]) : -1;
}

function encodeSnapshot(s: ZkSnapshot): Uint8Array {
  return te.encode(JSON.stringify({ pos: s.pos, log: snapshotToJson(s.log), nonces: s.nonces }));
}

function decodeSnapshot(data: Uint8Array): ZkSnapshot {
  let o: { pos?: unknown; log?: unknown; nonces?: unknown };
  try {
    o = JSON.parse(td.decode(data));
  } catch (e) {
    throw new SdError(Res.CLUSTER_ERROR, "malformed ZooKeeper snapshot: not JSON", { cause: e });
  }
  if (typeof o.pos !== "number" || !Number.isInteger(o.pos) || o.pos < -1) {
    throw new SdError(Res.CLUSTER_ERROR, "malformed ZooKeeper snapshot: pos");
  }
  const nonces: Record<string, [number, number]> = {};
  if (typeof o.nonces === "object" && o.nonces !== null) {
    for (const [k, v] of Object.entries(o.nonces as Record<string, unknown>)) {
      if (Array.isArray(v) && typeof v[0] === "number" && typeof v[1] === "number") {
        nonces[k] = [v[0], v[1]];
      }
    }
  }
  return { pos: o.pos, log: snapshotFromJson(o.log), nonces };
}

function decodeEntry(data: Uint8Array): Entry {
  let o: { n?: unknown; p?: unknown; ev?: unknown };
  try {
    o = JSON.parse(td.decode(data));
  } catch (e) {
    throw new SdError(Res.CLUSTER_ERROR, "malformed ZooKeeper queue entry: not JSON", {
      cause: e,
    });
  }
  if (typeof o.n !== "number" || !Number.isSafeInteger(o.n)) {
    throw new SdError(Res.CLUSTER_ERROR, "malformed ZooKeeper queue entry: nonce");
  }
  if (typeof o.p !== "string") {
    throw new SdError(Res.CLUSTER_ERROR, "malformed ZooKeeper queue entry: poster");
  }
  return { n: o.n, p: o.p, ev: eventFromJson(o.ev) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The entries a start from `snap` needs were deleted: read the newer snapshot. */
class GapError extends Error {}

/** One sheep's ZooKeeper driver. */
export class ZookeeperDriver implements ClusterDriver {
  readonly name = "zookeeper";
  readonly options: ZookeeperOptions;
  readonly #id = newMemberId();
  #zk: ZkClient | null = null;
  #runner: MemberRunner | null = null;
  #closed = false;
  #broken: string | null = null;
  /** The last queue entry applied. */
  #pos = -1;
  #nonces = new Map<string, [number, number]>();
  #nextNonce = 1;
  #postChain: Promise<void> = Promise.resolve();
  #reading: Promise<void> | null = null;
  #readAgain = false;
  #checkingMembers: Promise<void> | null = null;
  #checkAgain = false;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #lostTimer: ReturnType<typeof setTimeout> | undefined;
  #offSession: (() => void) | null = null;
  #posWritten = -1;
  #posWriting = false;
  #snapshotPos = -1;
  #compacting = false;
  #queueWatch = false;
  #memberWatch = false;
  readonly #reported = new Map<MemberId, number>();

  constructor(options: ZookeeperOptions) {
    this.options = options;
  }

  /** This member's id. */
  get id(): MemberId {
    return this.#id;
  }

  /** The last queue entry applied (for tests). */
  get position(): number {
    return this.#pos;
  }

  /** The client (after init; for tests). */
  get client(): ZkClient | null {
    return this.#zk;
  }

  #path(...parts: string[]): string {
    return [this.options.base, ...parts].join("/");
  }

  /** The first IPv4 address of a non-loopback interface, else 127.0.0.1. */
  localAddr(): Uint8Array {
    try {
      for (const i of Deno.networkInterfaces()) {
        if (i.family === "IPv4" && !i.address.startsWith("127.")) return ipv4ToAddr(i.address);
      }
    } catch {
      // no --allow-sys
    }
    return ipv4ToAddr("127.0.0.1");
  }

  async init(handlers: ClusterHandlers): Promise<void> {
    assert(this.#zk === null && !this.#closed, "init() is called once");
    const o = this.options;
    const zk = new ZkClient(o.servers, o.sessionTimeoutMs);
    this.#zk = zk;
    try {
      await zk.waitConnected(
        o.connectTimeoutMs ?? o.sessionTimeoutMs,
        `zookeeper driver: cannot connect to ZooKeeper at ${o.servers}`,
      );
      for (const dir of ["member", "queue", "queue_pos"]) await zk.mkdirs(this.#path(dir));
      await zk.create(this.#path("queue_pos", this.#id), te.encode("-1"), ZkMode.EPHEMERAL);
      await zk.create(this.#path("member", this.#id), null, ZkMode.EPHEMERAL);
      const snap = await this.#start();
      this.#runner = new MemberRunner(handlers, {
        me: this.#id,
        post: (ev) => this.#post(ev),
        snapshot: snap.log,
        joinTimeoutMs: o.joinTimeoutMs,
        blockTimeoutMs: o.blockTimeoutMs,
        leaveTimeoutMs: o.leaveTimeoutMs,
      });
      for (const ev of snap.tail) this.#runner.feed(ev);
      this.#offSession = zk.onSession((ev) => this.#onSession(ev));
      this.#writePos();
      this.#schedulePoll(0);
    } catch (e) {
      await this.close();
      throw e instanceof SdError ? e : new SdError(
        Res.CLUSTER_ERROR,
        `zookeeper driver: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  }

  /**
   * Reads the snapshot and the entries after it, and returns the log state to start from and the
   * events to feed after it. Entries after a snapshot are only deleted once a newer snapshot was
   * written: when the snapshot changed while we read (or an entry vanished), start again.
   */
  async #start(): Promise<{ log: EventLogSnapshot; tail: RawEvent[] }> {
    const zk = this.#zk!;
    const path = this.#path("snapshot");
    const read = async (): Promise<{ snap: ZkSnapshot; version: number }> => {
      try {
        const d = await zk.getData(path);
        return { snap: decodeSnapshot(d.data), version: d.version };
      } catch (e) {
        if (!(e instanceof ZkError && e.code === ZkCode.NO_NODE)) throw e;
        return { snap: { pos: -1, log: emptySnapshot(), nonces: {} }, version: -1 };
      }
    };
    for (let attempt = 0;; attempt++) {
      const { snap, version } = await read();
      this.#pos = snap.pos;
      this.#snapshotPos = snap.pos;
      this.#nonces = new Map(Object.entries(snap.nonces));
      let entries: { seq: number; entry: Entry }[] | null;
      try {
        entries = await this.#fetch();
      } catch (e) {
        if (!(e instanceof GapError)) throw e;
        entries = null;
      }
      if (entries !== null && (await read()).version === version) {
        return { log: snap.log, tail: entries.flatMap((x) => this.#accept(x.seq, x.entry)) };
      }
      if (attempt >= 50) {
        throw new SdError(Res.CLUSTER_ERROR, "the event queue keeps changing under a new member");
      }
    }
  }

  /**
   * The entries after #pos, in order (sequence numbers have holes: ZooKeeper numbers children by
   * the parent's change count). An entry that vanished before we read it is a GapError.
   */
  async #fetch(): Promise<{ seq: number; entry: Entry }[]> {
    const zk = this.#zk!;
    // The flag is set before the call: the watch may fire (and clear it) before our await
    // resumes. A failed call registers no watch.
    const arm = !this.#queueWatch;
    if (arm) this.#queueWatch = true;
    let names: string[];
    try {
      names = await zk.getChildren(
        this.#path("queue"),
        arm
          ? () => {
            this.#queueWatch = false;
            this.#wake();
          }
          : undefined,
      );
    } catch (e) {
      if (arm) this.#queueWatch = false;
      throw e;
    }
    const seqs = names.map(entrySeq).filter((s) => s > this.#pos).sort((a, b) => a - b);
    const datas = await Promise.all(
      seqs.map((s) =>
        zk.getData(this.#path("queue", `e${String(s).padStart(10, "0")}`)).then(
          (d) => d.data,
          (e) => {
            if (e instanceof ZkError && e.code === ZkCode.NO_NODE) return null;
            throw e;
          },
        )
      ),
    );
    const out: { seq: number; entry: Entry }[] = [];
    for (const [i, seq] of seqs.entries()) {
      const data = datas[i];
      if (data === null) throw new GapError();
      let entry: Entry;
      try {
        entry = decodeEntry(data);
      } catch (e) {
        this.options.warn?.(`skipping queue entry ${seq}: ${String(e)}`);
        entry = { n: -1, p: "", ev: { type: "leave", id: "" } };
      }
      out.push({ seq, entry });
    }
    return out;
  }

  /** Advances #pos over `seq` and returns its event unless it is a duplicate (or malformed). */
  #accept(seq: number, entry: Entry): RawEvent[] {
    this.#pos = seq;
    if (entry.n < 0) return [];
    const last = this.#nonces.get(entry.p);
    if (last !== undefined && entry.n <= last[0]) return [];
    this.#nonces.set(entry.p, [entry.n, seq]);
    return [entry.ev];
  }

  async join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    return await this.#live("join").join(myself, opaque);
  }

  async leave(): Promise<void> {
    return await this.#live("leave").leave();
  }

  async notify(msg: Uint8Array): Promise<void> {
    return await this.#live("notify").notify(msg);
  }

  async block(): Promise<void> {
    return await this.#live("block").block();
  }

  async unblock(msg: Uint8Array): Promise<void> {
    return await this.#live("unblock").unblock(msg);
  }

  async updateNode(node: SdNode): Promise<void> {
    return await this.#live("updateNode").updateNode(node);
  }

  /** Leaves the cluster if still in it, then closes the session (its znodes go away). */
  async close(): Promise<void> {
    if (this.#closed) return;
    const r = this.#runner;
    try {
      if (r !== null && this.#broken === null && (r.phase === "member" || r.phase === "joining")) {
        await r.leave();
      }
    } finally {
      this.#closed = true;
      clearTimeout(this.#pollTimer);
      clearTimeout(this.#lostTimer);
      this.#offSession?.();
      await this.#reading?.catch(() => {});
      await this.#checkingMembers?.catch(() => {});
      r?.stop("driver closed");
      await this.#postChain.catch(() => {});
      await this.#zk?.close();
    }
  }

  #live(op: string): MemberRunner {
    assert(this.#runner !== null, "init() first");
    if (this.#broken !== null || this.#closed) {
      throw new SdError(
        Res.CLUSTER_ERROR,
        `${op}(): the zookeeper driver lost the cluster: ${this.#broken ?? "closed"}`,
      );
    }
    return this.#runner;
  }

  #active(): boolean {
    return !this.#closed && this.#broken === null;
  }

  /** This member cannot follow the cluster any more. */
  #fail(reason: string): void {
    if (!this.#active()) return;
    this.#broken = reason;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#lostTimer);
    this.options.warn?.(`zookeeper driver: ${reason}`);
    this.#runner?.lose(reason);
  }

  #onSession(ev: string): void {
    if (ev === "expired") {
      this.#fail("the ZooKeeper session expired");
    } else if (ev === "disconnected") {
      // The client reconnects by itself; if it cannot within the session timeout, the session
      // is gone for the others already (our member znode is deleted): stop before we find out.
      clearTimeout(this.#lostTimer);
      const ms = this.#zk!.sessionTimeoutMs;
      this.#lostTimer = setTimeout(
        () => this.#fail(`no connection to ZooKeeper for the session timeout (${ms} ms)`),
        ms,
      );
    } else if (ev === "connected") {
      clearTimeout(this.#lostTimer);
      this.#wake();
    }
  }

  /**
   * Appends `ev` to the queue. Posts of this member are serialized; a create whose outcome is
   * unknown (connection lost) is retried with the same nonce (readers drop the duplicate).
   */
  #post(ev: RawEvent): Promise<void> {
    const run = this.#postChain.then(() => this.#postNow(ev));
    this.#postChain = run.catch(() => {});
    return run;
  }

  async #postNow(ev: RawEvent): Promise<void> {
    const data = te.encode(
      JSON.stringify({ n: this.#nextNonce++, p: this.#id, ev: eventToJson(ev) }),
    );
    const path = this.#path("queue", "e");
    let pause = 20;
    for (;;) {
      if (this.#closed) throw new SdError(Res.CLUSTER_ERROR, "zookeeper driver closed");
      if (this.#broken !== null) {
        throw new SdError(Res.CLUSTER_ERROR, `zookeeper driver: ${this.#broken}`);
      }
      try {
        await this.#zk!.create(path, data, ZkMode.PERSISTENT_SEQUENTIAL);
        this.#wake();
        return;
      } catch (e) {
        if (!(e instanceof ZkError && e.code === ZkCode.CONNECTION_LOSS)) {
          throw new SdError(
            Res.CLUSTER_ERROR,
            `zookeeper driver: ${e instanceof Error ? e.message : e}`,
            {
              cause: e,
            },
          );
        }
        // Requests wait while the client reconnects; a short pause avoids a tight loop.
        await sleep(pause);
        pause = Math.min(pause * 2, 500);
      }
    }
  }

  #schedulePoll(delay = ZK_POLL_MS): void {
    clearTimeout(this.#pollTimer);
    if (!this.#active()) return;
    this.#pollTimer = setTimeout(() => {
      this.#wake();
      this.#checkMembers();
    }, delay);
  }

  /** Reads the queue now (or right after the read in progress). */
  #wake(): void {
    if (!this.#active() || this.#runner === null) return;
    if (this.#reading !== null) {
      this.#readAgain = true;
      return;
    }
    this.#reading = this.#read()
      .catch((e) => this.#readFailed(e))
      .finally(() => {
        this.#reading = null;
        if (this.#readAgain) {
          this.#readAgain = false;
          this.#wake();
        } else {
          this.#schedulePoll();
        }
      });
  }

  #readFailed(e: unknown): void {
    if (e instanceof ZkError && (e.code === ZkCode.CONNECTION_LOSS)) return; // retried later
    if (e instanceof ZkError && e.code === ZkCode.SESSION_EXPIRED) {
      this.#fail("the ZooKeeper session expired");
      return;
    }
    this.#fail(`cannot read the event queue: ${e instanceof Error ? e.message : String(e)}`);
  }

  async #read(): Promise<void> {
    let entries;
    try {
      entries = await this.#fetch();
    } catch (e) {
      if (!(e instanceof GapError)) throw e;
      throw new SdError(
        Res.CLUSTER_ERROR,
        "a queue entry was deleted before this member applied it",
      );
    }
    if (!this.#active()) return;
    let joins = false;
    for (const { seq, entry } of entries) {
      for (const ev of this.#accept(seq, entry)) {
        if (ev.type === "join") joins = true;
        this.#runner!.feed(ev);
      }
    }
    if (entries.length > 0) {
      this.#writePos();
      this.#maybeCompact();
    }
    if (joins) this.#checkMembers();
  }

  /** Publishes this member's position (at most every POS_WRITE_MS). */
  #writePos(): void {
    if (this.#posWriting || this.#pos === this.#posWritten || !this.#active()) return;
    this.#posWriting = true;
    const pos = this.#pos;
    this.#zk!.setData(this.#path("queue_pos", this.#id), te.encode(String(pos)))
      .then(() => this.#posWritten = pos, () => {})
      .then(() => sleep(POS_WRITE_MS))
      .finally(() => {
        this.#posWriting = false;
        if (this.#pos !== this.#posWritten) this.#writePos();
      });
  }

  /**
   * Finds members whose znode is gone and posts their LEAVE (each at most every
   * REPOST_LEAVE_MS). Listing after the entries were read means a JOIN's member znode, created
   * before the JOIN, is visible.
   */
  #checkMembers(): void {
    if (!this.#active() || this.#runner === null) return;
    if (this.#checkingMembers !== null) {
      this.#checkAgain = true;
      return;
    }
    this.#checkingMembers = (async () => {
      const arm = !this.#memberWatch;
      if (arm) this.#memberWatch = true;
      let names: string[];
      try {
        names = await this.#zk!.getChildren(
          this.#path("member"),
          arm
            ? () => {
              this.#memberWatch = false;
              this.#checkMembers();
            }
            : undefined,
        );
      } catch (e) {
        if (arm) this.#memberWatch = false;
        throw e;
      }
      const live = new Set(names);
      const listed = this.#runner!.eventLog.watchList();
      for (const id of listed) {
        if (live.has(id) || !this.#active()) continue;
        const last = this.#reported.get(id);
        if (last !== undefined && Date.now() - last < REPOST_LEAVE_MS) continue;
        this.#reported.set(id, Date.now());
        await this.#post({ type: "leave", id });
      }
      for (const id of this.#reported.keys()) if (!listed.includes(id)) this.#reported.delete(id);
    })().catch((e) => {
      if (!(e instanceof ZkError && e.code === ZkCode.CONNECTION_LOSS)) this.#readFailed(e);
    }).finally(() => {
      this.#checkingMembers = null;
      if (this.#checkAgain) {
        this.#checkAgain = false;
        this.#checkMembers();
      }
    });
  }

  /**
   * On the log's master: every `compactEvery` entries, writes a snapshot at #pos and deletes the
   * entries that the snapshot covers and every member has applied.
   */
  #maybeCompact(): void {
    const every = this.options.compactEvery ?? ZK_COMPACT_EVERY;
    if (this.#compacting || this.#pos - this.#snapshotPos < every) return;
    const log = this.#runner!.eventLog;
    if (log.master?.id !== this.#id) return;
    this.#compacting = true;
    const live = new Set(log.watchList());
    for (const [id, [, seq]] of this.#nonces) {
      if (id !== this.#id && !live.has(id) && this.#pos - seq > NONCE_KEEP_ENTRIES) {
        this.#nonces.delete(id);
      }
    }
    const snap: ZkSnapshot = {
      pos: this.#pos,
      log: log.snapshot(),
      nonces: Object.fromEntries(this.#nonces),
    };
    this.#compact(snap)
      .catch((e) => this.options.warn?.(`compaction failed: ${String(e)}`))
      .finally(() => this.#compacting = false);
  }

  async #compact(snap: ZkSnapshot): Promise<void> {
    const zk = this.#zk!;
    const data = encodeSnapshot(snap);
    if (data.length > MAX_SNAPSHOT_BYTES) {
      this.options.warn?.(`snapshot of ${data.length} bytes is too big for ZooKeeper; not written`);
      return;
    }
    // Only ever move the snapshot forward.
    const path = this.#path("snapshot");
    try {
      const cur = await zk.getData(path);
      const curPos = decodeSnapshot(cur.data).pos;
      if (curPos >= snap.pos) {
        this.#snapshotPos = curPos;
        return;
      }
      await zk.setData(path, data, cur.version);
    } catch (e) {
      if (!(e instanceof ZkError && e.code === ZkCode.NO_NODE)) throw e;
      await zk.create(path, data, ZkMode.PERSISTENT);
    }
    this.#snapshotPos = snap.pos;
    // Delete what every member has applied and the snapshot covers.
    let upTo = snap.pos;
    for (const id of await zk.getChildren(this.#path("queue_pos"))) {
      try {
        const p = Number(td.decode((await zk.getData(this.#path("queue_pos", id))).data));
        if (Number.isInteger(p)) upTo = Math.min(upTo, p);
      } catch (e) {
        if (!(e instanceof ZkError && e.code === ZkCode.NO_NODE)) throw e;
      }
    }
    const names = await zk.getChildren(this.#path("queue"));
    const old = names.filter((n) => {
      const s = entrySeq(n);
      return s >= 0 && s <= upTo;
    });
    for (const n of old) {
      if (!this.#active()) return;
      await zk.remove(this.#path("queue", n)).catch((e) => {
        if (!(e instanceof ZkError && e.code === ZkCode.NO_NODE)) throw e;
      });
    }
  }
}
