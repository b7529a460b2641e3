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
import { attrId, vidOfName, vidToAttrOid, vidToVdiOid, vidToVmstateOid } from "../hash/oid.ts";
import { copyReferences, decodeIndex, GREF_SIZE, grefOffset } from "../vdi/gref.ts";
import { reclaimableFamily } from "../vdi/family.ts";
import { contextLocks, INODE_LOCKS } from "./keyed_lock.ts";
import { chooseVdi, planLookup } from "../vdi/vid_alloc.ts";
import type { SdReq } from "../proto/header.ts";
import type { SheepContext } from "./context.ts";
import type { Gateway } from "./gateway.ts";

/** Largest VDI of the plain store policy: 2^20 objects. */
const MAX_PLAIN_DATA_OBJS = 1 << 20;
/** Bytes of a hyper volume's B-tree root node (the data_vdi_id area) copied to a snapshot. */
const BTREE_ROOT_SIZE = 4 * MAX_PLAIN_DATA_OBJS;
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
): Promise<{
  found: FoundVdi | null;
  result: number;
  freeVid: number | null;
  /** snap_id of the newest VDI of that name (the first met by the scan), 0 when none. */
  nameSnapId: number;
}> {
  const recycle = (ctx.cinfo.flags & ClusterFlag.RECYCLE_VID) !== 0;
  const plan = planLookup(ctx.vdis.inUse, ctx.vdis.deleted, name, recycle);
  const headers: { vid: number; header: InodeHeader }[] = [];
  let nameSnapId = 0;
  for (const vid of plan.candidates) {
    let header: InodeHeader;
    try {
      header = await readInodeHeader(gw, vid);
    } catch (e) {
      if (e instanceof SdError && e.result === Res.NO_OBJ) continue; // a vid without inode
      throw e;
    }
    headers.push({ vid, header });
    if (nameSnapId === 0 && header.name === name) nameSnapId = header.snapId;
    const choice = chooseVdi(headers, name, want);
    if (choice.result === Res.SUCCESS && choice.vid !== undefined) {
      return {
        found: { vid: choice.vid, header },
        result: Res.SUCCESS,
        freeVid: plan.freeVid,
        nameSnapId,
      };
    }
  }
  const choice = chooseVdi(headers, name, want);
  if (choice.result === Res.SUCCESS && choice.vid !== undefined) {
    const h = headers.find((x) => x.vid === choice.vid)!;
    return { found: h, result: Res.SUCCESS, freeVid: plan.freeVid, nameSnapId };
  }
  return { found: null, result: choice.result, freeVid: plan.freeVid, nameSnapId };
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
  const { found, freeVid, nameSnapId } = await lookupVdi(ctx, gw, name, {});
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

  // Snapshot (snapid ≠ 0), rebase (snapid ≠ 0, base ≠ the working VDI) or clone (snapid 0,
  // base ≠ 0): the new inode starts as a copy of base's references.
  // A snapshot request with a base but no working VDI (QEMU deleted it to branch off an opened
  // snapshot, or dog's restore failed after deleting it) creates a working VDI from base.
  const isClone = v.snapid === 0;
  if (isClone && found) throw new SdError(Res.VDI_EXIST);
  if (!isClone && !found && !v.baseVdiId) throw new SdError(Res.NO_VDI);
  const baseVid = v.baseVdiId || found!.vid;
  const curVid = isClone || !found ? 0 : found.vid;
  const branch = isClone || !found;
  const locks = contextLocks<number>(ctx, INODE_LOCKS);
  return await locks.withAll(curVid ? [baseVid, curVid] : [baseVid], async () => {
    const baseHeader = await readInodeHeader(gw, baseVid, true).catch((e) => {
      throw new SdError(Res.BASE_VDI_READ, `cannot read base VDI ${baseVid.toString(16)}`, {
        cause: e,
      });
    });
    if (baseHeader.name === "" && baseHeader.vdiSize === 0n) {
      throw new SdError(Res.NO_BASE_VDI, `base VDI ${baseVid.toString(16)} is deleted`);
    }
    // Another VDI may share only a snapshot's objects: a writable base would change them in place.
    if (baseVid !== curVid && baseHeader.snapCtime === 0n) {
      throw new SdError(Res.INVALID_PARMS, `base VDI ${baseVid.toString(16)} is not a snapshot`);
    }
    const plain = baseHeader.storePolicy === 0;
    const nobjs = dataObjectCount(baseHeader.vdiSize, baseHeader.blockSizeShift);
    const baseOid = vidToVdiOid(baseVid);
    const bcopies = baseHeader.nrCopies || copies;
    const indexBytes = nobjs > 0
      ? await gw.read(baseOid, SD_INODE_HEADER_SIZE, plain ? nobjs * 4 : BTREE_ROOT_SIZE, bcopies)
      : new Uint8Array();
    let copyGrefs: Uint8Array | null = null;
    let sourceGrefs: Uint8Array | null = null;
    if (plain && nobjs > 0) {
      const index = decodeIndex(indexBytes);
      if (index.some((x) => x !== 0)) {
        const grefs = await gw.read(baseOid, grefOffset(0), nobjs * GREF_SIZE, bcopies);
        const r = copyReferences(index, grefs);
        sourceGrefs = r.source;
        copyGrefs = r.copy;
      }
    }
    // 1. The base: frozen when it is the working VDI being snapshotted; its references counted
    //    once more before any copy of them exists (a crash in between only leaks).
    let snapshotVid = 0;
    if (curVid !== 0 && curVid === baseVid) {
      const frozen: InodeHeader = { ...baseHeader, snapCtime: now };
      await gw.write(baseOid, 0, encodeInodeHeader(frozen), bcopies);
      snapshotVid = curVid;
    }
    if (sourceGrefs) await gw.write(baseOid, grefOffset(0), sourceGrefs, bcopies);
    // 2. A rebase freezes the working VDI, whose references stay as they are.
    if (curVid !== 0 && curVid !== baseVid) {
      const cur = await readInodeHeader(gw, curVid, true);
      await gw.write(
        vidToVdiOid(curVid),
        0,
        encodeInodeHeader({ ...cur, snapCtime: now }),
        cur.nrCopies || copies,
      );
      snapshotVid = curVid;
    }
    // 3. The new inode: base's entries, the next generation of base's references.
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
      snapId: branch ? nameSnapId + 1 : found!.header.snapId + 1,
      vdiId: freeVid,
      parentVdiId: baseVid,
    };
    // The references' grefs land before the entries that make them references: after a crash
    // in between, the new inode names nothing (a leak), never an object with a wrong gref.
    const newOid = vidToVdiOid(freeVid);
    if (copyGrefs) {
      await gw.create(newOid, 0, encodeInodeHeader(h), h.nrCopies);
      await gw.write(newOid, grefOffset(0), copyGrefs, h.nrCopies);
      await gw.write(newOid, SD_INODE_HEADER_SIZE, indexBytes, h.nrCopies);
    } else {
      const buf = new Uint8Array(SD_INODE_HEADER_SIZE + indexBytes.length);
      encodeInodeHeader(h, buf);
      buf.set(indexBytes, SD_INODE_HEADER_SIZE);
      await gw.create(newOid, 0, buf, h.nrCopies);
    }
    return {
      vid: freeVid,
      copies: h.nrCopies,
      copyPolicy: h.copyPolicy,
      blockSizeShift: h.blockSizeShift,
      parentVid: baseVid,
      snapshotVid,
    };
  });
}

