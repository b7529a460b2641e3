/**
 * The store directory's metadata files, as bytes: `DIR/config` (the 40-byte sheepdog_config) and
 * `DIR/epoch/%08u` (the epoch log). Decoding is the caller's (core/proto/config.ts,
 * core/proto/epoch_log.ts): the store does files, not formats. Every write is atomic (tmp +
 * fsync + rename + directory fsync), like v1.0's atomic_create_and_write, and always durable.
 * Also `wipe()`, the on-disk part of MAKE_FS.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { assert } from "../assert.ts";
import { fsyncDir, readFileOrNull, writeFileAtomic } from "./durable_files.ts";
import { errnoOf, storeError } from "./io_error.ts";
import { OBJ_DIR_NAME, STALE_DIR_NAME } from "./object_names.ts";

/** Name of the config file inside the store directory. */
export const CONFIG_FILE_NAME = "config";
/** Name of the epoch log directory inside the store directory. */
export const EPOCH_DIR_NAME = "epoch";

const EPOCH_NAME = /^\d{8,10}$/;
const MAX_EPOCH = 0xffff_ffff;

/** `%08u`: the file name of an epoch. */
export function epochFileName(epoch: number): string {
  assert(Number.isInteger(epoch) && epoch >= 0 && epoch <= MAX_EPOCH, `bad epoch ${epoch}`);
  return String(epoch).padStart(8, "0");
}

/** The bytes of `DIR/config`, or null when the directory was never formatted. */
export async function readConfigBytes(dir: string): Promise<Uint8Array | null> {
  try {
    return await readFileOrNull(`${dir}/${CONFIG_FILE_NAME}`);
  } catch (err) {
    throw storeError(err, `reading ${dir}/${CONFIG_FILE_NAME}`);
  }
}

/** Replaces `DIR/config` atomically and durably. */
export async function writeConfigBytes(dir: string, bytes: Uint8Array): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
    await writeFileAtomic(`${dir}/${CONFIG_FILE_NAME}`, bytes);
  } catch (err) {
    throw storeError(err, `writing ${dir}/${CONFIG_FILE_NAME}`);
  }
}

/** Writes `DIR/epoch/%08u` atomically and durably (replacing an existing one). */
export async function writeEpochBytes(
  dir: string,
  epoch: number,
  bytes: Uint8Array,
): Promise<void> {
  const path = `${dir}/${EPOCH_DIR_NAME}/${epochFileName(epoch)}`;
  try {
    await fsp.mkdir(`${dir}/${EPOCH_DIR_NAME}`, { recursive: true });
    await writeFileAtomic(path, bytes);
  } catch (err) {
    throw storeError(err, `writing ${path}`);
  }
}

/** The bytes of epoch `epoch`, or null when this node has no such epoch file. */
export async function readEpochBytes(dir: string, epoch: number): Promise<Uint8Array | null> {
  const path = `${dir}/${EPOCH_DIR_NAME}/${epochFileName(epoch)}`;
  try {
    return await readFileOrNull(path);
  } catch (err) {
    throw storeError(err, `reading ${path}`);
  }
}

/** Every epoch with a file, ascending (empty when there is no epoch directory). */
export async function listEpochs(dir: string): Promise<number[]> {
  const epochs: number[] = [];
  for (const name of await epochDirNames(dir)) {
    if (!EPOCH_NAME.test(name)) continue;
    const epoch = Number(name);
    if (epoch <= MAX_EPOCH) epochs.push(epoch);
  }
  return epochs.sort((a, b) => a - b);
}

/** Removes the epoch files of every epoch after `epoch`. */
export async function removeEpochsAfter(dir: string, epoch: number): Promise<void> {
  const doomed = (await listEpochs(dir)).filter((e) => e > epoch);
  await removeEpochFiles(dir, doomed);
}

/** Removes every epoch file. */
export async function removeAllEpochs(dir: string): Promise<void> {
  await removeEpochFiles(dir, await listEpochs(dir));
}

/**
 * The on-disk part of MAKE_FS: removes every object, stale object and epoch file (and leftover
 * temporary files), keeping `obj/`, `obj/.stale/`, `epoch/` themselves and everything else in
 * DIR (lock, sock, log, config — which the format rewrites). A PlainStore open on `dir` caches
 * open files: use its removeAll() for the objects instead, or close it first.
 */
export async function wipe(dir: string): Promise<void> {
  const objDir = `${dir}/${OBJ_DIR_NAME}`;
  const epochDir = `${dir}/${EPOCH_DIR_NAME}`;
  try {
    await fsp.mkdir(`${objDir}/${STALE_DIR_NAME}`, { recursive: true });
    await fsp.mkdir(epochDir, { recursive: true });
    for (const parent of [objDir, `${objDir}/${STALE_DIR_NAME}`, epochDir]) {
      for (const name of await fsp.readdir(parent)) {
        if (parent === objDir && name === STALE_DIR_NAME) continue;
        await fsp.rm(`${parent}/${name}`, { recursive: true, force: true });
      }
      await fsyncDir(parent);
    }
  } catch (err) {
    throw storeError(err, `wiping ${dir}`);
  }
}

async function epochDirNames(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(`${dir}/${EPOCH_DIR_NAME}`);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return [];
    throw storeError(err, `listing ${dir}/${EPOCH_DIR_NAME}`);
  }
}

async function removeEpochFiles(dir: string, epochs: number[]): Promise<void> {
  if (epochs.length === 0) return;
  const epochDir = `${dir}/${EPOCH_DIR_NAME}`;
  try {
    for (const epoch of epochs) {
      await fsp.rm(`${epochDir}/${epochFileName(epoch)}`, { force: true });
    }
    await fsyncDir(epochDir);
  } catch (err) {
    throw storeError(err, `removing epochs in ${epochDir}`);
  }
}
