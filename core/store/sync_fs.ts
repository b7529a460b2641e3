/**
 * Making everything written to a store's file system durable, as syncfs(2) does: what a sheep does
 * when it opens its store, since the process before it may have acknowledged writeback writes
 * (see plain_store.ts) that no flush reached.
 *
 * Deno has no syncfs: it is called in libc through FFI (declared `nonblocking`, so it runs on a
 * helper thread). Where that cannot be done (no FFI permission, not Linux/glibc, a failed call:
 * errno does not cross the nonblocking FFI boundary) every regular file in the directory is
 * fdatasync'ed instead, which also reports the real error of a failure. Nothing is loaded at
 * import: each call dlopens libc and closes it again (once per store open).
 *
 * @module
 */

import { constants } from "node:fs";
import { ffiAllowed } from "../buffer_pool.ts";
import { O_CLOEXEC } from "./direct_io.ts";

const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32", nonblocking: true },
  syncfs: { parameters: ["i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32", nonblocking: true },
} as const;

/** Files fdatasync'ed at once by the fallback. */
const FALLBACK_CONCURRENCY = 32;

/** Options of {@linkcode syncFileSystem}. */
export interface SyncFileSystemOptions {
  /** Try syncfs(2) through FFI first (default true); false: fdatasync each file of `dir`. */
  readonly ffi?: boolean;
}

/**
 * Makes every write to the file system holding `dir` durable (the files of `dir` at least).
 * Rejects when `dir` cannot be read or a file cannot be synced.
 */
export async function syncFileSystem(
  dir: string,
  options: SyncFileSystemOptions = {},
): Promise<void> {
  if ((options.ffi ?? true) && await syncfs(dir)) return;
  await syncEachFile(dir);
}

/** syncfs(2) through FFI; false when it could not be done. */
async function syncfs(dir: string): Promise<boolean> {
  if (Deno.build.os !== "linux" || constants.O_DIRECTORY === undefined || !ffiAllowed()) {
    return false;
  }
  let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch (_noLibc) {
    // Not glibc: the per-file way.
    return false;
  }
  try {
    const c = lib.symbols;
    const flags = constants.O_RDONLY | constants.O_DIRECTORY | O_CLOEXEC;
    const fd = await c.open(new TextEncoder().encode(dir + "\0"), flags, 0);
    if (fd < 0) return false;
    let ok = false;
    try {
      ok = (await c.syncfs(fd)) === 0;
    } finally {
      if ((await c.close(fd)) !== 0) ok = false;
    }
    return ok;
  } finally {
    lib.close();
  }
}

/** fdatasync of every regular file directly in `dir`. */
async function syncEachFile(dir: string): Promise<void> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  for (let i = 0; i < names.length; i += FALLBACK_CONCURRENCY) {
    await Promise.all(
      names.slice(i, i + FALLBACK_CONCURRENCY).map(async (name) => {
        let f: Deno.FsFile;
        try {
          f = await Deno.open(`${dir}/${name}`, { read: true });
        } catch (err) {
          // Removed since it was listed: nothing of it to make durable.
          if (err instanceof Deno.errors.NotFound) return;
          throw err;
        }
        try {
          await f.syncData();
        } finally {
          f.close();
        }
      }),
    );
  }
}
