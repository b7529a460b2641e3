/**
 * The work steps of the VDI cluster ops (NEW_VDI, DEL_VDI, GET_VDI_INFO, LOCK_VDI, GET_VDI_ATTR).
 * They run on the requesting node inside the cluster-wide exclusive section, read and write inode
 * and attribute objects through the gateway, and return what the main step (applied on every node)
 * needs. The decisions themselves (which vid, which match) are the pure functions of core/vdi.
 *
 * @module
 */

import {
  ClusterFlag,
  Flag,
  Res,
  SD_ATTR_OBJ_SIZE,
  SD_INODE_HEADER_SIZE,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
} from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { decodeFixedString } from "../proto/strings.ts";
import {
  dataObjectCount,
  decodeInodeHeader,
  emptyInodeHeader,
  encodeInodeHeader,
  type InodeHeader,
} from "../proto/inode.ts";
import { decodeVdiAttr, encodeVdiAttr } from "../proto/vdi_attr.ts";
import { attrId, vidOfName, vidToAttrOid, vidToVdiOid } from "../hash/oid.ts";
import { chooseVdi, planLookup } from "../vdi/vid_alloc.ts";
import type { SdReq } from "../proto/header.ts";
import type { SheepContext } from "./context.ts";
import type { Gateway } from "./gateway.ts";

/** Largest VDI of the plain store policy: 2^20 objects. */
const MAX_PLAIN_DATA_OBJS = 1 << 20;
/** Bytes of an inode that lookups read: up to and including parent_vdi_id and btree_counter. */
const LOOKUP_READ_SIZE = 572;

/** Current time in v1.0's format: seconds << 32 | nanoseconds. */
export function nowStamp(nowMs: number): bigint {
  const sec = BigInt(Math.floor(nowMs / 1000));
  const nsec = BigInt((nowMs % 1000) * 1_000_000);
  return (sec << 32n) | nsec;
}

/** Name and tag of a VDI request payload (name[256] and optionally tag[256]). */
export function parseNameTag(data: Uint8Array | undefined): { name: string; tag: string } {
  if (!data || data.length < SD_MAX_VDI_LEN) {
    throw new SdError(Res.INVALID_PARMS, "the VDI name payload must be at least 256 bytes");
  }
  const name = decodeFixedString(data, 0, SD_MAX_VDI_LEN);
  const tag = data.length >= SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN
    ? decodeFixedString(data, SD_MAX_VDI_LEN, SD_MAX_VDI_TAG_LEN)
    : "";
  if (name.length === 0) throw new SdError(Res.INVALID_PARMS, "empty VDI name");
  return { name, tag };
}

/** A found VDI. */
export interface FoundVdi {
  vid: number;
  header: InodeHeader;
}

/** Reads the lookup-relevant part of the inode of `vid`. */
export async function readInodeHeader(
  gw: Gateway,
  vid: number,
  full = false,
): Promise<InodeHeader> {
  const bytes = await gw.read(vidToVdiOid(vid), 0, full ? SD_INODE_HEADER_SIZE : LOOKUP_READ_SIZE);
  return decodeInodeHeader(bytes);
}

/**
 * Looks `name` up with v1.0's rules (tag or snapid for a snapshot, neither for the working VDI).
 * Also returns the free vid the name would get.
 */
export async function lookupVdi(
  ctx: SheepContext,
  gw: Gateway,
  name: string,
  want: { tag?: string; snapId?: number },
): Promise<{ found: FoundVdi | null; result: number; freeVid: number | null }> {
  const recycle = (ctx.cinfo.flags & ClusterFlag.RECYCLE_VID) !== 0;
  const plan = planLookup(ctx.vdis.inUse, ctx.vdis.deleted, name, recycle);
  const headers: { vid: number; header: InodeHeader }[] = [];
  for (const vid of plan.candidates) {
    let header: InodeHeader;
    try {
      header = await readInodeHeader(gw, vid);
    } catch (e) {
      if (e instanceof SdError && e.result === Res.NO_OBJ) continue; // a vid without inode
      throw e;
    }
    headers.push({ vid, header });
    const choice = chooseVdi(headers, name, want);
    if (choice.result === Res.SUCCESS && choice.vid !== undefined) {
      return { found: { vid: choice.vid, header }, result: Res.SUCCESS, freeVid: plan.freeVid };
    }
  }
  const choice = chooseVdi(headers, name, want);
  if (choice.result === Res.SUCCESS && choice.vid !== undefined) {
    const h = headers.find((x) => x.vid === choice.vid)!;
    return { found: h, result: Res.SUCCESS, freeVid: plan.freeVid };
  }
  return { found: null, result: choice.result, freeVid: plan.freeVid };
}

