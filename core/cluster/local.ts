/**
 * The `local` cluster driver (`sheep -c local[:PATH]`): several sheep processes on one host.
 *
 * Files (PATH defaults to /tmp/sheepdog_local; give each cluster its own):
 * - `PATH`: the shared event log (see local_log.ts): appended under a flock, read by everyone;
 *   its order is the cluster's total order, fed to the event log state machine.
 * - `PATH.lock`: the flock file. The kernel drops a dead holder's lock.
 * - `PATH.d/<id>.sock`: one listening UNIX socket per member; `id` is random per process.
 *
 * Each member reads the log when inotify (Deno.watchFs on the log file) reports a change, and at
 * the latest every `pollMs` (every FALLBACK_POLL_MS when the watch cannot be set up). Every
 * `probeMs` it probes the sockets of its PROBE_FANOUT successors (in id order) among the members
 * and pending joiners; one that refuses connections (or whose socket is gone) is dead, and the
 * prober posts its LEAVE (the state machine ignores duplicates) and removes the socket file.
 * Between rounds each member holds a connection open to each of those successors (MemberHold):
 * the kernel closes it when the successor's process dies, even by SIGKILL, and the member probes
 * at once. A SIGKILLed sheep is thus seen gone by all within a probe and a read (a few ms), and
 * within about probeMs plus a read should the hint be missed. A restarted sheep
 * gets a new id; its JOIN from the same address:port removes the old incarnation if it is still
 * listed. Pids are never used.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { ipv4ToAddr, type SdNode } from "../proto/node.ts";
import type { ClusterDriver, ClusterHandlers } from "./driver.ts";
import { LocalLog } from "./local_log.ts";
import {
  MemberHold,
  MemberSocket,
  memberSocketPath,
  newMemberId,
  probe,
  removeIfPresent,
} from "./local_liveness.ts";
import { MemberRunner } from "./member_runner.ts";

/** The log path when `-c local` has no `:PATH`. */
export const DEFAULT_LOCAL_PATH = "/tmp/sheepdog_local";
/** How often a member looks for new events without a change notification. */
export const LOCAL_POLL_MS = 100;
/** The same when file change notifications are not available. */
const FALLBACK_POLL_MS = 10;
/** How often a member probes the others' sockets. */
export const LOCAL_PROBE_MS = 250;
/** A probe that takes longer proves nothing. */
export const LOCAL_PROBE_TIMEOUT_MS = 1000;
/** A dead member still listed this long after its LEAVE was posted gets another one. */
const REPOST_LEAVE_MS = 2000;
/**
 * A held connection that ended while its member still accepts probes is reopened this many times
 * between timed rounds, the first after HOLD_REOPEN_FIRST_MS and each next one after twice as long
 * (5, 10, 20, 40, 80 ms). A SIGKILLed process's held connections may close just before its
 * listening socket does (more so when the machine is loaded), so the first probe can still find it
 * alive; a reopened hold then fails and the next probe finds it dead. The bound keeps a member that
 * cannot take a hold (its backlog is full) from costing more than a few probes per round.
 */
const HOLD_QUICK_REOPENS = 5;
const HOLD_REOPEN_FIRST_MS = 5;
/** Unlisted sockets are swept every this many probe rounds… */
const SWEEP_EVERY_ROUNDS = 20;
/** …when they refuse connections and are at least this old (a starting sheep is younger). */
const STALE_SOCKET_MS = 10_000;

/**
 * How many others each member probes. Every incarnation is probed by this many members (its
 * predecessors in id order), so that N members make PROBE_FANOUT·N probes per round, not N².
 */
export const PROBE_FANOUT = 3;

/**
 * The ids `me` probes: the `fanout` ids following it, cyclically, in the sorted list of `listed`
 * and `me`. Members that see the same list split the work; when a member's probers all die, their
 * own leaves reshape the ring and others take over.
 */
export function probeTargets(me: string, listed: readonly string[], fanout: number): string[] {
  const ring = [...new Set([...listed, me])].sort();
  const at = ring.indexOf(me);
  const out: string[] = [];
  for (let k = 1; k <= Math.min(fanout, ring.length - 1); k++) {
    out.push(ring[(at + k) % ring.length]);
  }
  return out;
}

