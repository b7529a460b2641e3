/**
 * Reads exact byte counts from a Deno connection, buffering what arrives beyond the current need.
 * Large reads (object payloads) go straight into their destination buffer.
 *
 * @module
 */

/** Anything with Deno.Conn's read(). */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

const BUFFER_SIZE = 64 * 1024;

/** Buffered exact-length reader. */
export class ExactReader {
  readonly #src: ByteSource;
  readonly #buf = new Uint8Array(BUFFER_SIZE);
  #start = 0;
  #end = 0;

  constructor(src: ByteSource) {
    this.#src = src;
  }

  /**
   * Fills `out` completely. Returns false on a clean end of stream before the first byte;
   * throws `UnexpectedEofError` when the stream ends in the middle.
   */
  async readFull(out: Uint8Array): Promise<boolean> {
    let filled = 0;
    while (filled < out.length) {
      if (this.#start < this.#end) {
        const n = Math.min(this.#end - this.#start, out.length - filled);
        out.set(this.#buf.subarray(this.#start, this.#start + n), filled);
        this.#start += n;
        filled += n;
        continue;
      }
      const want = out.length - filled;
      if (want >= BUFFER_SIZE) {
        const n = await this.#src.read(out.subarray(filled));
        if (n === null) return this.#eof(filled);
        filled += n;
      } else {
        this.#start = 0;
        this.#end = 0;
        const n = await this.#src.read(this.#buf);
        if (n === null) return this.#eof(filled);
        this.#end = n;
      }
    }
    return true;
  }

  /** Reads and throws away `n` bytes. */
  async skip(n: number): Promise<void> {
    const scratch = new Uint8Array(Math.min(n, BUFFER_SIZE));
    while (n > 0) {
      const part = scratch.subarray(0, Math.min(n, scratch.length));
      if (!(await this.readFull(part))) throw new UnexpectedEofError(n);
      n -= part.length;
    }
  }

  #eof(filled: number): false {
    if (filled === 0) return false;
    throw new UnexpectedEofError(filled);
  }
}

/** The peer closed the stream in the middle of a message. */
export class UnexpectedEofError extends Error {
  override name = "UnexpectedEofError";
  constructor(got: number) {
    super(`connection closed in the middle of a message (after ${got} bytes)`);
  }
}

/** Writes all of `data` to `conn`. */
export async function writeAll(
  conn: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}
