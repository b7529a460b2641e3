/**
 * Main steps of the cluster ops: applied by every node, in the total order of the cluster driver,
 * to the in-memory state (VDI registry, cluster info) and the node's own metadata. They must be
 * deterministic given the message, so every node ends in the same state.
 *
 * @module
 */

import {
  ClusterFlag,
  ClusterStatus,
  LockType,
  Op,
  Res,
  SD_FORMAT_VERSION,
} from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import type { ClusterInfo } from "../proto/cluster_info.ts";
import { encodeConfig } from "../proto/config.ts";
import { encodeEpochFile } from "../proto/epoch_log.ts";
import { decodeFixedString } from "../proto/strings.ts";
import { addrToString, nodeAddrString, type SdNode } from "../proto/node.ts";
import { applyForceRecover, applyFormat } from "../cluster/membership.ts";
import type { Sheep } from "./sheep.ts";
import { decodeDelVdiOutcome, type NewVdiOutcome } from "./vdi_ops.ts";
import { lockVdi, moveLock, releaseVdi } from "./vdi_lock.ts";
import { sweepDeletedVdi } from "./deleted_sweep.ts";

/** Everything a main step gets. */
export interface MainStepInput {
  sender: SdNode;
  req: SdReq;
  rsp: SdRsp;
  /** The work step's outcome or the request payload the main step needs. */
  data: Uint8Array;
  fromSelf: boolean;
  /** Makes a new cluster state current (epoch file, config, ring). */
  adopt(ci: ClusterInfo): Promise<void>;
}

/** NEW_VDI's work outcome as carried to every node. */
export function encodeNewVdiOutcome(o: NewVdiOutcome): Uint8Array {
  const out = new Uint8Array(20);
  const v = new DataView(out.buffer);
  v.setUint32(0, o.vid, true);
  v.setUint32(4, o.parentVid, true);
  v.setUint32(8, o.snapshotVid, true);
  v.setUint8(12, o.copies);
  v.setUint8(13, o.copyPolicy);
  v.setUint8(14, o.blockSizeShift);
  return out;
}

function decodeNewVdiOutcome(buf: Uint8Array): NewVdiOutcome {
  if (buf.length < 15) throw new SdError(Res.INVALID_PARMS, "short NEW_VDI outcome");
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  return {
    vid: v.getUint32(0, true),
    parentVid: v.getUint32(4, true),
    snapshotVid: v.getUint32(8, true),
    copies: v.getUint8(12),
    copyPolicy: v.getUint8(13),
    blockSizeShift: v.getUint8(14),
  };
}

/** Applies the main step of one cluster op on this node; returns the reply payload, if any. */
export async function applyMainStep(
  s: Sheep,
  m: MainStepInput,
): Promise<Uint8Array | undefined> {
  const { req, rsp } = m;
  switch (req.opcode) {
    case Op.NEW_VDI: {
      const o = decodeNewVdiOutcome(m.data);
      if (o.snapshotVid) s.vdis.markSnapshot(o.snapshotVid);
      s.vdis.add({
        vid: o.vid,
        nrCopies: o.copies,
        copyPolicy: o.copyPolicy,
        blockSizeShift: o.blockSizeShift,
        snapshot: false,
        deleted: false,
        parentVid: o.parentVid,
      });
      if (o.snapshotVid) moveLock(s.vdis, o.snapshotVid, o.vid);
      return undefined;
    }
    case Op.DEL_VDI: {
      const o = decodeDelVdiOutcome(m.data, rsp.vdi.vdiId);
      s.vdis.markDeleted(o.vid);
      for (const vid of o.freed) s.vdis.forget(vid);
      if (!o.freed.includes(o.vid)) {
        // In the background: the sweep reads inodes through the gateway (deleted_sweep.ts).
        sweepDeletedVdi(s, o.vid).catch((e) =>
          s.log.warn("the sweep of a deleted VDI's objects failed; they stay", {
            vid: o.vid.toString(16),
            error: String(e),
          })
        );
      }
      return undefined;
    }
    case Op.GET_VDI_INFO:
    case Op.GET_VDI_ATTR:
    case Op.DELETE_CACHE:
    case Op.NOTIFY_VDI_DEL:
      return undefined;
    case Op.LOCK_VDI:
      applyLockVdi(s, m);
      return undefined;
    case Op.RELEASE_VDI:
      applyReleaseVdi(s, m);
      return undefined;
    case Op.NOTIFY_VDI_ADD: {
      const a = req.vdiState;
      if (a.oldVid) s.vdis.markSnapshot(a.oldVid);
      s.vdis.add({
        vid: a.newVid,
        nrCopies: a.copies,
        copyPolicy: a.copyPolicy,
        blockSizeShift: a.blockSizeShift,
        snapshot: false,
        deleted: false,
        parentVid: a.oldVid,
      });
      return undefined;
    }
    case Op.MAKE_FS:
      await makeFs(s, m);
      return undefined;
    case Op.SHUTDOWN:
      s.cinfo = { ...s.cinfo, status: ClusterStatus.SHUTDOWN };
      s.config = { ...s.config, shutdown: true };
      await s.deps.meta.writeConfig(encodeConfig(s.config));
      s.log.info("cluster shutdown requested", { by: nodeAddrString(m.sender) });
      s.deps.stopListening();
      s.deps.timers.setTimeout(() => s.deps.exit(0, "cluster shutdown"), 200);
      return undefined;
    case Op.ENABLE_RECOVER:
    case Op.DISABLE_RECOVER:
      s.cinfo = { ...s.cinfo, disableRecovery: req.opcode === Op.DISABLE_RECOVER };
      s.recovery.pump();
      return undefined;
    case Op.COMPLETE_RECOVERY:
      // Sent by the recovery executors themselves (never accepted from clients: not in OP_TABLE).
      await s.recovery.onCompleteRecovery(m.sender, req.obj.tgtEpoch);
      return undefined;
    case Op.FORCE_RECOVER: {
      if (s.cinfo.status !== ClusterStatus.WAIT || s.cinfo.ctime === 0n) {
        throw new SdError(Res.FORCE_RECOVER);
      }
      await m.adopt(applyForceRecover(s.cinfo, s.members).cinfo);
      return undefined;
    }
    case Op.ALTER_CLUSTER_COPY: {
      if (req.cluster.copyPolicy !== 0) throw new SdError(Res.INVALID_PARMS);
      await m.adopt({ ...s.cinfo, nrCopies: req.cluster.copies });
      return undefined;
    }
    case Op.CLEANUP:
      await s.store.purgeStale();
      return undefined;
  }
  throw new SdError(Res.INVALID_PARMS, `no main step for opcode 0x${req.opcode.toString(16)}`);
}

