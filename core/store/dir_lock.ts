/**
 * The guard against two sheep on one store directory: an exclusive lock on `DIR/lock`, held as
 * long as the process lives. The kernel drops it when the process dies, however it dies, so a
 * crashed sheep never blocks its restart. The lock is a non-blocking flock(2) (FsFile.tryLock),
 * taken on an open file description of our own; the file holds the holder's pid for the error
 * message of the next one. (v1.0 uses lockf(3), a POSIX record lock that flock does not see: a
 * v1.0 sheep and ours on the same directory are not kept apart.)
 *
 * @module
 */

import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { errnoOf } from "./io_error.ts";

/** Name of the lock file inside the store directory. */
export const LOCK_FILE_NAME = "lock";

/** A held directory lock. */
export interface DirLock {
  /** Path of the lock file. */
  readonly path: string;
  /** Drops the lock (a sheep normally keeps it until it exits). */
  release(): void;
}

/**
 * Takes the exclusive lock of `dir` (creating `DIR` and `DIR/lock` when missing) or fails at once
 * with SYSTEM_ERROR when another process, or another DirLock of this one, holds it.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  const path = `${dir}/${LOCK_FILE_NAME}`;
  let file: Deno.FsFile;
  try {
    await Deno.mkdir(dir, { recursive: true });
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (err) {
    throw new SdError(Res.SYSTEM_ERROR, `cannot open ${path}: ${errorText(err)}`, { cause: err });
  }
  let locked: boolean;
  try {
    locked = await file.tryLock(true);
    if (locked) {
      await file.truncate(0);
      await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    }
  } catch (err) {
    file.close();
    throw new SdError(Res.SYSTEM_ERROR, `cannot lock ${path}: ${errorText(err)}`, { cause: err });
  }
  if (!locked) {
    file.close();
    throw new SdError(
      Res.SYSTEM_ERROR,
      `${dir} is in use by another sheep${await holderText(path)}: cannot lock ${path}`,
    );
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      file.close();
    },
  };
}

/** " (pid N)" from the lock file, or "" when it holds no pid. */
async function holderText(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    // The holder may be gone and its file removed since tryLock failed; the pid is cosmetic.
    if (errnoOf(err) === "ENOENT" || err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
  const pid = text.trim();
  return /^\d+$/.test(pid) ? ` (pid ${pid})` : "";
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
