/**
 * Writing a new file with O_DIRECT, for the plain store's whole-object creates. A buffered 4 MiB
 * write costs the kernel a copy into freshly allocated page-cache pages plus delayed-allocation
 * bookkeeping and the writeback that fdatasync then does: measured about 0.45-0.8 CPU-s per GiB,
 * against 0.07 with O_DIRECT (the disk reads the buffer itself). With three sheep on one machine
 * each writing every object, that copy was the largest single CPU cost of a replicated write.
 *
 * Deno has no O_DIRECT open, and node:fs writes run on the main thread (an O_DIRECT write there
 * would stall the event loop for the whole transfer), so the calls go to libc through FFI,
 * declared `nonblocking` (each runs on a helper thread and returns a Promise). The buffer's
 * address, length and file offsets must be multiples of DIRECT_IO_ALIGNMENT (core/buffer_pool.ts
 * hands out aligned buffers). Nothing is loaded at import: the first use dlopens libc.
 *
 * errno does not cross the nonblocking FFI boundary, so a failure is reported only as such: the
 * caller then builds the file the buffered way, which reports the real error if it fails too.
 *
 * @module
 */

import { constants } from "node:fs";
import { DIRECT_IO_ALIGNMENT, ffiAllowed, isDirectIoAligned } from "../buffer_pool.ts";

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32", nonblocking: true },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize", nonblocking: true },
  fdatasync: { parameters: ["i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32", nonblocking: true },
} as const;

type LibC = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** O_CLOEXEC on Linux (x86-64 and arm64 alike); not among node:fs's constants. */
export const O_CLOEXEC = 0o2000000;

/** Opens libc for the O_DIRECT calls; null where they cannot be made (not Linux/glibc, no FFI). */
function openLibc(): LibC | null {
  if (Deno.build.os !== "linux" || constants.O_DIRECT === undefined || !ffiAllowed()) return null;
  try {
    return Deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  } catch (_noLibc) {
    // Not glibc: creates stay buffered.
    return null;
  }
}

/**
 * Outcome of {@linkcode DirectIo.writeNewFile}: "done", "unsupported" (the file could not be opened
 * with O_DIRECT, e.g. a file system without it; nothing was created) or "failed" (created, then
 * a write or the flush failed; the file is left for the caller to remove).
 */
export type DirectWriteResult = "done" | "unsupported" | "failed";

/**
 * The O_DIRECT writer of one store. libc is opened on first use, never at import, and kept by
 * the instance (no module state).
 */
export class DirectIo {
  #lib: LibC | null | undefined;

  #libc(): LibC | null {
    if (this.#lib === undefined) this.#lib = openLibc();
    return this.#lib;
  }

  /** Whether O_DIRECT writes through FFI can be tried in this process at all. */
  available(): boolean {
    return this.#libc() !== null;
  }

  /**
   * Creates `path` (O_CREAT|O_EXCL) and writes all of `data` at offset 0 with O_DIRECT, then
   * fdatasyncs it when `sync`. `data` must be aligned (isDirectIoAligned).
   */
  async writeNewFile(path: string, data: Uint8Array, sync: boolean): Promise<DirectWriteResult> {
    const c = this.#libc();
    if (c === null || !isDirectIoAligned(data)) return "unsupported";
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT |
      O_CLOEXEC;
    const fd = await c.open(new TextEncoder().encode(path + "\0"), flags, 0o644);
    if (fd < 0) return "unsupported";
    let ok = true;
    try {
      let done = 0;
      while (done < data.length) {
        const n = Number(
          await c.pwrite(fd, data.subarray(done), BigInt(data.length - done), BigInt(done)),
        );
        // A short O_DIRECT write that is not a multiple of the alignment cannot be continued.
        if (n <= 0 || n % DIRECT_IO_ALIGNMENT !== 0) {
          ok = false;
          break;
        }
        done += n;
      }
      if (ok && sync) ok = (await c.fdatasync(fd)) === 0;
    } finally {
      if ((await c.close(fd)) !== 0) ok = false;
    }
    return ok ? "done" : "failed";
  }
}
