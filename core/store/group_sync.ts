/**
 * Group commit of fdatasync for one open file: concurrent writers to the same file share flushes.
 * (The same for any flush whose one run covers every caller that came before it started: the
 * store's flush() of its writeback writes, a volume's FLUSH_NODES.)
 * A writer whose pwrite has returned asks for a flush; if none is running one starts, otherwise
 * the writer joins the next flush, which starts when the running one ends (the running one may
 * have begun before the writer's data reached the page cache, so it cannot count). At queue depth
 * N on one file this turns N flushes into about two.
 *
 * @module
 */

/** Shares fdatasync calls between writers of one file. */
export class GroupSync {
  readonly #flush: () => Promise<void>;
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;

  /** `flush` is the file's fdatasync. */
  constructor(flush: () => Promise<void>) {
    this.#flush = flush;
  }

  /** Resolves once a flush that started after this call has completed. */
  sync(): Promise<void> {
    if (this.#running === null) return this.#start();
    this.#next ??= this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  #start(): Promise<void> {
    const running = this.#flush().finally(() => {
      if (this.#running === running) this.#running = null;
    });
    this.#running = running;
    return running;
  }

  #startNext(): Promise<void> {
    this.#next = null;
    return this.#start();
  }
}