/** A connection held to a probe target (see LocalDriver.#holdTargets). */
interface Held {
  hold: MemberHold;
  reopens: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Options of the local driver. */
export interface LocalDriverOptions {
  /** The log file path (the option text after "local:"; default DEFAULT_LOCAL_PATH). */
  path?: string;
  /** Read the log at least this often (default LOCAL_POLL_MS). */
  pollMs?: number;
  /** Probe the watched members this often (default LOCAL_PROBE_MS). */
  probeMs?: number;
  /** Compaction threshold (default LOCAL_COMPACT_BYTES, see local_log.ts). */
  compactBytes?: number;
  /** Deadline for the log lock (default LOCAL_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
  /** Deadlines of join(), block() and leave() (defaults in member_runner.ts). */
  joinTimeoutMs?: number;
  blockTimeoutMs?: number;
  leaveTimeoutMs?: number;
}

/** The log path of `-c local[:PATH]`, given the text after "local:" (if any). */
export function localPathOption(option: string | undefined): string {
  return option === undefined || option === "" ? DEFAULT_LOCAL_PATH : option;
}

/** One sheep's local driver. */
export class LocalDriver implements ClusterDriver {
  readonly name = "local";
  readonly path: string;
  readonly #opts: LocalDriverOptions;
  #log: LocalLog | null = null;
  #socket: MemberSocket | null = null;
  #runner: MemberRunner | null = null;
  #closed = false;
  #broken = false;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #pollAgain = false;
  #watcher: Deno.FsWatcher | null = null;
  #watching: Promise<void> | null = null;
  #watchedGeneration = -1;
  #watchFailed = false;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  #polling: Promise<void> | null = null;
  #probing: Promise<void> | null = null;
  /** A held connection ended during a probe round: run another right after it. */
  #probeAgain = false;
  /**
   * Connections held to the probe targets, how often each was reopened since the last timed round
   * (see HOLD_QUICK_REOPENS), and the timer of its next reopen.
   */
  readonly #holds = new Map<string, Held>();
  /** Holds of former targets being closed (awaited by close()). */
  readonly #dropping = new Set<Promise<void>>();
  /** When this member last posted a LEAVE for each dead id. */
  readonly #reported = new Map<string, number>();
  #rounds = 0;

  constructor(opts: LocalDriverOptions = {}) {
    this.#opts = opts;
    this.path = localPathOption(opts.path);
  }

  /** This member's id (after init). */
  get id(): string | null {
    return this.#runner?.me ?? null;
  }

  /** The shared log handle (after init; for tests). */
  get log(): LocalLog | null {
    return this.#log;
  }

  localAddr(): Uint8Array {
    return ipv4ToAddr("127.0.0.1");
  }

