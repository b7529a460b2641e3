/**
 * `dog vdi …`: create, snapshot, clone, delete, rollback, list, tree, graph, resize, read, write,
 * setattr, getattr, backup, restore, object location|map|dump-inode and lock list|unlock.
 *
 * @module
 */

import {
  Flag,
  MAX_DATA_OBJS,
  Op,
  Res,
  resultText,
  SD_ATTR_OBJ_SIZE,
  SD_CLUSTER_INFO_SIZE,
  SD_DATA_OBJ_SIZE,
  SD_INODE_HEADER_SIZE,
  SD_MAX_VDI_ATTR_KEY_LEN,
  SD_MAX_VDI_ATTR_VALUE_LEN,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
} from "../../core/proto/constants.ts";
import { decodeClusterInfo } from "../../core/proto/cluster_info.ts";
import { type InodeHeader, isSnapshot } from "../../core/proto/inode.ts";
import { encodeFixedString } from "../../core/proto/strings.ts";
import { decodeVdiAttr, encodeVdiAttr } from "../../core/proto/vdi_attr.ts";
import { vidToAttrOid, vidToDataOid, vidToVdiOid } from "../../core/hash/oid.ts";
import { buildRing } from "../../core/placement/ring.ts";
import { MAX_REQUEST_DATA } from "../../core/limits.ts";
import { type SheepRequest, VdiIoError, VdiVolume } from "../../core/vdi_client/volume.ts";
import { mapBounded } from "./bounded.ts";
import type { CommandContext, CommandGroup, OptionSpec } from "./command_spec.ts";
import { DogError, Exit, ReportedError, usageError } from "./dog_error.ts";
import {
  type NodeHolding,
  OBJECT_MAP_HEADER,
  objectLocationText,
  objectMapRow,
  VDI_LIST_HEADER,
  type VdiListEntry,
  vdiListRow,
} from "./format.ts";
import {
  blockSizeShiftOption,
  copiesOption,
  indexOption,
  positiveIntOption,
  snapshotOption,
} from "./option_values.ts";
import { dogReq } from "./session.ts";
import { confirm } from "./confirm.ts";
import {
  GRAPH_FOOTER,
  GRAPH_HEADER,
  graphEntry,
  renderTree,
  treeLabel,
  type TreeVdi,
} from "./vdi_tree.ts";
import {
  BACKUP_HEADER_SIZE,
  BackupFormatError,
  encodeBackupHeader,
  encodeEndRecord,
  encodeRecordHeader,
  isBackupHeader,
  readBackupRecords,
  trimDiff,
} from "../../core/vdi/backup_stream.ts";
import { invalidSizeLines, parseSize, sizeToStr } from "./size.ts";
import { vdiCheckCommand } from "./recovery_cmds.ts";
import { vdiLockCommand } from "./vdi_lock.ts";
import { dateOfSeconds, formatSecond, sdTimeSeconds } from "./time_format.ts";
import {
  checkNameFits,
  countObjects,
  forEachVdi,
  type LoadedInode,
  loadInode,
  nameTagPayload,
  objectCount,
  openVdi,
  PlainDataIndex,
  readInodeHead,
  type SnapshotRef,
  WORKING,
} from "./vdi_access.ts";

const VDI_OPTIONS: readonly OptionSpec[] = [
  { short: "P", long: "prealloc", hasArg: false, desc: "preallocate all the data objects" },
  { short: "n", long: "no-share", hasArg: false, desc: "share nothing with its parent" },
  { short: "i", long: "index", hasArg: true, desc: "specify the index of data objects" },
  { short: "s", long: "snapshot", hasArg: true, desc: "specify a snapshot id or tag name" },
  { short: "x", long: "exclusive", hasArg: false, desc: "write in an exclusive mode" },
  { short: "d", long: "delete", hasArg: false, desc: "delete a key" },
  { short: "w", long: "writeback", hasArg: false, desc: "use writeback mode" },
  { short: "c", long: "copies", hasArg: true, desc: "specify the data redundancy level" },
  { short: "e", long: "exist", hasArg: false, desc: "only check objects exist or not" },
  { short: "y", long: "hyper", hasArg: false, desc: "create a hyper volume" },
  {
    short: "z",
    long: "block_size_shift",
    hasArg: true,
    desc: "specify the bit shift num for data object size",
  },
  {
    short: "B",
    long: "batch-size",
    hasArg: true,
    desc: "number of inode entries released per write when deleting",
  },
  { short: "I", long: "interval", hasArg: true, desc: "seconds to wait between those writes" },
  {
    short: "F",
    long: "from",
    hasArg: true,
    desc: "create a differential backup from the snapshot",
  },
  { short: "f", long: "force", hasArg: false, desc: "do operation forcibly" },
  {
    short: "R",
    long: "reduce-identical-snapshots",
    hasArg: false,
    desc: "do not create snapshot if working VDI doesn't have its own objects",
  },
];

/** Largest hyper volume (SD_MAX_VDI_SIZE = 4 MiB × 2^32). */
const SD_MAX_VDI_SIZE = BigInt(SD_DATA_OBJ_SIZE) * (1n << 32n);
/** Inode entries released per write by `vdi delete` (v1.0's NR_BATCHED_DISCARD). */
const DEFAULT_DELETE_BATCH = 128;
/** Objects kept in flight by prealloc, read and clone. */
const IO_WINDOW = 8;

function snapshotOf(ctx: CommandContext): SnapshotRef {
  const s = ctx.opts.get("s");
  return typeof s === "string" ? snapshotOption(s) : WORKING;
}

function sizeArg(text: string): bigint {
  const size = parseSize(text);
  if (size === undefined) {
    throw new DogError(Exit.USAGE, invalidSizeLines(text), { showUsage: true });
  }
  return size;
}

function u32Bytes(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, true);
  return out;
}

/** Object size of a VDI; an inode from before per-VDI sizes (shift 0) means the default. */
function objectSizeOf(h: InodeHeader): number {
  return 2 ** (h.blockSizeShift || 22);
}

function requirePlain(h: InodeHeader, what: string): void {
  if (h.storePolicy !== 0) {
    throw new DogError(Exit.FAILURE, [`${what} of a hyper volume is not supported`]);
  }
}