/** What NEW_VDI's main step registers on every node. */
export interface NewVdiOutcome {
  vid: number;
  copies: number;
  copyPolicy: number;
  blockSizeShift: number;
  parentVid: number;
  /** The vid that became a snapshot (0 when none). */
  snapshotVid: number;
}

/**
 * NEW_VDI work step: a fresh VDI (snapid 0, base 0), a snapshot of the working VDI (snapid ≠ 0),
 * or a clone of snapshot `base` (snapid 0, base ≠ 0). Writes the new inode (and the frozen base's).
 */
export async function newVdiWork(
  ctx: SheepContext,
  gw: Gateway,
  req: SdReq,
  data: Uint8Array | undefined,
  nowMs: number,
): Promise<NewVdiOutcome> {
  if (!data || data.length !== SD_MAX_VDI_LEN) {
    throw new SdError(Res.INVALID_PARMS, "NEW_VDI needs a 256-byte name payload");
  }
  const { name } = parseNameTag(data);
  const v = req.vdi;
  const bss = v.blockSizeShift || ctx.cinfo.blockSizeShift || 22;
  if (bss < 20 || bss > 31) throw new SdError(Res.INVALID_PARMS, `block size shift ${bss}`);
  if (v.storePolicy === 0 && v.vdiSize > BigInt(MAX_PLAIN_DATA_OBJS) * (1n << BigInt(bss))) {
    throw new SdError(Res.INVALID_PARMS, `VDI size ${v.vdiSize} is too large`);
  }
  const copies = v.copies || ctx.cinfo.nrCopies;
  const now = nowStamp(nowMs);
  const { found, freeVid } = await lookupVdi(ctx, gw, name, {});
  if (freeVid === null) throw new SdError(Res.FULL_VDI);

  if (v.snapid === 0 && v.baseVdiId === 0) {
    if (found) throw new SdError(Res.VDI_EXIST);
    const h: InodeHeader = {
      ...emptyInodeHeader(),
      name,
      createTime: now,
      vdiSize: v.vdiSize,
      copyPolicy: v.copyPolicy,
      storePolicy: v.storePolicy,
      nrCopies: copies,
      blockSizeShift: bss,
      snapId: 1,
      vdiId: freeVid,
    };
    await gw.create(vidToVdiOid(freeVid), 0, encodeInodeHeader(h), copies);
    return {
      vid: freeVid,
      copies,
      copyPolicy: v.copyPolicy,
      blockSizeShift: bss,
      parentVid: 0,
      snapshotVid: 0,
    };
  }

  // Snapshot (snapid ≠ 0) or clone (snapid 0, base ≠ 0): the new inode starts as a copy of base.
  const baseVid = v.baseVdiId || found?.vid;
  if (!baseVid) throw new SdError(Res.NO_BASE_VDI);
  const isClone = v.snapid === 0;
  if (isClone && found) throw new SdError(Res.VDI_EXIST);
  if (!isClone && !found) throw new SdError(Res.NO_VDI);
  const baseHeader = await readInodeHeader(gw, baseVid, true).catch((e) => {
    throw new SdError(Res.BASE_VDI_READ, `cannot read base VDI ${baseVid.toString(16)}`, {
      cause: e,
    });
  });
  const nobjs = dataObjectCount(baseHeader.vdiSize, baseHeader.blockSizeShift);
  const baseOid = vidToVdiOid(baseVid);
  const index = nobjs > 0
    ? await gw.read(baseOid, SD_INODE_HEADER_SIZE, nobjs * 4)
    : new Uint8Array();
  const bcopies = baseHeader.nrCopies || copies;
  let snapshotVid = 0;
  if (!isClone) {
    // Freeze the working VDI (or, for a rollback, the current one) as a snapshot.
    const cur = found!;
    const frozen: InodeHeader = { ...(await readInodeHeader(gw, cur.vid, true)), snapCtime: now };
    await gw.write(vidToVdiOid(cur.vid), 0, encodeInodeHeader(frozen), bcopies);
    snapshotVid = cur.vid;
  }
  const h: InodeHeader = {
    ...baseHeader,
    name,
    tag: "",
    createTime: now,
    snapCtime: 0n,
    vmClockNsec: 0n,
    vmStateSize: 0n,
    vdiSize: isClone ? (v.vdiSize || baseHeader.vdiSize) : baseHeader.vdiSize,
    nrCopies: isClone ? copies : bcopies,
    snapId: isClone ? 1 : (found!.header.snapId + 1),
    vdiId: freeVid,
    parentVdiId: baseVid,
  };
  const buf = new Uint8Array(SD_INODE_HEADER_SIZE + index.length);
  encodeInodeHeader(h, buf);
  buf.set(index, SD_INODE_HEADER_SIZE);
  await gw.create(vidToVdiOid(freeVid), 0, buf, h.nrCopies);
  return {
    vid: freeVid,
    copies: h.nrCopies,
    copyPolicy: h.copyPolicy,
    blockSizeShift: h.blockSizeShift,
    parentVid: baseVid,
    snapshotVid,
  };
}

