/**
 * REPAIR_REPLICA (protocol sheet: forw.oid, forw.addr, forw.port): `dog vdi check` found this
 * node's replica of an object missing or different from a good one; this node reads the whole
 * object from the node named in the request and stores it in place of its own copy.
 *
 * @module
 */

import { Op, Res, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { addrToString } from "../proto/node.ts";
import { isLedgerObj, isVdiObj, oidToString } from "../hash/oid.ts";
import { sizeOf } from "./peer_ops.ts";
import type { Sheep } from "./sheep.ts";

/** Serves REPAIR_REPLICA: copy the object from forw.addr:forw.port over the local replica. */
export async function repairReplica(s: Sheep, req: SdReq): Promise<void> {
  const oid = req.forw.oid;
  const host = addrToString(req.forw.addr);
  const port = req.forw.port;
  const epoch = s.cinfo.epoch;
  const read = SdReq.of(Op.READ_PEER, SD_SHEEP_PROTO_VER, { epoch, dataLength: sizeOf(s, oid) });
  read.obj.oid = oid;
  let reply;
  try {
    reply = await s.peers.request(host, port, read);
  } catch (e) {
    throw new SdError(Res.NETWORK_ERROR, `repair of ${oidToString(oid)}: ${String(e)}`);
  }
  if (reply.rsp.result !== Res.SUCCESS) {
    throw new SdError(reply.rsp.result, `repair of ${oidToString(oid)} from ${host}:${port}`);
  }
  const data = reply.data;
  await s.recovery.io(oid, "create", epoch, () =>
    s.store.create(oid, 0, data, data.length, {
      sparse: isVdiObj(oid) || isLedgerObj(oid),
      replace: true,
    }));
  s.log.info("replica repaired", { oid: oidToString(oid), from: `${host}:${port}` });
}
