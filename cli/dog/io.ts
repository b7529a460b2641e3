/**
 * dog's window on the outside world, injected so tests capture output without processes: two byte
 * sinks, stdin as a stream, the environment, tty facts and the clock.
 *
 * @module
 */

/** Anything that takes bytes: a WritableStreamDefaultWriter, or a test's collector. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<unknown> | unknown;
}

/** Everything dog reads from or writes to besides the network. */
export interface DogIo {
  stdout: ByteSink;
  stderr: ByteSink;
  stdin: ReadableStream<Uint8Array>;
  /** An environment variable, or undefined. */
  env(name: string): string | undefined;
  /** True when stdin is a terminal (confirmation prompts then wait for a typed answer). */
  isStdinTty?: boolean;
  /** True when stdout is a terminal. */
  isStdoutTty?: boolean;
  /** The wall clock (cluster format's ctime, -T's elapsed time). */
  now(): Date;
}

const encoder = new TextEncoder();

/** Text and byte output over a DogIo: stdout for results, stderr for errors. */
export class DogOutput {
  readonly #io: DogIo;

  constructor(io: DogIo) {
    this.#io = io;
  }

  /** Writes `text` to stdout as is. */
  async print(text: string): Promise<void> {
    if (text.length > 0) await this.#io.stdout.write(encoder.encode(text));
  }

  /** Writes each line followed by a newline to stdout. */
  async lines(...lines: string[]): Promise<void> {
    await this.print(lines.map((l) => l + "\n").join(""));
  }

  /** Writes raw bytes to stdout. */
  async bytes(data: Uint8Array): Promise<void> {
    if (data.length > 0) await this.#io.stdout.write(data);
  }

  /** Writes each line followed by a newline to stderr. */
  async error(...lines: string[]): Promise<void> {
    if (lines.length > 0) {
      await this.#io.stderr.write(encoder.encode(lines.map((l) => l + "\n").join("")));
    }
  }
}

/**
 * Reads stdin in exact amounts: `read(n)` returns n bytes, or fewer only at end of input, as
 * v1.0's xread() loop does.
 */
export class StreamReader {
  readonly #stream: ReadableStream<Uint8Array>;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #pending: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#stream = stream;
  }

  /** Up to `n` bytes; fewer only when the input ends. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#pending.length === 0) {
        if (!(await this.#fill())) break;
      }
      const take = Math.min(n - filled, this.#pending.length);
      out.set(this.#pending.subarray(0, take), filled);
      this.#pending = this.#pending.subarray(take);
      filled += take;
    }
    return filled === n ? out : out.subarray(0, filled);
  }

  /**
   * One line as fgets(buf, size) reads it: at most `size - 1` bytes, stopping after a newline.
   * Undefined at end of input with nothing read.
   */
  async readLine(size: number): Promise<string | undefined> {
    const bytes: number[] = [];
    while (bytes.length < size - 1) {
      if (this.#pending.length === 0 && !(await this.#fill())) break;
      const b = this.#pending[0];
      this.#pending = this.#pending.subarray(1);
      bytes.push(b);
      if (b === 0x0a) break;
    }
    if (bytes.length === 0) return undefined;
    return new TextDecoder().decode(new Uint8Array(bytes));
  }

  /** Releases the stream (leaves it unread from here on). */
  release(): void {
    this.#reader?.releaseLock();
    this.#reader = undefined;
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    this.#reader ??= this.#stream.getReader();
    while (true) {
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        return false;
      }
      if (value.length > 0) {
        this.#pending = value;
        return true;
      }
    }
  }
}
