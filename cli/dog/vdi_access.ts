/**
 * Finding VDIs and reading their inodes the way v1.0 dog does: the name+tag lookup
 * (find_vdi_name), the inode header and its data index (plain data_vdi_id or a hyper volume's
 * B-tree), and the walk over every VDI in the in-use bitmap (parse_vdi).
 *
 * @module
 */

import {
  Flag,
  Op,
  Res,
  resultText,
  SD_MAX_VDI_LEN,
  SD_NR_VDIS,
  SD_VDI_BITMAP_SIZE,
} from "../../core/proto/constants.ts";
import { decodeInodeHeader, type InodeHeader } from "../../core/proto/inode.ts";
import { SdError } from "../../core/proto/sd_error.ts";
import {
  type DataIndex,
  INODE_FIRST_READ,
  readDataIndex as readIndexFrom,
} from "../../core/vdi_client/data_index.ts";
import { encodeFixedString } from "../../core/proto/strings.ts";
import { vidToVdiOid } from "../../core/hash/oid.ts";
import { DogError, Exit } from "./dog_error.ts";
import { dogReq, type DogSession } from "./session.ts";
import { mapBounded } from "./bounded.ts";

export {
  BtreeDataIndex,
  type DataIndex,
  objectCount,
  PlainDataIndex,
} from "../../core/vdi_client/data_index.ts";

/** A snapshot selector: `-s` is an id when numeric, else a tag. */
export interface SnapshotRef {
  id: number;
  tag: string;
}

/** The working VDI. */
export const WORKING: SnapshotRef = { id: 0, tag: "" };

/** name[256] ‖ tag[256], the payload of GET_VDI_INFO and DEL_VDI. */
export function nameTagPayload(name: string, tag: string): Uint8Array {
  const out = new Uint8Array(2 * SD_MAX_VDI_LEN);
  out.set(encodeFixedString(name, SD_MAX_VDI_LEN), 0);
  out.set(encodeFixedString(tag, SD_MAX_VDI_LEN), SD_MAX_VDI_LEN);
  return out;
}

/** Checks that a name or tag fits its 256-byte field; DogError (exit 64) when it does not. */
export function checkNameFits(what: string, text: string): void {
  if (new TextEncoder().encode(text).length >= SD_MAX_VDI_LEN) {
    throw new DogError(Exit.USAGE, [`${what} is too long (at most 255 bytes): ${text}`], {
      showUsage: true,
    });
  }
}

/** GET_VDI_INFO (find_vdi_name): the vid, or the failing result code. */
export async function lookupVdi(
  session: DogSession,
  name: string,
  snap: SnapshotRef,
): Promise<{ result: number; vid: number }> {
  checkNameFits("VDI name", name);
  checkNameFits("Snapshot tag", snap.tag);
  const payload = nameTagPayload(name, snap.tag);
  const req = dogReq(Op.GET_VDI_INFO, { flags: Flag.CMD_WRITE, dataLength: payload.length });
  req.vdi.snapid = snap.id;
  const { rsp } = await session.exec(req, payload);
  return { result: rsp.result, vid: rsp.result === Res.SUCCESS ? rsp.vdi.vdiId : 0 };
}

/** v1.0's line for a VDI that cannot be opened. */
export function openFailureLine(name: string, snap: SnapshotRef, result: number): string {
  return `Failed to open VDI ${name} (snapshot id: ${snap.id} snapshot tag: ${snap.tag}): ${
    resultText(result)
  }`;
}

/**
 * Looks a VDI up or throws DogError with v1.0's "Failed to open VDI" line. The exit code is 1, or
 * `missingExit` when the VDI or tag does not exist.
 */
export async function openVdi(
  session: DogSession,
  name: string,
  snap: SnapshotRef,
  missingExit: number = Exit.FAILURE,
): Promise<number> {
  const { result, vid } = await lookupVdi(session, name, snap);
  if (result !== Res.SUCCESS) {
    const missing = result === Res.NO_VDI || result === Res.NO_TAG;
    throw new DogError(missing ? missingExit : Exit.FAILURE, [
      openFailureLine(name, snap, result),
    ], { result });
  }
  return vid;
}

/**
 * Reads an inode's header (and the B-tree root header), or returns the failing result code
 * (the "Failed to read object" line is printed).
 */
export async function readInodeHead(
  session: DogSession,
  vid: number,
): Promise<{ result: number; header?: InodeHeader; head?: Uint8Array }> {
  const { result, data } = await session.readObject(vidToVdiOid(vid), INODE_FIRST_READ, 0);
  if (result !== Res.SUCCESS) return { result };
  return { result, header: decodeInodeHeader(data), head: data };
}

/**
 * Reads the data index of an inode whose header is `h` (the B-tree of a hyper volume, including
 * its leaf objects). Throws DogError (exit 1) when a read fails.
 */