function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** NEW_VDI (do_vdi_create): the new vid, or DogError "Failed to create VDI …" (exit 1). */
async function newVdi(
  ctx: CommandContext,
  name: string,
  p: {
    size: bigint;
    baseVid: number;
    snapshot: boolean;
    copies: number;
    copyPolicy: number;
    storePolicy: number;
    blockSizeShift: number;
  },
): Promise<number> {
  checkNameFits("VDI name", name);
  const payload = encodeFixedString(name, SD_MAX_VDI_LEN);
  const req = dogReq(Op.NEW_VDI, { flags: Flag.CMD_WRITE, dataLength: SD_MAX_VDI_LEN });
  req.vdi.baseVdiId = p.baseVid;
  req.vdi.snapid = p.snapshot ? 1 : 0;
  req.vdi.vdiSize = p.size;
  req.vdi.copies = p.copies;
  req.vdi.copyPolicy = p.copyPolicy;
  req.vdi.storePolicy = p.storePolicy;
  req.vdi.blockSizeShift = p.blockSizeShift;
  const { rsp } = await ctx.session.exec(req, payload);
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, [`Failed to create VDI ${name}: ${resultText(rsp.result)}`], {
      result: rsp.result,
    });
  }
  return rsp.vdi.vdiId;
}

/** Writes data_vdi_id[idx] = value in the inode of `vid` (sd_inode_write_vid, plain inodes). */
async function writeInodeEntry(
  ctx: CommandContext,
  vid: number,
  h: InodeHeader,
  idx: number,
  value: number,
  opts: { flags?: number; direct?: boolean } = {},
): Promise<number> {
  return await ctx.session.writeObject(
    vidToVdiOid(vid),
    u32Bytes(value),
    SD_INODE_HEADER_SIZE + 4 * idx,
    { copies: h.nrCopies, copyPolicy: h.copyPolicy, flags: opts.flags, direct: opts.direct },
  );
}

/** The cluster's default object size (CLUSTER_INFO), for the size limit of `vdi create`. */
async function clusterBlockSizeShift(ctx: CommandContext): Promise<number> {
  const req = dogReq(Op.CLUSTER_INFO, { dataLength: SD_CLUSTER_INFO_SIZE });
  let rsp, data;
  try {
    ({ rsp, data } = await ctx.session.exec(req));
  } catch (e) {
    const lines = e instanceof ReportedError ? [] : [e instanceof Error ? e.message : String(e)];
    throw new DogError(Exit.SYSFAIL, [...lines, "Fail to execute request"], { cause: e });
  }
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, [resultText(rsp.result)], { result: rsp.result });
  }
  return decodeClusterInfo(data).blockSizeShift || 22;
}

/**
 * Allocates every data object of `vid` from 0 to count-1 (v1.0's prealloc loop): a create per
 * object, `source(idx)` giving its bytes (empty = let the sheep zero-fill it), then the inode
 * entry. Objects for which `source` returns undefined are skipped.
 */
async function fillObjects(
  ctx: CommandContext,
  vid: number,
  h: InodeHeader,
  source: (idx: number) => Promise<Uint8Array | undefined>,
): Promise<void> {
  const count = Math.min(objectCount(h), MAX_DATA_OBJS);
  await mapBounded(range(count), IO_WINDOW, async (idx) => {
    const data = await source(idx);
    if (data === undefined) return true;
    const r = await ctx.session.writeObject(vidToDataOid(vid, idx), data, 0, {
      create: true,
      copies: h.nrCopies,
      copyPolicy: h.copyPolicy,
      direct: true,
    });
    if (r !== Res.SUCCESS) return false;
    return (await writeInodeEntry(ctx, vid, h, idx, vid, { direct: true })) === Res.SUCCESS;
  }, (done) => {
    // The failing request already printed v1.0's "Failed to write object" line.
    if (!done) throw new DogError(Exit.FAILURE, []);
  });
}

async function vdiCreate(ctx: CommandContext): Promise<number> {
  const [name, sizeText] = ctx.args;
  if (sizeText === undefined) throw usageError("Please specify the VDI size");
  const size = sizeArg(sizeText);
  const c = ctx.opts.get("c");
  const { copies, copyPolicy } = typeof c === "string"
    ? copiesOption(c)
    : { copies: 0, copyPolicy: 0 };
  const z = ctx.opts.get("z");
  const shift = typeof z === "string" ? blockSizeShiftOption(z) : 0;
  const hyper = ctx.opts.has("y");
  const objectSize = 2n ** BigInt(shift || await clusterBlockSizeShift(ctx));
  const oldMax = objectSize * BigInt(MAX_DATA_OBJS);
  if (size > SD_MAX_VDI_SIZE || (size > oldMax && !hyper)) {
    throw usageError(
      `VDI size is larger than ${sizeToStr(oldMax, ctx.raw)} bytes, please use '-y' to create ` +
        `a hyper volume with size up to ${sizeToStr(SD_MAX_VDI_SIZE, ctx.raw)} bytes`,
    );
  }
  if (copies > ctx.session.nodes.length) {
    throw usageError(
      `There are not enough nodes(${ctx.session.nodes.length}) to hold the copies(${copies})`,
    );
  }
  const vid = await newVdi(ctx, name, {
    size,
    baseVid: 0,
    snapshot: false,
    copies,
    copyPolicy,
    storePolicy: hyper ? 1 : 0,
    blockSizeShift: shift,
  });
  if (!ctx.opts.has("P")) return Exit.SUCCESS;
  const { header } = await readInodeHead(ctx.session, vid);
  if (header === undefined) {
    throw new DogError(Exit.FAILURE, ["Failed to read a newly created VDI object"]);
  }
  requirePlain(header, "Preallocation");
  const empty = new Uint8Array(0);
  await fillObjects(ctx, vid, header, () => Promise.resolve(empty));
  return Exit.SUCCESS;
}

