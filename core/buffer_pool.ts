/**
 * Reuse of the large buffers that carry whole objects through the daemon. A fresh 4 MiB
 * Uint8Array costs more than its copy: its pages are faulted in (and zero-filled) on first touch,
 * and V8 counts it as external memory, whose growth triggers garbage collections. The object
 * store reads whole objects into pooled buffers; the server hands a pooled reply buffer back once
 * the reply is written.
 *
 * There is no process-wide pool: each component that takes or gives buffers (the store, the
 * Sheepdog-protocol and NBD servers, a VDI volume) is given its pool through its options, and
 * makes its own when none is given. Buffers only come back to the pool they were taken from, so
 * components that pass buffers to one another share one pool: the daemon makes one and gives it
 * to its store and both servers (core/sheep/daemon.ts).
 *
 * Ownership rule: a pooled buffer has one owner at a time. Whoever got it from `take()` (directly,
 * or as the result of a store read) owns it; passing it as reply data hands it to the server,
 * which gives it back after the write. Code that keeps such a buffer beyond its reply (a cache)
 * must copy it.
 *
 * Pooled buffers start on a DIRECT_IO_ALIGNMENT boundary (when the process may use FFI, which
 * tells the address), so the store can write a whole object from one with O_DIRECT, sparing the
 * copy into the page cache (see core/store/direct_io.ts).
 *
 * @module
 */

/** Alignment (bytes) of the address, length and file offset of an O_DIRECT transfer. */
export const DIRECT_IO_ALIGNMENT = 4096;

/** True when this process may use FFI (never prompts; a cheap synchronous query, not cached). */
export function ffiAllowed(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch (_unsupported) {
    return false;
  }
}

/** The address of `buf`'s first byte, or null when FFI is not allowed. */
export function addressOf(buf: Uint8Array): number | null {
  if (!ffiAllowed()) return null;
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** True when `buf`'s address and length are multiples of DIRECT_IO_ALIGNMENT. */
export function isDirectIoAligned(buf: Uint8Array): boolean {
  if (buf.length % DIRECT_IO_ALIGNMENT !== 0) return false;
  const addr = addressOf(buf);
  return addr !== null && addr % DIRECT_IO_ALIGNMENT === 0;
}

/** Offset into `ab` of its first DIRECT_IO_ALIGNMENT boundary (0 when the address is unknown). */
function alignedOffset(ab: ArrayBuffer): number {
  const addr = addressOf(new Uint8Array(ab, 0, 1));
  return addr === null ? 0 : (DIRECT_IO_ALIGNMENT - (addr % DIRECT_IO_ALIGNMENT)) %
    DIRECT_IO_ALIGNMENT;
}

/**
 * A fresh zeroed buffer of `length` bytes starting on a DIRECT_IO_ALIGNMENT boundary (any
 * address when FFI is not allowed).
 */
export function alignedBuffer(length: number): Uint8Array {
  if (!ffiAllowed()) return new Uint8Array(length);
  const ab = new ArrayBuffer(length + DIRECT_IO_ALIGNMENT);
  return new Uint8Array(ab, alignedOffset(ab), length);
}

/** Size of a pooled buffer: a data object of the default block size. */
export const POOLED_BUFFER_SIZE = 4 << 20;
/** Smaller requests get a fresh buffer (cheap enough, and no 4 MiB held for a small read). */
export const POOLED_MIN_LENGTH = 256 * 1024;
/** Buffers kept for reuse; beyond this, given-back buffers are left to the garbage collector. */
const MAX_FREE = 16;
/** Free buffers unused for this long are dropped, so an idle daemon gives the memory back. */
const IDLE_DROP_MS = 10_000;

/** A pool of equally sized large buffers. */
export class BufferPool {
  readonly #size: number;
  readonly #maxFree: number;
  /** Our buffers, each with the offset of its aligned start. */
  readonly #ours = new WeakMap<ArrayBufferLike, number>();
  #free: ArrayBuffer[] = [];
  #lastUse = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(size = POOLED_BUFFER_SIZE, maxFree = MAX_FREE) {
    this.#size = size;
    this.#maxFree = maxFree;
  }

  /** Number of free buffers held. */
  get free(): number {
    return this.#free.length;
  }

  /**
   * A buffer of `length` bytes: the head of a pooled one when the length suits the pool, else a
   * fresh one. A pooled buffer is not zeroed: the caller fills all of it.
   */
  take(length: number): Uint8Array {
    if (length < POOLED_MIN_LENGTH || length > this.#size) return new Uint8Array(length);
    this.#lastUse = Date.now();
    let ab = this.#free.pop();
    if (ab === undefined) {
      const aligned = ffiAllowed();
      ab = new ArrayBuffer(this.#size + (aligned ? DIRECT_IO_ALIGNMENT : 0));
      this.#ours.set(ab, aligned ? alignedOffset(ab) : 0);
    }
    return new Uint8Array(ab, this.#ours.get(ab)!, length);
  }

  /** True when `buf` lies in a buffer of this pool. */
  owns(buf: Uint8Array): boolean {
    return this.#ours.has(buf.buffer);
  }

  /** Hands back a buffer from `take()` (any view of it); other buffers are ignored. */
  give(buf: Uint8Array): void {
    const ab = buf.buffer;
    if (!this.#ours.has(ab) || this.#free.length >= this.#maxFree) return;
    if (this.#free.includes(ab as ArrayBuffer)) return; // given back twice: keep it once
    this.#free.push(ab as ArrayBuffer);
    this.#lastUse = Date.now();
    this.#armTrim();
  }

  #armTrim(): void {
    if (this.#timer !== undefined) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      if (Date.now() - this.#lastUse >= IDLE_DROP_MS) this.#free = [];
      if (this.#free.length > 0) this.#armTrim();
    }, IDLE_DROP_MS);
    this.#timer = timer;
    Deno.unrefTimer(timer);
  }
}