export async function readDataIndex(
  session: DogSession,
  h: InodeHeader,
  head: Uint8Array,
): Promise<DataIndex> {
  try {
    return await readIndexFrom(h, head, async (oid, offset, length) => {
      const { result, data } = await session.readObject(oid, length, offset);
      if (result !== Res.SUCCESS) throw new DogError(Exit.FAILURE, ["Failed to read inode"]);
      return data;
    });
  } catch (e) {
    // A malformed B-tree (SdError from the decoder); failed reads are DogErrors already.
    if (e instanceof SdError && !(e instanceof DogError)) {
      throw new DogError(Exit.FAILURE, [e.message], { result: e.result });
    }
    throw e;
  }
}

/** An inode header with its data index. */
export interface LoadedInode {
  vid: number;
  header: InodeHeader;
  index: DataIndex;
}

/** Reads a VDI's header and data index; DogError (exit 1) when it cannot. */
export async function loadInode(session: DogSession, vid: number): Promise<LoadedInode> {
  const { result, header, head } = await readInodeHead(session, vid);
  if (result !== Res.SUCCESS || header === undefined || head === undefined) {
    throw new DogError(Exit.FAILURE, [], { result });
  }
  return { vid, header, index: await readDataIndex(session, header, head) };
}

/** Objects owned by the VDI itself and objects it shares with another vid (stat_data_objs). */
export function countObjects(vid: number, index: DataIndex): { mine: number; cow: number } {
  let mine = 0;
  let cow = 0;
  for (const [, owner] of index.allocated()) {
    if (owner === vid) mine++;
    else cow++;
  }
  return { mine, cow };
}

/** Reads a 2 MiB VDI bitmap (READ_VDIS or READ_DEL_VDIS). */
async function readBitmap(session: DogSession, opcode: number): Promise<Uint8Array> {
  const req = dogReq(opcode, { dataLength: SD_VDI_BITMAP_SIZE });
  const { rsp, data } = await session.exec(req);
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.SYSFAIL, [resultText(rsp.result)], { result: rsp.result });
  }
  const out = new Uint8Array(SD_VDI_BITMAP_SIZE);
  out.set(data.subarray(0, SD_VDI_BITMAP_SIZE));
  return out;
}

/** The in-use VDI bitmap (READ_VDIS). */
export function readVdiBitmap(session: DogSession): Promise<Uint8Array> {
  return readBitmap(session, Op.READ_VDIS);
}

/** Vids whose bit is set, ascending. */
export function setBits(bitmap: Uint8Array): number[] {
  const vids: number[] = [];
  for (let byte = 0; byte < bitmap.length; byte++) {
    const b = bitmap[byte];
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if (b & (1 << bit)) {
        const vid = byte * 8 + bit;
        if (vid < SD_NR_VDIS) vids.push(vid);
      }
    }
  }
  return vids;
}

/** Requests kept in flight while walking VDIs. */
const WALK_WINDOW = 16;

/**
 * v1.0's parse_vdi: every vid of the in-use bitmap in increasing order (skipping deleted ones when
 * `noDeleted`), its inode header read, those with an empty name (deleted) skipped, and — with
 * `withIndex` — its data index read. Failed inode reads print "Failed to read inode header" and
 * are skipped. Calls `visit` in vid order.
 */
export async function forEachVdi(
  session: DogSession,
  opts: { noDeleted: boolean; withIndex: boolean },
  visit: (inode: LoadedInode | { vid: number; header: InodeHeader }) => Promise<void> | void,
): Promise<void> {
  const inuse = await readVdiBitmap(session);
  const deleted = await readBitmap(session, Op.READ_DEL_VDIS);
  const vids = setBits(inuse).filter((vid) =>
    !(opts.noDeleted && (deleted[vid >> 3] & (1 << (vid & 7))) !== 0)
  );
  type Item = { failed: string } | { inode: LoadedInode | { vid: number; header: InodeHeader } };
  await mapBounded(vids, WALK_WINDOW, async (vid): Promise<Item | undefined> => {
    const { result, header, head } = await readInodeHead(session, vid);
    if (result !== Res.SUCCESS || header === undefined || head === undefined) {
      return { failed: "Failed to read inode header" };
    }
    if (header.name === "") return undefined;
    if (!opts.withIndex) return { inode: { vid: header.vdiId, header } };
    try {
      return {
        inode: { vid: header.vdiId, header, index: await readDataIndex(session, header, head) },
      };
    } catch (e) {
      if (e instanceof DogError) return { failed: "Failed to read inode" };
      throw e;
    }
  }, async (item) => {
    if (item === undefined) return;
    if ("failed" in item) {
      await session.out.error(item.failed);
      return;
    }
    await visit(item.inode);
  });
}