async function vdiSnapshot(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const snap = snapshotOf(ctx);
  if (snap.id !== 0) throw usageError("Please specify a non-integer value for a snapshot tag name");
  checkNameFits("Snapshot tag", snap.tag);
  const vid = await openVdi(ctx.session, name, WORKING);
  const { header } = await readInodeHead(ctx.session, vid);
  if (header === undefined) throw new DogError(Exit.FAILURE, []);
  requirePlain(header, "Snapshot");
  if (ctx.opts.has("R")) {
    const { index } = await loadInode(ctx.session, vid);
    if (countObjects(vid, index).mine === 0) {
      await ctx.out.lines(`VDI ${name} has no own objects, skipping its snapshot`);
      return Exit.SUCCESS;
    }
  }
  const r = await ctx.session.writeObject(
    vidToVdiOid(vid),
    encodeFixedString(snap.tag, SD_MAX_VDI_TAG_LEN),
    SD_MAX_VDI_LEN,
    { copies: header.nrCopies, copyPolicy: header.copyPolicy },
  );
  if (r !== Res.SUCCESS) return Exit.FAILURE;
  const newVid = await newVdi(ctx, name, {
    size: header.vdiSize,
    baseVid: vid,
    snapshot: true,
    copies: header.nrCopies,
    copyPolicy: header.copyPolicy,
    storePolicy: header.storePolicy,
    blockSizeShift: header.blockSizeShift,
  });
  if (ctx.verbose) {
    await ctx.out.lines(
      ctx.raw
        ? `${newVid.toString(16)} ${vid.toString(16)}`
        : `new VDI ID: ${newVid.toString(16)} (parent VDI ID: ${vid.toString(16)})`,
    );
  }
  return Exit.SUCCESS;
}

async function vdiClone(ctx: CommandContext): Promise<number> {
  const [src, dst] = ctx.args;
  if (dst === undefined) throw usageError("Destination VDI name must be specified");
  const snap = snapshotOf(ctx);
  if (snap.id === 0 && snap.tag === "") {
    throw usageError("Only snapshot VDIs can be cloned", "Please specify the '-s' option");
  }
  const baseVid = await openVdi(ctx.session, src, snap);
  const base = await loadInode(ctx.session, baseVid);
  requirePlain(base.header, "Cloning");
  const noShare = ctx.opts.has("n");
  const prealloc = ctx.opts.has("P");
  const c = ctx.opts.get("c");
  const copies = typeof c === "string" ? copiesOption(c) : undefined;
  const newVid = await newVdi(ctx, dst, {
    size: base.header.vdiSize,
    baseVid: noShare ? 0 : baseVid,
    snapshot: false,
    copies: copies?.copies ?? base.header.nrCopies,
    copyPolicy: copies?.copyPolicy ?? base.header.copyPolicy,
    storePolicy: base.header.storePolicy,
    blockSizeShift: base.header.blockSizeShift,
  });
  if (ctx.verbose) {
    await ctx.out.lines(
      ctx.raw
        ? `${newVid.toString(16)} ${baseVid.toString(16)}`
        : `new VDI ID: ${newVid.toString(16)} (parent VDI ID: ${baseVid.toString(16)})`,
    );
  }
  if (!prealloc && !noShare) return Exit.SUCCESS;
  const { header } = await readInodeHead(ctx.session, newVid);
  if (header === undefined) {
    throw new DogError(Exit.FAILURE, ["Failed to read a newly created VDI object"]);
  }
  const size = objectSizeOf(base.header);
  const empty = new Uint8Array(0);
  await fillObjects(ctx, newVid, header, async (idx) => {
    const owner = base.index.get(idx);
    if (owner === 0) return prealloc ? empty : undefined;
    const { result, data } = await ctx.session.readObject(vidToDataOid(owner, idx), size, 0);
    if (result !== Res.SUCCESS) throw new DogError(Exit.FAILURE, []);
    return data;
  });
  return Exit.SUCCESS;
}

/** -B and -I of delete, rollback and restore. */
function releaseOptions(ctx: CommandContext): { batch: number; interval: number } {
  const b = ctx.opts.get("B");
  const batch = typeof b === "string" ? positiveIntOption(b, "batch size") : DEFAULT_DELETE_BATCH;
  const iv = ctx.opts.get("I");
  const interval = typeof iv === "string" ? positiveIntOption(iv, "interval") : 0;
  return { batch, interval };
}

/**
 * v1.0's do_vdi_delete: releases the VDI's data objects through inode writes of zeros (each
 * replaced entry drops a reference on its object, gref/ledger, in the sheep), in batches of
 * `batch` entries `interval` seconds apart, then sends DEL_VDI. Returns DEL_VDI's result; a VDI
 * that cannot be found throws v1.0's "Failed to open VDI" line (exit `missingExit`).
 */
async function deleteVdi(
  ctx: CommandContext,
  name: string,
  snap: SnapshotRef,
  opts: { batch: number; interval: number; missingExit?: number },
): Promise<number> {
  const vid = await openVdi(ctx.session, name, snap, opts.missingExit ?? Exit.FAILURE);
  const { header, index } = await loadInode(ctx.session, vid);
  if (header.storePolicy === 0 && index instanceof PlainDataIndex) {
    const entries = index.entries;
    let first = true;
    for (let start = entries.findIndex((v) => v !== 0); start >= 0 && start < entries.length;) {
      const end = Math.min(start + opts.batch, entries.length);
      if (!first && opts.interval > 0) {
        await new Promise((r) => setTimeout(r, opts.interval * 1000));
      }
      first = false;
      const r = await ctx.session.writeObject(
        vidToVdiOid(vid),
        new Uint8Array(4 * (end - start)),
        SD_INODE_HEADER_SIZE + 4 * start,
        { copies: header.nrCopies, copyPolicy: header.copyPolicy, direct: true },
      );
      if (r !== Res.SUCCESS) {
        throw new DogError(Exit.FAILURE, [`Failed to delete VDI ${name}`], { result: r });
      }
      entries.fill(0, start, end);
      let next = end;
      while (next < entries.length && entries[next] === 0) next++;
      start = next;
    }
  }
  const payload = nameTagPayload(name, snap.tag);
  const req = dogReq(Op.DEL_VDI, { flags: Flag.CMD_WRITE, dataLength: payload.length });
  req.vdi.snapid = snap.id;
  const { rsp } = await ctx.session.exec(req, payload);
  return rsp.result;
}

async function vdiDelete(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const snap = snapshotOf(ctx);
  const result = await deleteVdi(ctx, name, snap, {
    ...releaseOptions(ctx),
    missingExit: Exit.MISSING,
  });
  switch (result) {
    case Res.SUCCESS:
      return Exit.SUCCESS;
    case Res.NO_VDI:
    case Res.NO_TAG:
      throw new DogError(Exit.MISSING, [`Failed to delete ${name}: ${resultText(result)}`]);
    default:
      throw new DogError(Exit.FAILURE, [`Failed to delete ${name}: ${resultText(result)}`], {
        result,
      });
  }
}

