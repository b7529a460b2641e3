/**
 * Local ops: served by the receiving node alone from its own state (node list, cluster and store
 * statistics, epochs, VDI bitmaps, log level, existence checks).
 *
 * @module
 */

import {
  ClusterStatus,
  Flag,
  Op,
  Res,
  SD_INODE_HEADER_SIZE,
  SD_NODE_SIZE,
  SD_VDI_BITMAP_SIZE,
} from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { encodeClusterInfo } from "../proto/cluster_info.ts";
import { decodeEpochFile, encodeEpochLogRecord, epochLogRecordSize } from "../proto/epoch_log.ts";
import { encodeNodes, sortNodes } from "../proto/node.ts";
import {
  decodeRecoveryThrottling,
  encodeRecoveryState,
  encodeRecoveryThrottling,
  encodeStat,
  RECOVERY_THROTTLING_SIZE,
} from "../proto/stat.ts";
import { throttleFromWire, throttleToWire } from "../recovery/progress.ts";
import { encodeDegradedNodes } from "../proto/degraded.ts";
import { repairReplica } from "./recovery_ops.ts";
import { dataOidToIdx, isDataObj, oidToVid, vidToVdiOid } from "../hash/oid.ts";
import { writeInodeIndex } from "./gateway_ops.ts";
import type { ConnectionInfo } from "../net/server.ts";
import type { Sheep } from "./sheep.ts";

/** Serves one local op. */
export async function handleLocalOp(
  s: Sheep,
  req: SdReq,
  data: Uint8Array | undefined,
  rsp: SdRsp,
  _conn: ConnectionInfo,
): Promise<Uint8Array | undefined> {
  switch (req.opcode) {
    case Op.READ_VDIS:
    case Op.READ_DEL_VDIS: {
      // v1.0 accepts exactly the bitmap's size, nothing shorter or longer.
      if (req.dataLength !== SD_VDI_BITMAP_SIZE) {
        throw new SdError(Res.INVALID_PARMS, "the VDI bitmap reply is exactly 2,097,152 bytes");
      }
      const map = req.opcode === Op.READ_VDIS ? s.vdis.inUse : s.vdis.deleted;
      return map.bytes.slice();
    }
    case Op.FLUSH_VDI:
      // Obsolete in v1.0: clients read INVALID_PARMS as "no cache" and carry on.
      throw new SdError(Res.INVALID_PARMS);
    case Op.GET_CLUSTER_DEFAULT:
      rsp.clusterDefault.nrCopies = s.cinfo.nrCopies;
      rsp.clusterDefault.copyPolicy = s.cinfo.copyPolicy;
      rsp.clusterDefault.blockSizeShift = s.cinfo.blockSizeShift;
      return undefined;
    case Op.GET_NODE_LIST: {
      const nodes = sortNodes(s.cinfo.status === ClusterStatus.OK ? s.cinfo.nodes : s.members);
      rsp.node.nrNodes = nodes.length;
      const fit = Math.min(nodes.length, Math.floor(req.dataLength / SD_NODE_SIZE));
      return encodeNodes(nodes.slice(0, fit));
    }
    case Op.STAT_SHEEP: {
      const used = BigInt(await s.store.usedBytes());
      const size = s.config.space;
      rsp.node.storeSize = size;
      rsp.node.storeFree = size > used ? size - used : 0n;
      return undefined;
    }
    case Op.STAT_CLUSTER:
      return await statCluster(s, req, rsp);
    case Op.GET_STORE_LIST:
      return new TextEncoder().encode("plain");
    case Op.STAT_RECOVERY:
      return encodeRecoveryState(s.recovery.state());
    case Op.STAT_DEGRADED:
      return encodeDegradedNodes(s.recovery.degraded, req.dataLength);
    case Op.FLUSH_DEL_CACHE:
      return undefined;
    case Op.KILL_NODE:
      s.kill();
      return undefined;
    case Op.GET_OBJ_LIST: {
      // Recovery's list (CMD_RECOVERY): live and stale oids, at the requester's epoch.
      if ((req.flags & Flag.CMD_RECOVERY) !== 0) return await s.recovery.serveObjectList(req);
      const oids = await s.store.list();
      const out = new Uint8Array(oids.length * 8);
      const v = new DataView(out.buffer);
      oids.forEach((o, i) => v.setBigUint64(i * 8, o, true));
      if (out.length > req.dataLength) throw new SdError(Res.BUFFER_SMALL);
      return out;
    }
    case Op.GET_EPOCH: {
      const bytes = await s.deps.meta.readEpoch(req.obj.tgtEpoch);
      if (!bytes) throw new SdError(Res.NO_TAG, `no epoch ${req.obj.tgtEpoch}`);
      if (bytes.length > req.dataLength) throw new SdError(Res.BUFFER_SMALL);
      return bytes;
    }
    case Op.GET_VDI_COPIES: {
      const out = s.vdis.encode();
      if (out.length > req.dataLength) throw new SdError(Res.BUFFER_SMALL);
      return out;
    }
    case Op.GET_HASH:
      rsp.hash.digest = await s.recovery.serveHash(req);
      return undefined;
    case Op.STAT:
      return encodeStat(s.stats.toSdStat());
    case Op.GET_LOGLEVEL: {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setInt32(0, s.log.level, true);
      return out;
    }
    case Op.SET_LOGLEVEL: {
      if (!data || data.length < 4) throw new SdError(Res.INVALID_PARMS, "log level payload");
      const level = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
      if (level < 0 || level > 7) throw new SdError(Res.INVALID_PARMS, `log level ${level}`);
      s.log.level = level;
      return undefined;
    }
    case Op.EXIST:
      if (!(await s.store.exists(req.obj.oid))) throw new SdError(Res.NO_OBJ);
      return undefined;
    case Op.CLUSTER_INFO:
      return encodeClusterInfo(s.cinfo, true);
    case Op.OIDS_EXIST: {
      const buf = data ?? new Uint8Array();
      const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const missing: bigint[] = [];
      for (let off = 0; off + 8 <= buf.length; off += 8) {
        const oid = v.getBigUint64(off, true);
        if (!(await s.store.exists(oid))) missing.push(oid);
      }
      if (missing.length === 0) return undefined;
      const out = new Uint8Array(missing.length * 8);
      const ov = new DataView(out.buffer);
      missing.forEach((o, i) => ov.setBigUint64(i * 8, o, true));
      rsp.result = Res.NO_OBJ;
      return out;
    }
    case Op.GET_RECOVERY:
      return encodeRecoveryThrottling(throttleToWire(s.recovery.throttle));
    case Op.SET_RECOVERY: {
      if (!data || data.length < RECOVERY_THROTTLING_SIZE) {
        throw new SdError(Res.INVALID_PARMS, "recovery throttling payload");
      }
      s.recovery.setThrottle(throttleFromWire(decodeRecoveryThrottling(data)));
      return undefined;
    }
    case Op.REPAIR_REPLICA:
      await repairReplica(s, req);
      return undefined;
    case Op.WAIT_APPLIED:
      await s.waitApplied(data);
      return undefined;
    case Op.DISCARD_OBJ:
      await discardObj(s, req.obj.oid);
      return undefined;
  }
  throw new SdError(Res.INVALID_PARMS, `no local handler for 0x${req.opcode.toString(16)}`);
}