/** DEL_VDI work step: clears the inode (unless data entries remain) and returns the vid. */
export async function delVdiWork(
  ctx: SheepContext,
  gw: Gateway,
  req: SdReq,
  data: Uint8Array | undefined,
): Promise<number> {
  const { name, tag } = parseNameTag(data);
  const { found, result } = await lookupVdi(ctx, gw, name, { tag, snapId: req.vdi.snapid });
  if (!found) throw new SdError(result);
  const vid = found.vid;
  const full = await readInodeHeader(gw, vid, true);
  const nobjs = dataObjectCount(full.vdiSize, full.blockSizeShift);
  const copies = full.nrCopies || gw.copiesFor(vidToVdiOid(vid));
  let inUse = false;
  if (nobjs > 0 && full.storePolicy === 0) {
    const index = await gw.read(vidToVdiOid(vid), SD_INODE_HEADER_SIZE, nobjs * 4);
    const words = new Uint32Array(index.buffer, index.byteOffset, nobjs);
    inUse = words.some((w) => w !== 0);
  }
  if (inUse) {
    ctx.log.error("VDI still has data objects: its inode is kept", {
      vdi: name,
      vid: vid.toString(16),
    });
  } else {
    const cleared: InodeHeader = { ...full, name: "", vdiSize: 0n };
    await gw.write(vidToVdiOid(vid), 0, encodeInodeHeader(cleared), copies);
  }
  return vid;
}

/** GET_VDI_ATTR work step: finds, creates or deletes an attribute object; returns its ids. */
export async function vdiAttrWork(
  ctx: SheepContext,
  gw: Gateway,
  req: SdReq,
  data: Uint8Array | undefined,
): Promise<{ nameVid: number; attrId: number; copies: number }> {
  if (!data) throw new SdError(Res.INVALID_PARMS, "GET_VDI_ATTR needs an attribute payload");
  const attr = decodeVdiAttr(data);
  const { found, result } = await lookupVdi(ctx, gw, attr.name, {
    tag: attr.tag,
    snapId: attr.snapId,
  });
  if (!found) throw new SdError(result);
  const nameVid = vidOfName(attr.name) || 1;
  const copies = found.header.nrCopies || ctx.cinfo.nrCopies;
  const start = attrId(attr.name, attr.tag, attr.snapId, attr.key);
  const create = (req.flags & Flag.CMD_CREAT) !== 0;
  const excl = (req.flags & Flag.CMD_EXCL) !== 0;
  const del = (req.flags & Flag.CMD_DEL) !== 0;
  for (let i = 0; i < 0x100000000; i++) {
    const id = (start + i) >>> 0;
    if (i > 0 && id === start) break;
    const oid = vidToAttrOid(nameVid, id);
    let existing: Uint8Array | null = null;
    try {
      existing = await gw.read(oid, 0, SD_ATTR_OBJ_SIZE, copies);
    } catch (e) {
      if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
    }
    if (existing === null) {
      if (!create) throw new SdError(Res.NO_OBJ, `attribute '${attr.key}' not found`);
      const full = encodeVdiAttr({ ...attr, ctime: found.header.createTime });
      await gw.create(oid, 0, full, copies);
      return { nameVid, attrId: id, copies };
    }
    const cur = decodeVdiAttr(existing);
    const same = cur.name === attr.name && cur.tag === attr.tag && cur.snapId === attr.snapId &&
      cur.key === attr.key;
    if (!same) continue;
    if (excl) throw new SdError(Res.VDI_EXIST, `attribute '${attr.key}' exists`);
    if (del) {
      await gw.write(oid, 0, new Uint8Array(1), copies);
      return { nameVid, attrId: id, copies };
    }
    if (create && data.length > 784) {
      // setattr on an existing key replaces its value.
      const full = encodeVdiAttr({ ...attr, ctime: found.header.createTime });
      await gw.write(oid, 0, full, copies);
    }
    return { nameVid, attrId: id, copies };
  }
  throw new SdError(Res.FULL_VDI, "no free attribute slot");
}