  async init(handlers: ClusterHandlers): Promise<void> {
    assert(this.#runner === null && !this.#closed, "init() is called once");
    const o = this.#opts;
    const log = await LocalLog.open({
      path: this.path,
      compactBytes: o.compactBytes,
      lockTimeoutMs: o.lockTimeoutMs,
    });
    const id = newMemberId();
    let socket: MemberSocket;
    try {
      socket = MemberSocket.listen(log.dir, id);
    } catch (e) {
      log.close();
      throw e;
    }
    const runner = new MemberRunner(handlers, {
      me: id,
      post: (ev) => log.append(ev),
      snapshot: log.initialSnapshot,
      joinTimeoutMs: o.joinTimeoutMs,
      blockTimeoutMs: o.blockTimeoutMs,
      leaveTimeoutMs: o.leaveTimeoutMs,
    });
    log.start((ev) => runner.feed(ev), () => runner.eventLog.snapshot());
    this.#log = log;
    this.#socket = socket;
    this.#runner = runner;
    try {
      await log.read();
    } catch (e) {
      await this.close();
      throw e;
    }
    this.#schedulePoll(this.#watch() ? 0 : undefined);
    this.#scheduleProbe();
  }

  join(myself: SdNode, opaque: Uint8Array): Promise<void> {
    return this.#live().join(myself, opaque);
  }

  leave(): Promise<void> {
    return this.#live().leave();
  }

  notify(msg: Uint8Array): Promise<void> {
    return this.#live().notify(msg);
  }

  block(): Promise<void> {
    return this.#live().block();
  }

  unblock(msg: Uint8Array): Promise<void> {
    return this.#live().unblock(msg);
  }

  updateNode(node: SdNode): Promise<void> {
    return this.#live().updateNode(node);
  }

  /** Leaves the cluster if still in it, then releases the socket, files and timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const r = this.#runner;
    try {
      if (r !== null && !this.#broken && (r.phase === "member" || r.phase === "joining")) {
        await r.leave();
      }
    } finally {
      this.#closed = true;
      clearTimeout(this.#pollTimer);
      clearTimeout(this.#probeTimer);
      await this.#polling;
      await this.#probing;
      for (const h of this.#holds.values()) clearTimeout(h.timer);
      await Promise.all([...this.#holds.values()].map((h) => h.hold.close()));
      this.#holds.clear();
      await Promise.all(this.#dropping);
      this.#unwatch();
      await this.#watching;
      r?.stop("driver closed");
      await this.#socket?.close();
      this.#log?.close();
    }
  }

  #live(): MemberRunner {
    assert(this.#runner !== null, "init() first");
    return this.#runner;
  }

  /** The log or the lock cannot be used any more: this member has lost the cluster. */
  #fail(what: string, e: unknown): void {
    if (this.#broken || this.#closed) return;
    this.#broken = true;
    this.#runner?.lose(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }

  #active(): boolean {
    return !this.#closed && !this.#broken && this.#runner?.phase !== "gone";
  }

  #schedulePoll(delay?: number): void {
    clearTimeout(this.#pollTimer);
    if (!this.#active()) return;
    const ms = delay ??
      (this.#watchFailed ? FALLBACK_POLL_MS : this.#opts.pollMs ?? LOCAL_POLL_MS);
    this.#pollTimer = setTimeout(() => this.#pollNow(), ms);
  }

  /** Reads the log now (or right after the read in progress). */
  #pollNow(): void {
    if (this.#polling !== null) {
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#pollTimer);
    if (!this.#active()) return;
    this.#polling = this.#log!.read()
      .catch((e) => this.#fail(`cannot read ${this.path}`, e))
      .finally(() => {
        this.#polling = null;
        this.#holdTargets();
        // A new watch may have missed what was appended before it was set up: read once more.
        if (this.#log!.generation !== this.#watchedGeneration && this.#watch()) {
          this.#pollAgain = true;
        }
        const again = this.#pollAgain;
        this.#pollAgain = false;
        this.#schedulePoll(again ? 0 : undefined);
      });
  }

  /**
   * Watches the log file for appends (again after a compaction replaced it). False when not
   * watching.
   */
  #watch(): boolean {
    this.#unwatch();
    if (!this.#active() || this.#watchFailed) return false;
    let w: Deno.FsWatcher;
    try {
      w = Deno.watchFs(this.path, { recursive: false });
    } catch (e) {
      // No inotify (or its limits reached): fall back to reading more often.
      if (!(e instanceof Error)) throw e;
      this.#watchFailed = true;
      return false;
    }
    this.#watcher = w;
    this.#watchedGeneration = this.#log!.generation;
    const prev = this.#watching ?? Promise.resolve();
    this.#watching = prev.then(async () => {
      try {
        for await (const _ of w) this.#pollNow();
      } catch (e) {
        // The watch broke (not a close): reading more often replaces it.
        if (!(e instanceof Error)) throw e;
        this.#watchFailed = true;
      }
    });
    return true;
  }

  #unwatch(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  #scheduleProbe(): void {
    clearTimeout(this.#probeTimer);
    if (!this.#active()) return;
    this.#probeTimer = setTimeout(() => this.#runProbe(true), this.#opts.probeMs ?? LOCAL_PROBE_MS);
  }

  /**
   * One probe round; `timed`: the periodic one, which also reopens the holds that ended. The next
   * timed round is due probeMs after this one ends.
   */
  #runProbe(timed: boolean): void {
    clearTimeout(this.#probeTimer);
    if (!this.#active()) return;
    if (timed) {
      for (const [id, h] of this.#holds) {
        h.reopens = 0;
        if (h.hold.ended) {
          // Reopened by #holdTargets() after the round.
          clearTimeout(h.timer);
          this.#holds.delete(id);
        }
      }
    }
    this.#probing = this.#probeRound()
      .catch((e) => this.#fail("cannot report a dead member", e))
      .finally(() => {
        this.#probing = null;
        this.#holdTargets();
        const again = this.#probeAgain;
        this.#probeAgain = false;
        if (again) this.#runProbe(false);
        else this.#scheduleProbe();
      });
  }

  /** A held connection ended: probe now (or right after the round in progress). */
  #probeNow(): void {
    if (this.#probing !== null) this.#probeAgain = true;
    else this.#runProbe(false);
  }

  /**
   * Holds a connection to each current probe target; drops the holds of former targets, and
   * schedules the reopening of the ones that ended (at most HOLD_QUICK_REOPENS times between timed
   * rounds).
   */
  #holdTargets(): void {
    if (!this.#active()) return;
    const dir = this.#log!.dir;
    const targets = probeTargets(
      this.#runner!.me,
      this.#runner!.eventLog.watchList(),
      PROBE_FANOUT,
    );
    for (const [id, { hold, timer }] of this.#holds) {
      if (!targets.includes(id)) {
        clearTimeout(timer);
        this.#holds.delete(id);
        const p: Promise<void> = hold.close()
          .catch((e) => this.#fail("cannot close a held connection", e))
          .finally(() => this.#dropping.delete(p));
        this.#dropping.add(p);
      }
    }
    const open = (id: string, reopens: number) =>
      this.#holds.set(id, {
        hold: new MemberHold(memberSocketPath(dir, id), () => this.#probeNow()),
        reopens,
        timer: undefined,
      });
    for (const id of targets) {
      const h = this.#holds.get(id);
      if (h === undefined) {
        open(id, 0);
        continue;
      }
      if (!h.hold.ended || h.timer !== undefined || h.reopens >= HOLD_QUICK_REOPENS) continue;
      h.timer = setTimeout(() => {
        h.timer = undefined;
        if (this.#active() && this.#holds.get(id) === h) open(id, h.reopens + 1);
      }, HOLD_REOPEN_FIRST_MS * 2 ** h.reopens);
    }
  }

  /**
   * Probes this member's successors among the listed members and pending joiners; posts the LEAVE
   * of the dead ones.
   */
  async #probeRound(): Promise<void> {
    const log = this.#log!;
    const ids = this.#runner!.eventLog.watchList();
    await Promise.all(
      probeTargets(this.#runner!.me, ids, PROBE_FANOUT).map(async (id) => {
        const path = memberSocketPath(log.dir, id);
        if (await probe(path, LOCAL_PROBE_TIMEOUT_MS) !== "dead") return;
        const last = this.#reported.get(id);
        if (last !== undefined && Date.now() - last < REPOST_LEAVE_MS) return;
        if (!this.#active()) return;
        this.#reported.set(id, Date.now());
        await log.append({ type: "leave", id });
        await removeIfPresent(path);
      }),
    );
    for (const id of this.#reported.keys()) if (!ids.includes(id)) this.#reported.delete(id);
    if (++this.#rounds % SWEEP_EVERY_ROUNDS === 0) await this.#sweep(ids);
  }

  /** Removes old sockets of processes that died before their JOIN or after their LEAVE. */
  async #sweep(listed: string[]): Promise<void> {
    const dir = this.#log!.dir;
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".sock")) continue;
      const id = e.name.slice(0, -".sock".length);
      if (id === this.#runner!.me || listed.includes(id)) continue;
      const path = memberSocketPath(dir, id);
      let mtime: number;
      try {
        mtime = (await Deno.lstat(path)).mtime?.getTime() ?? 0;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
      if (Date.now() - mtime < STALE_SOCKET_MS) continue;
      if (await probe(path, LOCAL_PROBE_TIMEOUT_MS) === "dead") await removeIfPresent(path);
    }
  }
}