/**
 * `vdi rollback -s SNAP VDI`: the working VDI is deleted and a new one of the same name starts
 * from the snapshot (v1.0's vdi_rollback: delete, then a clone of the snapshot under the name).
 */
async function vdiRollback(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const snap = snapshotOf(ctx);
  if (snap.id === 0 && snap.tag === "") throw usageError("Please specify the '-s' option");
  const baseVid = await openVdi(ctx.session, name, snap);
  const { header } = await readInodeHead(ctx.session, baseVid);
  if (header === undefined) throw new DogError(Exit.FAILURE, []);
  if (!ctx.opts.has("f")) {
    const question = "This operation dicards any changes made since the previous\n" +
      "snapshot was taken.  Continue? [yes/no]: ";
    if (!(await confirm(ctx.out, ctx.stdin, question))) return Exit.SUCCESS;
  }
  const del = await deleteVdi(ctx, name, WORKING, releaseOptions(ctx));
  if (del !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, ["Failed to delete the current state"], { result: del });
  }
  const newVid = await newVdi(ctx, name, {
    size: header.vdiSize,
    baseVid,
    snapshot: false,
    copies: header.nrCopies,
    copyPolicy: header.copyPolicy,
    storePolicy: header.storePolicy,
    blockSizeShift: header.blockSizeShift,
  });
  if (ctx.verbose) {
    await ctx.out.lines(
      ctx.raw ? newVid.toString(16) : `New VDI ID of rollback VDI: ${newVid.toString(16)}`,
    );
  }
  return Exit.SUCCESS;
}

/** Every VDI (deleted ones skipped) with its header, in vid order. */
async function allVdis(ctx: CommandContext): Promise<{ vid: number; header: InodeHeader }[]> {
  const list: { vid: number; header: InodeHeader }[] = [];
  await forEachVdi(ctx.session, { noDeleted: true, withIndex: false }, (v) => {
    list.push({ vid: v.vid, header: v.header });
  });
  return list;
}

async function vdiTree(ctx: CommandContext): Promise<number> {
  const highlight = ctx.io.isStdoutTty === true && !ctx.raw;
  const vdis: TreeVdi[] = (await allVdis(ctx)).map(({ vid, header: h }) => ({
    name: h.name,
    label: treeLabel(isSnapshot(h), sdTimeSeconds(h.createTime)),
    vid,
    parentVid: h.parentVdiId,
    highlight: highlight && !isSnapshot(h),
  }));
  await ctx.out.print(renderTree(vdis));
  return Exit.SUCCESS;
}

async function vdiGraph(ctx: CommandContext): Promise<number> {
  let out = GRAPH_HEADER;
  for (const { vid, header: h } of await allVdis(ctx)) {
    out += graphEntry({
      name: h.name,
      vid,
      parentVid: h.parentVdiId,
      snapId: h.snapId,
      vdiSize: h.vdiSize,
      createSeconds: sdTimeSeconds(h.createTime),
      isCurrent: !isSnapshot(h),
    }, ctx.raw);
  }
  await ctx.out.print(out + GRAPH_FOOTER);
  return Exit.SUCCESS;
}

/** The `-F` snapshot of backup (none: a full backup against zeros). */
function fromSnapshotOf(ctx: CommandContext): SnapshotRef | undefined {
  const f = ctx.opts.get("F");
  return typeof f === "string" ? snapshotOption(f) : undefined;
}

/**
 * `vdi backup [-F FROM] -s TO VDI > file`: the objects of snapshot TO that differ from snapshot
 * FROM, in v1.0's stream format (protocol sheet §15), each trimmed of the 512-byte blocks equal
 * at both ends. Without -F (v1.0 requires it) the diff is against an empty VDI: a full backup.
 * Objects both snapshots share (same owner) are equal and not even read.
 */
async function vdiBackup(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const to = snapshotOf(ctx);
  const from = fromSnapshotOf(ctx);
  if (to.id === 0 && to.tag === "") {
    throw usageError("Please specify snapshots with '-F' and '-s' options");
  }
  const fromInode = from
    ? await loadInode(ctx.session, await openVdi(ctx.session, name, from))
    : null;
  const toInode = await loadInode(ctx.session, await openVdi(ctx.session, name, to));
  requirePlain(toInode.header, "Backup");
  const size = objectSizeOf(toInode.header);
  if (fromInode && objectSizeOf(fromInode.header) !== size) {
    throw new DogError(Exit.FAILURE, ["The snapshots have different object sizes"]);
  }
  const count = Math.min(objectCount(toInode.header), MAX_DATA_OBJS);
  const readOrZero = async (owner: number, idx: number): Promise<Uint8Array | null> => {
    if (owner === 0) return null;
    const { result, data } = await ctx.session.readObject(vidToDataOid(owner, idx), size, 0);
    if (result !== Res.SUCCESS) {
      throw new DogError(Exit.FAILURE, [`Failed to read object ${owner.toString(16)}, ${idx}`]);
    }
    return data;
  };
  await ctx.out.bytes(encodeBackupHeader());
  const changed = [...range(count)].filter((idx) => {
    const t = toInode.index.get(idx);
    const f = fromInode?.index.get(idx) ?? 0;
    return (t !== 0 || f !== 0) && t !== f;
  });
  await mapBounded(changed, IO_WINDOW, async (idx) => {
    const t = await readOrZero(toInode.index.get(idx), idx) ?? new Uint8Array(size);
    const f = await readOrZero(fromInode?.index.get(idx) ?? 0, idx);
    const { offset, length } = trimDiff(t, f);
    return { idx, offset, data: t.subarray(offset, offset + length) };
  }, async (r) => {
    if (r.data.length === 0) return;
    await ctx.out.bytes(
      encodeRecordHeader({ idx: r.idx, offset: r.offset, length: r.data.length }),
    );
    await ctx.out.bytes(r.data);
  });
  await ctx.out.bytes(encodeEndRecord());
  return Exit.SUCCESS;
}

/**
 * `vdi restore -s SNAP VDI < file` (v1.0's vdi_restore): the working VDI is deleted, a new VDI of
 * the name starts from SNAP and gets each record as a copy-on-write write over SNAP's object;
 * finally a working VDI is created again on top of the old working VDI's parent (which freezes
 * the restored VDI as a snapshot of the chain).
 */
