/**
 * Ordered, coalescing writes of protocol messages to one connection. Messages queued while a write
 * is in progress go out together: small pieces (headers, 4 KiB payloads, replies) are copied into
 * one buffer of up to COALESCE_BYTES, so a header and its payload, or sixteen 4 KiB replies that
 * completed together, cost one write (one syscall, one TCP segment train, one wakeup of the peer)
 * instead of one or two each. Large payloads are written from their own buffer, never copied.
 *
 * @module
 */

import { writeAll } from "./exact_reader.ts";

/** Pieces up to this size are copied into a shared write buffer; bigger ones go out as they are. */
const COALESCE_BYTES = 256 * 1024;

/** Anything with Deno.Conn's write(). */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

/** Writes messages to a connection in the order they were queued. */
export class MessageWriter {
  readonly #sink: ByteSink;
  readonly #onError: (err: unknown) => void;
  #queue: Uint8Array[] = [];
  /** Called once the pieces queued with them are written (or writing failed). */
  #waiters: (() => void)[] = [];
  #running: Promise<void> | null = null;
  #failed = false;

  /** `onError` is called once, with the first failed write; later messages are dropped. */
  constructor(sink: ByteSink, onError: (err: unknown) => void) {
    this.#sink = sink;
    this.#onError = onError;
  }

  /** True once a write failed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Queues the pieces of one message (kept together, in order). Empty pieces are skipped. */
  send(...pieces: Uint8Array[]): void {
    if (this.#failed) return;
    for (const p of pieces) if (p.length > 0) this.#queue.push(p);
    this.#running ??= this.#run();
  }

  /**
   * Like {@linkcode send}, and resolves once the message is written, or once writing failed or
   * was stopped (it never rejects: the connection's owner hears of failures through `onError`).
   */
  sendAndWait(...pieces: Uint8Array[]): Promise<void> {
    if (this.#failed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.send(...pieces);
    return done;
  }

  /** Drops what is queued and refuses more (the connection is being closed). */
  stop(): void {
    this.#failed = true;
    this.#queue = [];
    this.#wake(this.#waiters);
    this.#waiters = [];
  }

  #wake(waiters: (() => void)[]): void {
    for (const w of waiters) w();
  }

  /** Resolves once everything queued so far is written (or writing failed). */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #run(): Promise<void> {
    // Let the caller's synchronous code queue more before the first write goes out.
    await Promise.resolve();
    let inFlight: (() => void)[] = [];
    try {
      while (this.#queue.length > 0 && !this.#failed) {
        const queue = this.#queue;
        const waiters = this.#waiters;
        this.#queue = [];
        this.#waiters = [];
        inFlight = waiters;
        let i = 0;
        while (i < queue.length) {
          if (queue[i].length > COALESCE_BYTES) {
            await writeAll(this.#sink, queue[i++]);
            continue;
          }
          let j = i;
          let bytes = 0;
          while (j < queue.length && queue[j].length <= COALESCE_BYTES) {
            if (j > i && bytes + queue[j].length > COALESCE_BYTES) break;
            bytes += queue[j++].length;
          }
          if (j - i === 1) {
            await writeAll(this.#sink, queue[i]);
          } else {
            const buf = new Uint8Array(bytes);
            let off = 0;
            for (let k = i; k < j; k++) {
              buf.set(queue[k], off);
              off += queue[k].length;
            }
            await writeAll(this.#sink, buf);
          }
          i = j;
        }
        inFlight = [];
        this.#wake(waiters);
      }
    } catch (err) {
      this.#failed = true;
      this.#queue = [];
      this.#onError(err);
      this.#wake(inFlight);
      this.#wake(this.#waiters);
      this.#waiters = [];
    } finally {
      this.#running = null;
    }
  }
}
