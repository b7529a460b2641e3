/**
 * The local driver's shared event log: one append-only text file per cluster, read by every sheep
 * process of the host.
 *
 * Format: the first line is a header `{"sheepdog_local_log":1,"base":N,"snapshot":{…}}` holding
 * the event log state after N events; every further line is one raw event (event_codec JSON), the
 * line's position giving its sequence number (N, N+1, …). A line counts once its "\n" is written.
 *
 * Writers take an exclusive flock on the sibling `PATH.lock` (the kernel drops it when a holder
 * dies), cut off a torn last line a killed writer may have left, and append one line.
 *
 * Compaction: when the events part passes `compactBytes`, the writer catches up, hard-links the
 * current file (generation) as `PATH.d/log.<base>`, and renames over PATH a new file holding only
 * a header with its state as the snapshot. A renamed-away generation is frozen. Readers hold a
 * shared flock on the generation they read: when PATH names another inode they finish theirs,
 * then open the generation whose base equals their position (`PATH.d/log.<seq>` or PATH), lock
 * it, and only then drop the old one. The compactor deletes old generations in base order while
 * nobody holds them (an exclusive tryLock succeeds), stopping at the first one still held, so a
 * reader, however late, always finds its next generation, and the disk holds little more than the
 * current file. Nothing depends on the liveness of members: a dead reader's locks vanish with it.
 *
 * @module
 */

import { assert } from "../assert.ts";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { withDeadline } from "./deadline.ts";
import { removeIfPresent } from "./local_liveness.ts";
import { eventFromJson, eventToJson, snapshotFromJson, snapshotToJson } from "./event_codec.ts";
import { emptySnapshot, type EventLogSnapshot, type RawEvent } from "./event_log.ts";

/** Compact once the events part of the log file passes this many bytes. */
export const LOCAL_COMPACT_BYTES = 1 << 20;
/** How long a writer waits for the log lock. */
export const LOCAL_LOCK_TIMEOUT_MS = 10_000;

const HEADER_KEY = "sheepdog_local_log";
const NL = 0x0a;
const te = new TextEncoder();
const td = new TextDecoder();

/** Options of a log. */
export interface LocalLogOptions {
  /** The log file; `PATH.lock` and the directory `PATH.d` sit beside it. */
  path: string;
  compactBytes?: number;
  lockTimeoutMs?: number;
}

/** Where the local driver keeps the files of the cluster at `path`. */
export function localPaths(path: string): { log: string; lock: string; dir: string } {
  return { log: path, lock: `${path}.lock`, dir: `${path}.d` };
}

/** One process's handle on the shared log. */
export class LocalLog {
  readonly path: string;
  readonly #lockPath: string;
  readonly #dir: string;
  readonly #compactBytes: number;
  readonly #lockTimeoutMs: number;
  #lockFile: Deno.FsFile | null = null;
  #file: Deno.FsFile | null = null;
  #ino = -1;
  /** Base (sequence number of the first event) of #file's generation. */
  #base = 0;
  /** Byte offset of the first unread line in #file. */
  #offset = 0;
  /** Byte length of #file's header line. */
  #headerBytes = 0;
  /** Sequence number of the next event to read. */
  #seq = 0;
  #initial: EventLogSnapshot = emptySnapshot();
  #onEvent: ((ev: RawEvent) => void) | null = null;
  #snapshot: (() => EventLogSnapshot) | null = null;
  #readChain: Promise<void> = Promise.resolve();
  #appendChain: Promise<void> = Promise.resolve();
  #closed = false;
  #broken: SdError | null = null;
  /** Number of compactions this process did (for tests). */
  compactions = 0;

  private constructor(opts: LocalLogOptions) {
    const p = localPaths(opts.path);
    this.path = p.log;
    this.#lockPath = p.lock;
    this.#dir = p.dir;
    this.#compactBytes = opts.compactBytes ?? LOCAL_COMPACT_BYTES;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? LOCAL_LOCK_TIMEOUT_MS;
  }

  /**
   * Opens (creating if needed) the log at `opts.path` and reads its header. Events are read only
   * after start().
   */
  static async open(opts: LocalLogOptions): Promise<LocalLog> {
    const log = new LocalLog(opts);
    try {
      await log.#open();
    } catch (e) {
      log.close();
      throw e;
    }
    return log;
  }