async function vdiRestore(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  const snap = snapshotOf(ctx);
  if (snap.id === 0 && snap.tag === "") {
    throw usageError(
      "We can restore a backup file only to snapshots",
      "Please specify the '-s' option",
    );
  }
  const curVid = await openVdi(ctx.session, name, WORKING);
  const { header: cur } = await readInodeHead(ctx.session, curVid);
  if (cur === undefined) throw new DogError(Exit.FAILURE, []);
  if (ctx.io.isStdinTty === true) throw usageError("stdin must be pipe");
  const del = await deleteVdi(ctx, name, WORKING, releaseOptions(ctx));
  if (del !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, ["Failed to delete the current state"], { result: del });
  }
  let code: number = Exit.SUCCESS;
  let failure: unknown = null;
  try {
    code = await restoreInto(ctx, name, snap);
  } catch (e) {
    failure = e;
  }
  // Recreate the working VDI on top of the old one's parent.
  const req = dogReq(Op.NEW_VDI, { flags: Flag.CMD_WRITE, dataLength: SD_MAX_VDI_LEN });
  req.vdi.baseVdiId = cur.parentVdiId;
  req.vdi.snapid = 1;
  req.vdi.vdiSize = cur.vdiSize;
  req.vdi.copies = cur.nrCopies;
  req.vdi.copyPolicy = cur.copyPolicy;
  req.vdi.storePolicy = cur.storePolicy;
  req.vdi.blockSizeShift = cur.blockSizeShift;
  const { rsp } = await ctx.session.exec(req, encodeFixedString(name, SD_MAX_VDI_LEN));
  if (failure !== null) throw failure;
  if (rsp.result !== Res.SUCCESS) {
    throw new DogError(Exit.FAILURE, ["failed to resume the current vdi"], { result: rsp.result });
  }
  return code;
}

async function restoreInto(ctx: CommandContext, name: string, snap: SnapshotRef): Promise<number> {
  const head = await ctx.stdin.read(BACKUP_HEADER_SIZE);
  if (!isBackupHeader(head)) {
    throw new DogError(Exit.SYSFAIL, ["The backup file is corrupted"]);
  }
  const base = await loadInode(ctx.session, await openVdi(ctx.session, name, snap));
  requirePlain(base.header, "Restore");
  const h = base.header;
  let vid: number;
  try {
    vid = await newVdi(ctx, name, {
      size: h.vdiSize,
      baseVid: base.vid,
      snapshot: false,
      copies: h.nrCopies,
      copyPolicy: h.copyPolicy,
      storePolicy: h.storePolicy,
      blockSizeShift: h.blockSizeShift,
    });
  } catch (e) {
    if (e instanceof DogError) throw new DogError(Exit.FAILURE, [...e.lines, "Failed to read VDI"]);
    throw e;
  }
  const size = objectSizeOf(h);
  const fail = async (lines: string[], code: number): Promise<never> => {
    await deleteVdi(ctx, name, WORKING, { batch: DEFAULT_DELETE_BATCH, interval: 0 })
      .catch(() => undefined);
    throw new DogError(code, lines);
  };
  const stream = readBackupRecords((n) => ctx.stdin.read(n), size);
  for (;;) {
    let next;
    try {
      next = await stream.next();
    } catch (e) {
      if (!(e instanceof BackupFormatError)) throw e;
      return await fail(["failed to read backup data"], Exit.SYSFAIL);
    }
    if (next.done) break;
    const r = next.value;
    const parent = base.index.get(r.idx);
    const cowOid = parent !== 0 ? vidToDataOid(parent, r.idx) : 0n;
    let res = await ctx.session.writeObject(vidToDataOid(vid, r.idx), r.data, r.offset, {
      create: true,
      cowOid,
      copies: h.nrCopies,
      copyPolicy: h.copyPolicy,
      direct: true,
    });
    if (res === Res.SUCCESS) res = await writeInodeEntry(ctx, vid, h, r.idx, vid, { direct: true });
    if (res !== Res.SUCCESS) return await fail(["failed to restore backup"], Exit.FAILURE);
  }
  return Exit.SUCCESS;
}

/**
 * The `vdi list` row of an inode (v1.0's print_vdi_list): Used = objects whose data_vdi_id entry
 * is this vid, Shared = allocated objects owned by another vid, both times the object size.
 */
export function listEntry(inode: LoadedInode): VdiListEntry {
  const { vid, header: h, index } = inode;
  const { mine, cow } = countObjects(vid, index);
  const objectSize = BigInt(objectSizeOf(h));
  const snapshot = isSnapshot(h);
  return {
    vid,
    name: h.name,
    tag: h.tag,
    snapId: snapshot ? h.snapId : 0,
    kind: snapshot ? "snapshot" : h.snapId === 1 && h.parentVdiId !== 0 ? "clone" : "working",
    vdiSize: h.vdiSize,
    used: BigInt(mine) * objectSize,
    shared: BigInt(cow) * objectSize,
    createTime: sdTimeSeconds(h.createTime),
    copies: h.nrCopies,
    copyPolicy: h.copyPolicy,
    blockSizeShift: h.blockSizeShift,
  };
}

async function vdiList(ctx: CommandContext): Promise<number> {
  const filter = ctx.args[0];
  const json: VdiListEntry[] = [];
  if (!ctx.raw && !ctx.json) await ctx.out.lines(VDI_LIST_HEADER);
  await forEachVdi(ctx.session, { noDeleted: true, withIndex: true }, async (inode) => {
    if (filter !== undefined && inode.header.name !== filter) return;
    if (!("index" in inode)) return;
    const entry = listEntry(inode);
    if (ctx.json) json.push(entry);
    else await ctx.out.lines(vdiListRow(entry, ctx.raw));
  });
  if (ctx.json) {
    await ctx.out.print(
      JSON.stringify(json.map((e) => ({
        name: e.name,
        vid: e.vid.toString(16),
        snapId: e.snapId,
        kind: e.kind,
        tag: e.tag,
        size: Number(e.vdiSize),
        used: Number(e.used),
        shared: Number(e.shared),
        createdAt: Number(e.createTime),
        copies: e.copies,
        copyPolicy: e.copyPolicy,
        blockSizeShift: e.blockSizeShift,
      }))) + "\n",
    );
  }
  return Exit.SUCCESS;
}

