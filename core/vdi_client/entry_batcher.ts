/**
 * Inode entry updates of a volume's creates, batched.
 *
 * Every create of a data object is followed by a write of its data_vdi_id entry in the inode, and
 * the gateway runs the writes to one inode one at a time (it reads the old entries first, to
 * release what they referenced). A sequential writer that creates many objects at once would make
 * them queue there, one round trip to every replica each. Here the first update goes out at once;
 * the updates that arrive while it runs are sent together when it is done, one WRITE_OBJ per run
 * of consecutive entries of one inode. Each update resolves when the write holding it is
 * acknowledged (so a create's caller still learns of its entry only once it is on every replica),
 * and each entry is still written only after its object exists: its caller asked for it then.
 *
 * @module
 */

/** Writes `values` at data_vdi_id[first …] of the inode of `inodeVid`. */
export type EntryWriter = (inodeVid: number, first: number, values: Uint32Array) => Promise<void>;

interface Update {
  inodeVid: number;
  idx: number;
  value: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Batches data_vdi_id updates: one in flight, the rest gathered behind it. */
export class EntryBatcher {
  readonly #write: EntryWriter;
  #queue: Update[] = [];
  #busy = false;

  constructor(write: EntryWriter) {
    this.#write = write;
  }

  /** Sets data_vdi_id[idx] = value in the inode of `inodeVid`; resolves once it is written. */
  set(inodeVid: number, idx: number, value: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ inodeVid, idx, value, resolve, reject });
      if (!this.#busy) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        await Promise.all(runsOf(batch).map((run) => this.#writeRun(run)));
      }
    } finally {
      this.#busy = false;
    }
  }

  /** Writes one run and settles its updates; never rejects. */
  async #writeRun(run: Update[]): Promise<void> {
    const first = run[0].idx;
    const values = new Uint32Array(run[run.length - 1].idx - first + 1);
    for (const u of run) values[u.idx - first] = u.value;
    try {
      await this.#write(run[0].inodeVid, first, values);
    } catch (e) {
      for (const u of run) u.reject(e);
      return;
    }
    for (const u of run) u.resolve();
  }
}

/**
 * The updates in runs of consecutive entries of one inode (an entry set twice keeps the later
 * value; both updates settle with the run).
 */
function runsOf(batch: Update[]): Update[][] {
  const sorted = batch.map((u, i) => ({ u, i })).sort((a, b) =>
    a.u.inodeVid - b.u.inodeVid || a.u.idx - b.u.idx || a.i - b.i
  ).map((x) => x.u);
  const runs: Update[][] = [];
  for (const u of sorted) {
    const run = runs[runs.length - 1];
    const last = run?.[run.length - 1];
    if (last !== undefined && last.inodeVid === u.inodeVid && u.idx <= last.idx + 1) run.push(u);
    else runs.push([u]);
  }
  return runs;
}