  /** The state at the start of the file this process opened. */
  get initialSnapshot(): EventLogSnapshot {
    return this.#initial;
  }

  /** The directory beside the log (member sockets, compaction scratch file). */
  get dir(): string {
    return this.#dir;
  }

  /** Inode of the generation being read (it changes when a compaction moved readers on). */
  get generation(): number {
    return this.#ino;
  }

  /** Sequence number of the next event this process will read. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Sets the consumer: `onEvent` gets every event in order, `snapshot` returns the consumer's
   * state after the events it got (used for compaction).
   */
  start(onEvent: (ev: RawEvent) => void, snapshot: () => EventLogSnapshot): void {
    assert(this.#onEvent === null, "start() is called once");
    this.#onEvent = onEvent;
    this.#snapshot = snapshot;
  }

  /** Reads and delivers every complete new event (follows compactions). */
  read(): Promise<void> {
    const p = this.#readChain.then(() => this.#readAll());
    this.#readChain = p.catch(() => {}); // the caller of read() gets the error
    return p;
  }

  /** Appends `ev` under the lock (compacting when the file grew too big). */
  append(ev: RawEvent): Promise<void> {
    const line = te.encode(JSON.stringify(eventToJson(ev)) + "\n");
    const p = this.#appendChain.then(() => this.#underLock(() => this.#append(line)));
    this.#appendChain = p.catch(() => {}); // the caller of append() gets the error
    return p;
  }

  /** Closes the descriptors (other processes are not affected). */
  close(): void {
    this.#closed = true;
    this.#file?.close();
    this.#file = null;
    this.#lockFile?.close();
    this.#lockFile = null;
  }

  async #open(): Promise<void> {
    const parent = this.path.slice(0, Math.max(this.path.lastIndexOf("/"), 0));
    if (parent !== "") await Deno.mkdir(parent, { recursive: true });
    await Deno.mkdir(this.#dir, { recursive: true });
    this.#lockFile = await Deno.open(this.#lockPath, { read: true, write: true, create: true });
    await this.#underLock(async () => {
      const f = await Deno.open(this.path, { read: true, write: true, create: true });
      try {
        await repairTail(f);
      } finally {
        f.close();
      }
    });
    for (let attempt = 0; attempt < GENERATION_ATTEMPTS; attempt++) {
      const g = await openGeneration(this.path);
      if (g === null) continue; // compacted away and deleted before we locked it: again
      this.#adopt(g);
      this.#initial = g.snapshot;
      return;
    }
    throw new SdError(Res.CLUSTER_ERROR, `${this.path} keeps changing under this reader`);
  }

  /** Makes `g` the generation being read (after locking it; the previous one is released). */
  #adopt(g: Generation): void {
    this.#file?.close();
    this.#file = g.file;
    this.#ino = g.ino;
    this.#base = g.snapshot.seq;
    this.#offset = g.headerBytes;
    this.#headerBytes = g.headerBytes;
    this.#seq = g.snapshot.seq;
  }

  async #readAll(): Promise<void> {
    assert(this.#onEvent !== null, "start() before read()");
    for (;;) {
      if (this.#closed) return;
      if (this.#broken !== null) throw this.#broken;
      // Stat PATH before draining: if it names another file, ours is frozen and the drain below
      // sees all of it. (A synchronous stat: this runs every poll and takes microseconds.)
      const st = Deno.statSync(this.path);
      if (st.ino === this.#ino && st.size === this.#offset) return;
      await this.#drain();
      if (st.ino === this.#ino || this.#closed) return;
      this.#adopt(await this.#successor());
    }
  }

  /** Opens and locks the generation that starts where this reader is. */
  async #successor(): Promise<Generation> {
    const seq = this.#seq;
    for (let attempt = 0; attempt < GENERATION_ATTEMPTS; attempt++) {
      // Our own (older) generation is still locked, so a superseded successor cannot be deleted.
      let g = await openGeneration(generationPath(this.#dir, seq), true);
      if (g === null) g = await openGeneration(this.path);
      if (g === null) continue;
      if (g.snapshot.seq === seq) return g;
      g.file.close();
      if (g.snapshot.seq < seq) {
        throw new SdError(
          Res.CLUSTER_ERROR,
          `${this.path} restarts at event ${g.snapshot.seq}, behind this reader (${seq})`,
        );
      }
      // PATH moved on between our two opens: the successor is now under its generation name.
    }
    throw new SdError(Res.CLUSTER_ERROR, `${this.path}: no generation starts at event ${seq}`);
  }

  /** Delivers the complete lines after #offset. */
  async #drain(): Promise<void> {
    const f = this.#file!;
    const base = this.#offset;
    const data = await readFrom(f, base);
    let start = 0;
    for (let i = data.indexOf(NL); i >= 0; i = data.indexOf(NL, start)) {
      const line = td.decode(data.subarray(start, i));
      start = i + 1;
      let ev: RawEvent;
      try {
        ev = eventFromJson(JSON.parse(line));
      } catch (e) {
        throw new SdError(
          Res.CLUSTER_ERROR,
          `${this.path}: bad event ${this.#seq}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      this.#offset = base + start;
      this.#seq++;
      this.#onEvent!(ev);
    }
  }

  async #append(line: Uint8Array): Promise<void> {
    const f = await Deno.open(this.path, { read: true, write: true });
    let size: number;
    try {
      await repairTail(f);
      await f.seek(0, Deno.SeekMode.End);
      await writeAll(f, line);
      size = (await f.stat()).size;
    } finally {
      f.close();
    }
    if (size - this.#headerBytes <= this.#compactBytes) return;
    try {
      await this.#compact();
    } catch (e) {
      // The line is in the log, so append() succeeded; the log itself is unusable now, which
      // the next read() reports (the driver then loses the cluster).
      this.#broken = new SdError(Res.CLUSTER_ERROR, `cannot compact ${this.path}`, { cause: e });
    }
  }

  /** Starts a new generation holding only a snapshot header (the lock is held). */
  async #compact(): Promise<void> {
    // Catch up: with the lock held nobody appends, so this reads to the very end of PATH.
    await this.read();
    const snap = this.#snapshot!();
    assert(snap.seq === this.#seq, "the consumer's state matches the read position");
    assert(snap.seq > this.#base, "a compaction follows at least one event");
    const header = te.encode(
      JSON.stringify({ [HEADER_KEY]: 1, base: snap.seq, snapshot: snapshotToJson(snap) }) + "\n",
    );
    const tmp = `${this.#dir}/compact.tmp`;
    await Deno.writeFile(tmp, header);
    // Keep the superseded generation reachable by name for readers still in an older one. (A
    // link left by a compactor that died right here names the same file: replace it.)
    const old = generationPath(this.#dir, this.#base);
    await removeIfPresent(old);
    await Deno.link(this.path, old);
    await Deno.rename(tmp, this.path);
    this.compactions++;
    await this.#collect();
  }

  /** Deletes old generations in base order while nobody reads them or anything older. */
  async #collect(): Promise<void> {
    const bases: number[] = [];
    for await (const e of Deno.readDir(this.#dir)) {
      const m = /^log\.(\d+)$/.exec(e.name);
      if (m) bases.push(Number(m[1]));
    }
    bases.sort((x, y) => x - y);
    for (const base of bases) {
      const path = generationPath(this.#dir, base);
      const f = await Deno.open(path, { read: true });
      try {
        if (!await f.tryLock(true)) return;
        await Deno.remove(path);
      } finally {
        f.close();
      }
    }
  }

  async #underLock<T>(fn: () => Promise<T>): Promise<T> {
    const lf = this.#lockFile;
    if (lf === null) throw new SdError(Res.CLUSTER_ERROR, "local cluster log is closed");
    const locking = lf.lock(true);
    let late = false;
    try {
      await withDeadline(locking, this.#lockTimeoutMs, () => {
        late = true;
        return new SdError(
          Res.CLUSTER_ERROR,
          `${this.#lockPath} still locked after ${this.#lockTimeoutMs} ms`,
        );
      });
    } catch (e) {
      // If the lock comes later, give it back at once. Nothing is left to do when that lock()
      // fails or the descriptor was closed meanwhile (closing released the lock anyway).
      if (late) locking.then(() => lf.unlock()).catch(() => {});
      throw e;
    }
    try {
      return await fn();
    } finally {
      await lf.unlock();
    }
  }
}

/** How many times a reader retries opening a generation that compactions keep replacing. */
const GENERATION_ATTEMPTS = 5;

/** The name of a superseded generation starting at event `base`. */
function generationPath(dir: string, base: number): string {
  return `${dir}/log.${base}`;
}

/** An opened, share-locked generation of the log. */
interface Generation {
  file: Deno.FsFile;
  ino: number;
  snapshot: EventLogSnapshot;
  headerBytes: number;
}

/**
 * Opens `path`, takes a shared lock on it and reads its header. Null when the file was deleted
 * before the lock was taken (or, with `missingOk`, does not exist).
 */
async function openGeneration(path: string, missingOk = false): Promise<Generation | null> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (missingOk && e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    await f.lock(false);
    const st = await f.stat();
    if (st.nlink === 0) {
      f.close();
      return null;
    }
    const { text, bytes } = await readFirstLine(f, path);
    const header = parseHeader(text, path);
    return { file: f, ino: st.ino ?? -1, snapshot: header.snapshot, headerBytes: bytes };
  } catch (e) {
    f.close();
    throw e;
  }
}

function parseHeader(text: string, path: string): { base: number; snapshot: EventLogSnapshot } {
  const notOurs = () =>
    new SdError(Res.CLUSTER_ERROR, `${path} is not a sheepdog local cluster log`);
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch (e) {
    throw new SdError(Res.CLUSTER_ERROR, `${path} is not a sheepdog local cluster log`, {
      cause: e,
    });
  }
  if (typeof x !== "object" || x === null || (x as Record<string, unknown>)[HEADER_KEY] !== 1) {
    throw notOurs();
  }
  const o = x as Record<string, unknown>;
  const snapshot = snapshotFromJson(o.snapshot);
  if (o.base !== snapshot.seq) throw notOurs();
  return { base: snapshot.seq, snapshot };
}

/**
 * Cuts a torn last line (left by a writer killed mid-append: the lock is held, so no writer is
 * active) and writes the empty cluster's header into a file without a complete header (a new
 * file, or one whose creator died while writing it).
 */
async function repairTail(f: Deno.FsFile): Promise<void> {
  const size = (await f.stat()).size;
  if (size > 0) {
    const last = new Uint8Array(1);
    await f.seek(size - 1, Deno.SeekMode.Start);
    await readFull(f, last);
    if (last[0] === NL) return;
    const keep = await lastNewlineEnd(f, size);
    await f.truncate(keep);
    if (keep > 0) return;
  }
  const header = { [HEADER_KEY]: 1, base: 0, snapshot: snapshotToJson(emptySnapshot()) };
  await f.seek(0, Deno.SeekMode.Start);
  await writeAll(f, te.encode(JSON.stringify(header) + "\n"));
}

/** Offset just past the last "\n" before `size` (0 if none). */
async function lastNewlineEnd(f: Deno.FsFile, size: number): Promise<number> {
  const chunk = 64 * 1024;
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk);
    const buf = new Uint8Array(end - start);
    await f.seek(start, Deno.SeekMode.Start);
    await readFull(f, buf);
    const i = buf.lastIndexOf(NL);
    if (i >= 0) return start + i + 1;
    end = start;
  }
  return 0;
}

/** Everything from `offset` to the current end of `f`. */
async function readFrom(f: Deno.FsFile, offset: number): Promise<Uint8Array> {
  await f.seek(offset, Deno.SeekMode.Start);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(64 * 1024);
    const n = await f.read(buf);
    if (n === null || n === 0) break;
    parts.push(buf.subarray(0, n));
    total += n;
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The first line of `f` (waits for nothing: a file without one is not a log). */
async function readFirstLine(
  f: Deno.FsFile,
  path: string,
): Promise<{ text: string; bytes: number }> {
  const data = await readFrom(f, 0);
  const i = data.indexOf(NL);
  if (i < 0) {
    throw new SdError(Res.CLUSTER_ERROR, `${path} has no complete header line`);
  }
  return { text: td.decode(data.subarray(0, i)), bytes: i + 1 };
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let o = 0;
  while (o < buf.length) {
    const n = await f.read(buf.subarray(o));
    if (n === null || n === 0) throw new SdError(Res.CLUSTER_ERROR, "short read of the log");
    o += n;
  }
}

async function writeAll(f: Deno.FsFile, data: Uint8Array): Promise<void> {
  let o = 0;
  while (o < data.length) o += await f.write(data.subarray(o));
}