async function vdiResize(ctx: CommandContext): Promise<number> {
  const [name, sizeText] = ctx.args;
  if (sizeText === undefined) throw usageError("Please specify the new size for the VDI");
  const newSize = sizeArg(sizeText);
  const vid = await openVdi(ctx.session, name, WORKING);
  const { header, head } = await readInodeHead(ctx.session, vid);
  if (header === undefined || head === undefined) throw new DogError(Exit.FAILURE, []);
  const plainMax = BigInt(objectSizeOf(header)) * BigInt(MAX_DATA_OBJS);
  if (header.storePolicy === 0 && newSize > plainMax) {
    throw usageError(`New VDI size is too large. This volume's max size is ${plainMax}`);
  }
  if (newSize > SD_MAX_VDI_SIZE) {
    throw usageError(`New VDI size is too large. This volume's max size is ${SD_MAX_VDI_SIZE}`);
  }
  if (newSize < header.vdiSize) throw usageError("Shrinking VDIs is not implemented");
  // Write back the header exactly as read (the unused bytes too), with the new size.
  const bytes = head.slice(0, SD_INODE_HEADER_SIZE);
  new DataView(bytes.buffer).setBigUint64(536, newSize, true);
  const r = await ctx.session.writeObject(vidToVdiOid(vid), bytes, 0, {
    copies: header.nrCopies,
    copyPolicy: header.copyPolicy,
    direct: true,
  });
  if (r !== Res.SUCCESS) throw new DogError(Exit.FAILURE, ["Failed to update an inode header"]);
  return Exit.SUCCESS;
}

/** [offset, length) arguments of read and write: sizes, length defaulting to "to the end". */
function rangeArgs(ctx: CommandContext): { offset: bigint; total: bigint } {
  const [, offText, lenText] = ctx.args;
  const offset = offText === undefined ? 0n : sizeArg(offText);
  const total = lenText === undefined ? (1n << 64n) - 1n : sizeArg(lenText);
  return { offset, total };
}

/**
 * Pieces of [offset, offset+total) cut at object boundaries (and at the request size cap), as
 * v1.0's read and write loops walk them.
 */
export function* pieces(
  offset: bigint,
  total: bigint,
  objectSize: number,
): Generator<{ idx: number; off: number; len: number }> {
  const size = BigInt(objectSize);
  let idx = Number(offset / size);
  let off = Number(offset % size);
  let left = total;
  while (left > 0n) {
    const len = Math.min(Number(left < size ? left : size), objectSize - off, MAX_REQUEST_DATA);
    yield { idx, off, len };
    left -= BigInt(len);
    off += len;
    if (off === objectSize) {
      off = 0;
      idx++;
    }
  }
}

/** The session as the request function of a shared VDI volume. */
function volumeRequest(ctx: CommandContext): SheepRequest {
  return (req, data) => ctx.session.exec(req, data);
}

/**
 * Prints v1.0's line for a failed object request of a volume (as dog_read_object and
 * dog_write_object print it) and returns the error's result; other errors are rethrown.
 */
async function reportVolumeError(ctx: CommandContext, e: unknown): Promise<number> {
  if (!(e instanceof VdiIoError)) throw e;
  const oid = e.oid.toString(16);
  const verb = e.op === "read" ? "read" : "write";
  if (e.cause !== undefined) {
    const cause = e.cause;
    if (!(cause instanceof ReportedError)) {
      await ctx.out.error(cause instanceof Error ? cause.message : String(cause));
    }
    await ctx.out.error(`Failed to ${verb} object ${oid}`);
  } else if (e.op === "read") {
    await ctx.out.error(`Failed to read object ${oid} ${resultText(e.result)}`);
  } else {
    await ctx.out.error(`Failed to write object ${oid}: ${resultText(e.result)}`);
  }
  return e.result;
}

async function vdiRead(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  let { offset, total } = rangeArgs(ctx);
  const vid = await openVdi(ctx.session, name, snapshotOf(ctx));
  const inode = await loadInode(ctx.session, vid);
  const { header } = inode;
  if (header.vdiSize < offset) {
    throw new DogError(Exit.FAILURE, ["Read offset is beyond the end of the VDI"]);
  }
  const left = header.vdiSize - offset;
  if (total > left) total = left;
  const volume = VdiVolume.fromLoaded(volumeRequest(ctx), inode);
  const objectSize = objectSizeOf(header);
  await mapBounded(pieces(offset, total, objectSize), IO_WINDOW, async (p) => {
    try {
      return await volume.read(p.idx * objectSize + p.off, p.len);
    } catch (e) {
      await reportVolumeError(ctx, e);
      throw new DogError(Exit.FAILURE, []);
    }
  }, (data) => ctx.out.bytes(data));
  return Exit.SUCCESS;
}

async function vdiWrite(ctx: CommandContext): Promise<number> {
  const name = ctx.args[0];
  let { offset, total } = rangeArgs(ctx);
  const vid = await openVdi(ctx.session, name, WORKING);
  const inode = await loadInode(ctx.session, vid);
  const { header } = inode;
  requirePlain(header, "Writing");
  if (!(inode.index instanceof PlainDataIndex)) throw new DogError(Exit.FAILURE, []);
  if (header.vdiSize < offset) {
    throw new DogError(Exit.FAILURE, ["Write offset is beyond the end of the VDI"]);
  }
  const left = header.vdiSize - offset;
  if (total > left) total = left;
  const writeFlags = ctx.opts.has("w") ? Flag.CMD_CACHE : 0;
  const volume = VdiVolume.fromLoaded(volumeRequest(ctx), inode, { writeFlags });
  const objectSize = objectSizeOf(header);
  for (const p of pieces(offset, total, objectSize)) {
    const data = await ctx.stdin.read(p.len);
    // v1.0 still sends a zero-length create when stdin ends on an object boundary, allocating an
    // empty object; we stop instead.
    if (data.length === 0) break;
    try {
      await volume.write(p.idx * objectSize + p.off, data);
    } catch (e) {
      const result = await reportVolumeError(ctx, e);
      // A failed inode entry update ends the command without v1.0's summary line.
      if ((e as VdiIoError).oid === vidToVdiOid(volume.vid)) return Exit.FAILURE;
      throw new DogError(Exit.FAILURE, ["Failed to write VDI"], { result });
    }
    if (data.length < p.len) break;
  }
  return Exit.SUCCESS;
}

