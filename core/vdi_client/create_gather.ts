/**
 * One create per data object for sequential writers that send objects in pieces.
 *
 * The first write to a data object the VDI does not own yet creates it (CREATE_AND_WRITE_OBJ): the
 * replicas write the whole object, zeros around the data, and sync it. A client copying a disk in
 * 256 KiB requests (nbdcopy's default) thus makes every replica write each object twice (the create
 * with 3.75 MiB of zeros, then the in-place writes of the other pieces) and sync it sixteen times.
 * Here, a piece that would create its object while a stream goes forward (a recent write of the
 * volume ended in this object or the one before, and other writes are in flight) is held back for
 * a moment: the pieces of the same object that follow it join it, and they all go out as one
 * create as soon as they cover the object, or once no piece came for
 * {@linkcode CREATE_GATHER_IDLE_MS} (at most {@linkcode CREATE_GATHER_MAX_MS} after the first).
 * Each held write resolves when the request carrying its bytes is acknowledged, so durability is
 * the same as without gathering.
 *
 * A writer at queue depth one never has another write in flight and is never held. Only creates
 * are ever held, and a create costs far more than the wait (a whole object written and synced on
 * every replica, its inode entry after it). The gathering pays when a client keeps at least an
 * object's worth of writes in flight; nbdcopy and qemu-img convert send whole objects anyway
 * (they follow the export's preferred block size).
 *
 * @module
 */

import { BufferPool } from "../buffer_pool.ts";
import { CREATE_GATHER_IDLE_MS, CREATE_GATHER_MAX_MS } from "../limits.ts";
/** Objects of the latest writes remembered to recognise a sequential stream. */
const RECENT_WRITES = 64;

/** Writes one contiguous run of bytes inside data object `idx` (a create or an in-place write). */
export type RunWriter = (idx: number, off: number, data: Uint8Array) => Promise<void>;

interface HeldPiece {
  /** Arrival order. */
  seq: number;
  off: number;
  data: Uint8Array;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Gathering {
  /** Bytes in the object (the last object of a VDI may be shorter). */
  objectEnd: number;
  pieces: HeldPiece[];
  /** Sum of the pieces' lengths (overlaps counted twice). */
  bytes: number;
  started: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A contiguous run of held pieces. */
interface Run {
  off: number;
  end: number;
  pieces: HeldPiece[];
}

/** Holds back the pieces of sequentially written new objects until they make one create. */
export class CreateGather {
  readonly #write: RunWriter;
  /** Where the buffers of merged runs come from (and go back to once written). */
  readonly #buffers: BufferPool;
  readonly #now: () => number;
  readonly #held = new Map<number, Gathering>();
  /** Object index of the last byte of each recent write. */
  readonly #recent: number[] = [];
  #arrivals = 0;

  /**
   * `write` sends a run; `buffers` is the pool the bytes of a run made of several pieces are
   * gathered in (the volume's, core/buffer_pool.ts).
   */
  constructor(
    write: RunWriter,
    buffers: BufferPool = new BufferPool(),
    now: () => number = () => performance.now(),
  ) {
    this.#write = write;
    this.#buffers = buffers;
    this.#now = now;
  }

  /** Objects with pieces held back. */
  get heldObjects(): number {
    return this.#held.size;
  }

  /** Remembers that a write of the volume ended in object `idx`. */
  noteWrite(idx: number): void {
    this.#recent.push(idx);
    if (this.#recent.length > RECENT_WRITES) this.#recent.shift();
  }

  /**
   * Whether a piece of object `idx` that would create the object should be held: its object is
   * being gathered already, or `othersInFlight` other writes of the volume are running and a
   * recent write ended in this object or the one before (a stream going forward; clients with
   * several threads, such as nbdfuse, reorder its pieces a little). Asked before the piece's own
   * write is noted.
   */
  shouldHold(idx: number, othersInFlight: number): boolean {
    if (this.#held.has(idx)) return true;
    return othersInFlight > 0 && (this.#recent.includes(idx - 1) || this.#recent.includes(idx));
  }

  /** Holds a piece of object `idx`; resolves when the request carrying it is acknowledged. */
  hold(idx: number, off: number, data: Uint8Array, objectEnd: number): Promise<void> {
    let g = this.#held.get(idx);
    if (g === undefined) {
      g = { objectEnd, pieces: [], bytes: 0, started: this.#now(), timer: undefined };
      this.#held.set(idx, g);
    }
    const gathering = g;
    return new Promise<void>((resolve, reject) => {
      gathering.pieces.push({ seq: this.#arrivals++, off, data, resolve, reject });
      gathering.bytes += data.length;
      clearTimeout(gathering.timer);
      gathering.timer = undefined;
      if (gathering.bytes >= gathering.objectEnd && covers(gathering.pieces, gathering.objectEnd)) {
        this.#release(idx, gathering);
        return;
      }
      const left = CREATE_GATHER_MAX_MS - (this.#now() - gathering.started);
      gathering.timer = setTimeout(
        () => this.#release(idx, gathering),
        Math.max(0, Math.min(CREATE_GATHER_IDLE_MS, left)),
      );
    });
  }

  /** Sends the held pieces of `idx` as contiguous runs, the longest first (it creates). */
  #release(idx: number, g: Gathering): void {
    clearTimeout(g.timer);
    if (this.#held.get(idx) === g) this.#held.delete(idx);
    const runs = toRuns(g.pieces).sort((a, b) => (b.end - b.off) - (a.end - a.off));
    // Called in this order, the runs take the object's lock in this order: the longest creates
    // the object, the others then find it and write in place.
    for (const run of runs) {
      const data = merge(run, this.#buffers);
      const giveBack = () => {
        if (data !== run.pieces[0].data) this.#buffers.give(data);
      };
      this.#write(idx, run.off, data).then(() => {
        giveBack();
        for (const p of run.pieces) p.resolve();
      }, (e: unknown) => {
        giveBack();
        for (const p of run.pieces) p.reject(e);
      });
    }
  }
}

/** True when the pieces cover [0, end) without a gap. */
function covers(pieces: HeldPiece[], end: number): boolean {
  const runs = toRuns(pieces);
  return runs.length === 1 && runs[0].off === 0 && runs[0].end >= end;
}

/** The pieces grouped into runs of touching or overlapping ranges, in offset order. */
function toRuns(pieces: HeldPiece[]): Run[] {
  const sorted = [...pieces].sort((a, b) => a.off - b.off);
  const runs: Run[] = [];
  for (const p of sorted) {
    const last = runs[runs.length - 1];
    const end = p.off + p.data.length;
    if (last !== undefined && p.off <= last.end) {
      last.end = Math.max(last.end, end);
      last.pieces.push(p);
    } else {
      runs.push({ off: p.off, end, pieces: [p] });
    }
  }
  return runs;
}

/**
 * The bytes of a run, in a buffer from `buffers` when there are several pieces. Pieces are laid in
 * the order they arrived, so where two overlap the later one wins (as it would have, had they been
 * sent one by one in that order).
 */
function merge(run: Run, buffers: BufferPool): Uint8Array {
  if (run.pieces.length === 1) return run.pieces[0].data;
  const out = buffers.take(run.end - run.off);
  const arrival = [...run.pieces].sort((a, b) => a.seq - b.seq);
  for (const p of arrival) out.set(p.data, p.off - run.off);
  return out;
}