async function makeFs(s: Sheep, m: MainStepInput): Promise<void> {
  const c = m.req.cluster;
  const store = m.data.length > 0 ? decodeFixedString(m.data, 0, m.data.length) : "plain";
  if (store !== "plain") throw new SdError(Res.NO_STORE, `store '${store}' is not supported`);
  const copies = c.copies || 3;
  const ci = applyFormat(s.cinfo, s.members, {
    ctime: c.ctime,
    copies,
    copyPolicy: c.copyPolicy,
    flags: c.flags,
    blockSizeShift: c.blockSizeShift || 22,
    store,
  });
  await s.store.removeAll();
  await s.deps.meta.removeAllEpochs();
  s.vdis.reset();
  s.config = {
    ...s.config,
    ctime: ci.ctime,
    flags: ci.flags,
    copies: ci.nrCopies,
    copyPolicy: ci.copyPolicy,
    blockSizeShift: ci.blockSizeShift,
    defaultStore: store,
    shutdown: false,
    version: SD_FORMAT_VERSION,
  };
  await s.deps.meta.writeConfig(encodeConfig(s.config));
  // Epoch 1 is stamped with the format's own time (ctime's seconds), not each node's clock when
  // it applies the format, so that every node's epoch history is identical.
  await s.deps.meta.writeEpoch(1, encodeEpochFile(ci.nodes, ci.ctime >> 32n));
  s.recovery.onFormat();
  await m.adopt(ci);
  s.log.info("cluster formatted", { copies, flags: ci.flags, nodes: ci.nodes.length });
}

/**
 * LOCK_VDI's main step: the lookup (work step) found rsp.vdi.vdi_id; lock it for the sender when
 * the cluster was formatted with `-l` (otherwise LOCK_VDI is only a lookup, as in v1.0). A refusal
 * becomes the op's result on every node alike.
 */
function applyLockVdi(s: Sheep, m: MainStepInput): void {
  if ((s.cinfo.flags & ClusterFlag.USE_LOCK) === 0) return;
  const vid = m.rsp.vdi.vdiId;
  const type = m.req.vdi.type;
  if (vid !== 0 && !s.vdis.get(vid)) {
    // The requester found the VDI (its lookup reads the inodes), but this node has not learnt it
    // yet (its VDI state pull after a whole-cluster restart runs in the background): record it,
    // so that every node holds the same locks, and let the pull complete the record.
    s.vdis.add({
      vid,
      nrCopies: m.rsp.vdi.copies || s.cinfo.nrCopies,
      copyPolicy: 0,
      blockSizeShift: s.cinfo.blockSizeShift,
      snapshot: false,
      deleted: false,
      parentVid: 0,
      partial: true,
    });
  }
  const result = lockVdi(s.vdis, vid, type, m.sender.nid);
  m.rsp.result = result;
  const props = { vid: vid.toString(16), type, node: nodeAddrString(m.sender) };
  if (result === Res.SUCCESS) s.log.info("VDI locked", props);
  else if (m.fromSelf) s.log.info("VDI lock refused", { ...props, result });
}

/**
 * RELEASE_VDI's main step (a no-op without `-l`, as in v1.0). A normal-type release without a
 * payload is forced: it frees the VDI whoever holds it. That is exactly the request of
 * `dog vdi lock unlock` (v1.0's and ours), while lock holders (QEMU, the NBD export) name the VDI
 * in the payload and so free only a lock their node holds.
 */
function applyReleaseVdi(s: Sheep, m: MainStepInput): void {
  if ((s.cinfo.flags & ClusterFlag.USE_LOCK) === 0) return;
  const vid = m.req.vdi.baseVdiId;
  const force = m.req.vdi.type === LockType.NORMAL && m.data.length === 0;
  const holder = s.vdis.get(vid)?.lockOwner;
  const result = releaseVdi(s.vdis, vid, m.sender.nid, force);
  m.rsp.result = result;
  const props = { vid: vid.toString(16), node: nodeAddrString(m.sender), force };
  if (result === Res.SUCCESS) {
    s.log.info(force ? "VDI unlocked by force" : "VDI unlocked", {
      ...props,
      owner: holder ? `${addrToString(holder.addr)}:${holder.port}` : undefined,
    });
  } else if (m.fromSelf) {
    s.log.info("VDI unlock refused", { ...props, result });
  }
}