/** GET_VDI_ATTR (find_vdi_attr_oid): the reply's vid, attr id and copies, or the result. */
async function vdiAttr(
  ctx: CommandContext,
  name: string,
  key: string,
  value: Uint8Array | undefined,
  flags: number,
): Promise<{ result: number; oid: bigint; copies: number }> {
  checkNameFits("VDI name", name);
  if (new TextEncoder().encode(key).length >= SD_MAX_VDI_ATTR_KEY_LEN) {
    throw usageError(`Attribute key is too long (at most 255 bytes): ${key}`);
  }
  const snap = snapshotOf(ctx);
  const payload = encodeVdiAttr({
    name,
    tag: snap.tag,
    ctime: 0n,
    snapId: snap.id,
    valueLen: value?.length ?? 0,
    key,
    value: value ?? new Uint8Array(0),
  });
  const req = dogReq(Op.GET_VDI_ATTR, {
    flags: Flag.CMD_WRITE | flags,
    dataLength: SD_ATTR_OBJ_SIZE,
  });
  const { rsp } = await ctx.session.exec(req, payload);
  if (rsp.result !== Res.SUCCESS) return { result: rsp.result, oid: 0n, copies: 0 };
  return {
    result: rsp.result,
    oid: vidToAttrOid(rsp.vdi.vdiId, rsp.vdi.attrId),
    copies: rsp.vdi.copies,
  };
}

async function vdiSetattr(ctx: CommandContext): Promise<number> {
  const [name, key, valueArg] = ctx.args;
  if (key === undefined) throw usageError("Please specify the attribute key");
  const del = ctx.opts.has("d");
  let value: Uint8Array | undefined;
  if (valueArg !== undefined) value = new TextEncoder().encode(valueArg);
  else if (!del) {
    value = await ctx.stdin.read(SD_MAX_VDI_ATTR_VALUE_LEN + 1);
    if (value.length > SD_MAX_VDI_ATTR_VALUE_LEN) {
      throw new DogError(Exit.FAILURE, [
        `The attribute value is longer than ${SD_MAX_VDI_ATTR_VALUE_LEN} bytes`,
      ]);
    }
  }
  if (value !== undefined && value.length > SD_MAX_VDI_ATTR_VALUE_LEN) {
    throw new DogError(Exit.FAILURE, [
      `The attribute value is longer than ${SD_MAX_VDI_ATTR_VALUE_LEN} bytes`,
    ]);
  }
  let flags = del ? Flag.CMD_DEL : Flag.CMD_CREAT;
  if (ctx.opts.has("x")) flags |= Flag.CMD_EXCL;
  const { result, oid, copies } = await vdiAttr(ctx, name, key, value, flags);
  switch (result) {
    case Res.SUCCESS:
      break;
    case Res.VDI_EXIST:
      throw new DogError(Exit.EXISTS, [`The attribute '${key}' already exists`]);
    case Res.NO_OBJ:
      throw new DogError(Exit.MISSING, [`Attribute '${key}' not found`]);
    case Res.NO_VDI:
      throw new DogError(Exit.MISSING, ["VDI not found"]);
    default:
      throw new DogError(Exit.FAILURE, [`Failed to set attribute: ${resultText(result)}`], {
        result,
      });
  }
  if (value !== undefined && !del) {
    if (value.length > 0) {
      const r = await ctx.session.writeObject(oid, value, 784, { copies });
      if (r !== Res.SUCCESS) throw new DogError(Exit.FAILURE, ["Failed to write attribute value"]);
    }
    const r = await ctx.session.writeObject(oid, u32Bytes(value.length), 524, { copies });
    if (r !== Res.SUCCESS) throw new DogError(Exit.FAILURE, ["Failed to write attribute value"]);
  }
  return Exit.SUCCESS;
}

async function vdiGetattr(ctx: CommandContext): Promise<number> {
  const [name, key] = ctx.args;
  if (key === undefined) throw usageError("Please specify the attribute key");
  const { result, oid } = await vdiAttr(ctx, name, key, undefined, 0);
  switch (result) {
    case Res.SUCCESS:
      break;
    case Res.NO_OBJ:
      throw new DogError(Exit.MISSING, [`Attribute '${key}' not found`]);
    case Res.NO_VDI:
      throw new DogError(Exit.MISSING, ["VDI not found"]);
    default:
      throw new DogError(Exit.MISSING, [`Failed to find attribute oid: ${resultText(result)}`], {
        result,
      });
  }
  const { result: r, data } = await ctx.session.readObject(oid, SD_ATTR_OBJ_SIZE, 0);
  if (r !== Res.SUCCESS) {
    throw new DogError(Exit.SYSFAIL, [`Failed to read attribute oid: ${resultText(r)}`]);
  }
  await ctx.out.bytes(decodeVdiAttr(data).value);
  return Exit.SUCCESS;
}

async function openForObject(ctx: CommandContext): Promise<LoadedInode & { idx?: number }> {
  const name = ctx.args[0];
  if (name === undefined) throw usageError();
  const i = ctx.opts.get("i");
  const idx = typeof i === "string" ? indexOption(i) : undefined;
  const vid = await openVdi(ctx.session, name, snapshotOf(ctx));
  return { ...(await loadInode(ctx.session, vid)), idx };
}

async function objectLocation(ctx: CommandContext): Promise<number> {
  const { vid, header, index, idx } = await openForObject(ctx);
  let oid: bigint;
  if (idx === undefined) oid = vidToVdiOid(vid);
  else {
    const owner = index.get(idx);
    if (owner === 0) {
      await ctx.out.lines(`The inode object 0x${vid.toString(16)} idx ${idx} is not allocated`);
      return Exit.SUCCESS;
    }
    oid = vidToDataOid(owner, idx);
  }
  const nodes = ctx.session.nodes;
  const holdings: NodeHolding[] = [];
  await mapBounded(nodes, IO_WINDOW, async (node) => {
    const req = dogReq(Op.EXIST);
    req.obj.oid = oid;
    try {
      const { rsp } = await ctx.session.execOn(node, req);
      if (rsp.result === Res.SUCCESS) return true;
      if (rsp.result === Res.NO_OBJ) return false;
      return resultText(rsp.result);
    } catch (e) {
      if (e instanceof ReportedError) return "cannot connect";
      return e instanceof Error ? e.message : String(e);
    }
  }, (has, i) => {
    holdings.push({ node: nodes[i], has });
  });
  const ring = buildRing(nodes);
  const copies = Math.min(header.nrCopies, ring.nrZones);
  const placement = copies > 0 ? ring.place(oid, copies) : [];
  await ctx.out.print(
    objectLocationText(
      { oid, vid, index: idx, copies: header.nrCopies },
      nodes.length,
      holdings,
      placement,
    ),
  );
  return Exit.SUCCESS;
}

