/**
 * Small durability primitives over `node:fs/promises`: fsync of a directory (makes a create,
 * rename or unlink inside it survive a crash), complete positional writes and reads, and the
 * atomic replace of a small file (tmp + fsync + rename + directory fsync) used for metadata.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { dirname } from "node:path";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { errnoOf } from "./io_error.ts";
import { TMP_SUFFIX } from "./object_names.ts";

/** Flushes a directory's entries to disk. */
export async function fsyncDir(path: string): Promise<void> {
  const dir = await fsp.open(path, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Writes all of `data` at `position`, looping over short writes. */
export async function writeFully(
  fh: fsp.FileHandle,
  data: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new SdError(Res.EIO, `write returned ${bytesWritten}`);
    done += bytesWritten;
  }
}

/** Fills all of `buf` from `position`; hitting the end of the file first is an EIO. */
export async function readFully(
  fh: fsp.FileHandle,
  buf: Uint8Array,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead <= 0) {
      throw new SdError(Res.EIO, `short read: ${done} of ${buf.length} bytes at ${position}`);
    }
    done += bytesRead;
  }
}

/**
 * Replaces `path` by a file holding `data`, atomically: a reader (or a restart after a crash) sees
 * the old content or the new one, never a mix. Always durable (metadata is rare and precious).
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = path + TMP_SUFFIX;
  const fh = await fsp.open(tmp, "w");
  try {
    await writeFully(fh, data, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** The content of `path`, or null when it does not exist. */
export async function readFileOrNull(path: string): Promise<Uint8Array | null> {
  try {
    const buf = await fsp.readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return null;
    throw err;
  }
}

/** Removes `path`; a path that is already gone is not an error. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
