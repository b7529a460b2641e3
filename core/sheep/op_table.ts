/**
 * The op table: for every opcode the sheep serves, its handling class (gateway, peer, local,
 * cluster), whether it is served while the cluster waits ("force"), and for cluster ops whether it
 * has a work step (run under block/unblock on the requesting node).
 *
 * @module
 */

import { Op } from "../proto/constants.ts";

/** G gateway, P peer, L local, C cluster. */
export type OpClass = "G" | "P" | "L" | "C";

/** How an opcode is handled. */
export interface OpSpec {
  cls: OpClass;
  force: boolean;
  /** Cluster ops only: has a work step (block → work → unblock). */
  work?: boolean;
}

const g = (): OpSpec => ({ cls: "G", force: false });
const p = (): OpSpec => ({ cls: "P", force: false });
const l = (force = false): OpSpec => ({ cls: "L", force });
const c = (work: boolean, force = false): OpSpec => ({ cls: "C", force, work });

/** Every opcode this sheep serves. Anything else is INVALID_PARMS. */
export const OP_TABLE: ReadonlyMap<number, OpSpec> = new Map<number, OpSpec>([
  [Op.CREATE_AND_WRITE_OBJ, g()],
  [Op.READ_OBJ, g()],
  [Op.WRITE_OBJ, g()],
  [Op.REMOVE_OBJ, g()],
  [Op.DISCARD_OBJ, l()],
  [Op.NEW_VDI, c(true)],
  [Op.LOCK_VDI, c(true)],
  [Op.RELEASE_VDI, c(false)],
  [Op.GET_VDI_INFO, c(true)],
  [Op.READ_VDIS, l(true)],
  [Op.FLUSH_VDI, l()],
  [Op.DEL_VDI, c(true)],
  [Op.GET_CLUSTER_DEFAULT, l(true)],

  [Op.GET_NODE_LIST, l(true)],
  [Op.MAKE_FS, c(false, true)],
  [Op.SHUTDOWN, c(false, true)],
  [Op.STAT_SHEEP, l()],
  [Op.STAT_CLUSTER, l(true)],
  [Op.GET_VDI_ATTR, c(true)],
  [Op.FORCE_RECOVER, c(false, true)],
  [Op.GET_STORE_LIST, l(true)],
  [Op.CLEANUP, c(false, true)],
  [Op.STAT_RECOVERY, l()],
  [Op.FLUSH_DEL_CACHE, l()],
  [Op.NOTIFY_VDI_DEL, c(false, true)],
  [Op.KILL_NODE, l(true)],
  [Op.GET_OBJ_LIST, l()],
  [Op.GET_EPOCH, l()],
  [Op.CREATE_AND_WRITE_PEER, p()],
  [Op.READ_PEER, p()],
  [Op.WRITE_PEER, p()],
  [Op.REMOVE_PEER, p()],
  [Op.FLUSH_NODES, g()],
  [Op.FLUSH_PEER, p()],
  [Op.ENABLE_RECOVER, c(false)],
  [Op.DISABLE_RECOVER, c(false)],
  [Op.GET_VDI_COPIES, l(true)],
  [Op.NOTIFY_VDI_ADD, c(false, true)],
  [Op.DELETE_CACHE, c(false)],
  [Op.GET_HASH, l()],
  [Op.STAT, l()],
  [Op.GET_LOGLEVEL, l(true)],
  [Op.SET_LOGLEVEL, l(true)],
  [Op.EXIST, l(true)],
  [Op.CLUSTER_INFO, l(true)],
  [Op.ALTER_CLUSTER_COPY, c(false)],
  [Op.DECREF_OBJ, g()],
  [Op.DECREF_PEER, p()],
  [Op.REPAIR_REPLICA, l()],
  [Op.OIDS_EXIST, l(true)],
  [Op.READ_DEL_VDIS, l(true)],
  [Op.GET_RECOVERY, l(true)],
  [Op.SET_RECOVERY, l(true)],
  [Op.WAIT_APPLIED, l(true)],
  [Op.STAT_DEGRADED, l(true)],
]);