async function statCluster(s: Sheep, req: SdReq, rsp: SdRsp): Promise<Uint8Array> {
  const ci = s.cinfo;
  const stateResult = ci.status === ClusterStatus.SHUTDOWN
    ? Res.SHUTDOWN
    : ci.status === ClusterStatus.WAIT
    ? (ci.ctime === 0n ? Res.WAIT_FOR_FORMAT : Res.WAIT_FOR_JOIN)
    : Res.SUCCESS;
  const slots = req.cluster.nodesNr;
  const recSize = epochLogRecordSize(slots);
  const epochs = ci.ctime === 0n ? [] : (await s.deps.meta.listEpochs()).reverse();
  const maxRecs = Math.floor(req.dataLength / recSize);
  const parts: Uint8Array[] = [];
  for (const e of epochs.slice(0, maxRecs)) {
    const bytes = await s.deps.meta.readEpoch(e);
    if (!bytes) continue;
    const f = decodeEpochFile(bytes);
    if (f.nodes.length > slots) throw new SdError(Res.BUFFER_SMALL);
    parts.push(encodeEpochLogRecord({
      ctime: ci.ctime,
      time: f.time,
      epoch: e,
      nrNodes: f.nodes.length,
      disableRecovery: ci.disableRecovery,
      nrCopies: ci.nrCopies,
      copyPolicy: ci.copyPolicy,
      flags: ci.flags,
      drvName: ci.defaultStore || "plain",
      nodes: f.nodes,
    }, slots));
  }
  if (epochs.length > maxRecs && maxRecs === 0 && epochs.length > 0) {
    throw new SdError(Res.BUFFER_SMALL);
  }
  const out = new Uint8Array(parts.length * recSize);
  parts.forEach((p, i) => out.set(p, i * recSize));
  rsp.result = stateResult;
  return out;
}

/**
 * DISCARD_OBJ: zero the inode entry of the data object and persist it; the reference it held is
 * released like any other replaced entry (the object goes once nothing references it).
 */
async function discardObj(s: Sheep, oid: bigint): Promise<void> {
  if (!isDataObj(oid)) throw new SdError(Res.INVALID_PARMS, "DISCARD_OBJ needs a data object");
  const vid = oidToVid(oid);
  const idx = dataOidToIdx(oid);
  if (s.vdis.get(vid)?.snapshot) {
    throw new SdError(Res.READONLY, `${vid.toString(16)} is a snapshot`);
  }
  const inode = vidToVdiOid(vid);
  const at = SD_INODE_HEADER_SIZE + idx * 4;
  const cur = await s.gateway.read(inode, at, 4);
  const owner = new DataView(cur.buffer, cur.byteOffset, 4).getUint32(0, true);
  if (owner === 0) return;
  await writeInodeIndex(s, inode, at, new Uint8Array(4), 0);
}