/** What DEL_VDI's main step applies on every node. */
export interface DelVdiOutcome {
  vid: number;
  /** RECYCLE_VID: vids whose whole family is deleted and whose inodes were removed. */
  freed: number[];
}

/**
 * DEL_VDI work step. A VDI whose data entries are all released (dog releases them first) loses its
 * name and size, and everything after the header is zeroed (its grefs; data_vdi_id is zero
 * already); its VM state objects are removed. A VDI that still has entries keeps its inode (as in
 * v1.0, only logged). Either way it is marked deleted. On a RECYCLE_VID cluster, when every member
 * of its family is deleted, the family's inodes are removed and its vids freed.
 */
export async function delVdiWork(
  ctx: SheepContext,
  gw: Gateway,
  req: SdReq,
  data: Uint8Array | undefined,
): Promise<DelVdiOutcome> {
  const { name, tag } = parseNameTag(data);
  const { found, result } = await lookupVdi(ctx, gw, name, { tag, snapId: req.vdi.snapid });
  if (!found) throw new SdError(result);
  const vid = found.vid;
  const oid = vidToVdiOid(vid);
  await contextLocks<number>(ctx, INODE_LOCKS).with(vid, async () => {
    const full = await readInodeHeader(gw, vid, true);
    const nobjs = dataObjectCount(full.vdiSize, full.blockSizeShift);
    const copies = full.nrCopies || gw.copiesFor(oid);
    let inUse = false;
    if (nobjs > 0 && full.storePolicy === 0) {
      const index = decodeIndex(await gw.read(oid, SD_INODE_HEADER_SIZE, nobjs * 4, copies));
      inUse = index.some((w) => w !== 0);
    }
    if (inUse) {
      ctx.log.error("VDI still has data objects: its inode is kept", {
        vdi: name,
        vid: vid.toString(16),
      });
      return;
    }
    if (full.vmStateSize > 0n) {
      const objSize = BigInt(2 ** (full.blockSizeShift || 22));
      const n = Number((full.vmStateSize + objSize - 1n) / objSize);
      for (let i = 0; i < n; i++) await gw.remove(vidToVmstateOid(vid, i), copies);
    }
    const cleared: InodeHeader = { ...full, name: "", vdiSize: 0n };
    await gw.write(oid, 0, encodeInodeHeader(cleared), copies);
    if (nobjs > 0 && full.storePolicy === 0) {
      await gw.write(oid, grefOffset(0), new Uint8Array(nobjs * GREF_SIZE), copies);
    }
  });
  let freed: number[] = [];
  // A record learnt from a lock only has no parent link yet: the family could look smaller than
  // it is, so nothing is reclaimed until every record is complete (a leak, never a loss).
  if ((ctx.cinfo.flags & ClusterFlag.RECYCLE_VID) !== 0 && !ctx.vdis.hasPartial()) {
    freed = reclaimableFamily(vid, ctx.vdis.all());
    for (const f of freed) {
      await gw.remove(vidToVdiOid(f)).catch((e) =>
        ctx.log.warn("cannot remove the inode of a reclaimed VDI", {
          vid: f.toString(16),
          error: String(e),
        })
      );
    }
  }
  return { vid, freed };
}

/** DEL_VDI's outcome as carried to every node: vid, count, freed vids (u32 LE each). */
export function encodeDelVdiOutcome(o: DelVdiOutcome): Uint8Array {
  const out = new Uint8Array(8 + 4 * o.freed.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, o.vid, true);
  v.setUint32(4, o.freed.length, true);
  o.freed.forEach((f, i) => v.setUint32(8 + 4 * i, f, true));
  return out;
}

/** Decodes encodeDelVdiOutcome(); an empty payload (an older sender) frees nothing. */
export function decodeDelVdiOutcome(buf: Uint8Array, vid: number): DelVdiOutcome {
  if (buf.length < 8) return { vid, freed: [] };
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const n = Math.min(v.getUint32(4, true), Math.floor((buf.length - 8) / 4));
  const freed: number[] = [];
  for (let i = 0; i < n; i++) freed.push(v.getUint32(8 + 4 * i, true));
  return { vid: v.getUint32(0, true), freed };
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