async function objectMap(ctx: CommandContext): Promise<number> {
  const { index, idx } = await openForObject(ctx);
  const lines = [OBJECT_MAP_HEADER];
  if (idx !== undefined) lines.push(objectMapRow(idx, index.get(idx)));
  else for (const [i, owner] of index.allocated()) lines.push(objectMapRow(i, owner));
  await ctx.out.lines(...lines);
  return Exit.SUCCESS;
}

async function objectDumpInode(ctx: CommandContext): Promise<number> {
  const { header: h } = await openForObject(ctx);
  const time = (t: bigint) =>
    t === 0n ? "0" : `${formatSecond(dateOfSeconds(sdTimeSeconds(t)))} (${t})`;
  await ctx.out.lines(
    `name: ${h.name}`,
    `tag: ${h.tag}`,
    `create_time: ${time(h.createTime)}`,
    `snap_ctime: ${time(h.snapCtime)}`,
    `vm_clock_nsec: ${h.vmClockNsec}`,
    `vdi_size: ${h.vdiSize}`,
    `vm_state_size: ${h.vmStateSize}`,
    `copy_policy: ${h.copyPolicy}`,
    `store_policy: ${h.storePolicy}`,
    `nr_copies: ${h.nrCopies}`,
    `block_size_shift: ${h.blockSizeShift}`,
    `snap_id: ${h.snapId}`,
    `vdi_id: ${h.vdiId.toString(16)}`,
    `parent_vdi_id: ${h.parentVdiId.toString(16)}`,
    `btree_counter: ${h.btreeCounter}`,
  );
  return Exit.SUCCESS;
}

/** The `vdi` command group. */
export const vdiCommands: CommandGroup = {
  name: "vdi",
  options: VDI_OPTIONS,
  subcommands: [
    {
      name: "create",
      args: "<vdiname> <size>",
      desc: "create an image",
      opts: "PycaphrvzT",
      needNodeList: true,
      needArg: true,
      run: vdiCreate,
    },
    {
      name: "snapshot",
      args: "<vdiname>",
      desc: "create a snapshot",
      opts: "saphrvRT",
      needNodeList: true,
      needArg: true,
      run: vdiSnapshot,
    },
    {
      name: "clone",
      args: "<src vdi> <dst vdi>",
      desc: "clone an image",
      opts: "sPnaphrvcT",
      needNodeList: true,
      needArg: true,
      run: vdiClone,
    },
    {
      name: "delete",
      args: "<vdiname>",
      desc: "delete an image",
      opts: "saphBIT",
      needNodeList: true,
      needArg: true,
      run: vdiDelete,
    },
    {
      name: "rollback",
      args: "<vdiname>",
      desc: "rollback to a snapshot",
      opts: "saphfrvBIT",
      needNodeList: true,
      needArg: true,
      run: vdiRollback,
    },
    {
      name: "list",
      args: "[vdiname]",
      desc: "list images",
      opts: "aprhT",
      json: true,
      needNodeList: true,
      needArg: false,
      run: vdiList,
    },
    {
      name: "tree",
      desc: "show images in tree view format",
      opts: "aphT",
      needNodeList: true,
      needArg: false,
      run: vdiTree,
    },
    {
      name: "graph",
      desc: "show images in Graphviz dot format",
      opts: "aphrT",
      needNodeList: true,
      needArg: false,
      run: vdiGraph,
    },
    vdiCheckCommand,
    {
      name: "object",
      args: "{location|map|dump-inode} <vdiname>",
      desc: "show object information in the image",
      opts: "isaphT",
      needNodeList: true,
      needArg: true,
      sub: [
        {
          name: "location",
          args: "<vdiname>",
          desc: "show the nodes holding an object and where it should be",
          opts: "isaphT",
          needNodeList: true,
          needArg: true,
          run: objectLocation,
        },
        {
          name: "map",
          args: "<vdiname>",
          desc: "show the VDI owning each data object",
          opts: "isaphT",
          needNodeList: true,
          needArg: true,
          run: objectMap,
        },
        {
          name: "dump-inode",
          args: "<vdiname>",
          desc: "print the inode fields",
          opts: "isaphT",
          needNodeList: true,
          needArg: true,
          run: objectDumpInode,
        },
      ],
    },
    {
      name: "setattr",
      args: "<vdiname> <key> [value]",
      desc: "set a VDI attribute",
      opts: "dxsaphT",
      needNodeList: true,
      needArg: true,
      run: vdiSetattr,
    },
    {
      name: "getattr",
      args: "<vdiname> <key>",
      desc: "get a VDI attribute",
      opts: "saphT",
      needNodeList: true,
      needArg: true,
      run: vdiGetattr,
    },
    {
      name: "resize",
      args: "<vdiname> <new size>",
      desc: "resize an image",
      opts: "aphT",
      needNodeList: true,
      needArg: true,
      run: vdiResize,
    },
    {
      name: "read",
      args: "<vdiname> [<offset> [<len>]]",
      desc: "read data from an image",
      opts: "saphT",
      needNodeList: true,
      needArg: true,
      run: vdiRead,
    },
    {
      name: "write",
      args: "<vdiname> [<offset> [<len>]]",
      desc: "write data to an image",
      opts: "aphwT",
      needNodeList: true,
      needArg: true,
      run: vdiWrite,
    },
    {
      name: "backup",
      args: "<vdiname>",
      desc: "create an incremental backup between two snapshots",
      opts: "sFaphT",
      needNodeList: true,
      needArg: true,
      run: vdiBackup,
    },
    {
      name: "restore",
      args: "<vdiname>",
      desc: "restore snapshot images from a backup",
      opts: "saphBIT",
      needNodeList: true,
      needArg: true,
      run: vdiRestore,
    },
    vdiLockCommand,
  ],
};
