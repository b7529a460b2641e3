/**
 * The PEER ops as served to other sheep (the gateway of another node forwards them here).
 *
 * @module
 */

import { Flag, Op, Res } from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import type { Sheep } from "./sheep.ts";
import { peerCreate, peerRead, peerRemove, peerWrite } from "./peer_ops.ts";
import { decrefPeer } from "./ledger.ts";
import { isLedgerObj } from "../hash/oid.ts";

/** Serves one peer op on the local store. */
export async function handlePeerOp(
  s: Sheep,
  req: SdReq,
  data: Uint8Array | undefined,
  _rsp: SdRsp,
): Promise<Uint8Array | undefined> {
  const st = s.stats;
  st.peerActive++;
  st.peerTotal++;
  try {
    const oid = req.obj.oid;
    // Every op on the local store passes recovery's admission (recovery_executor.ts io()).
    const io = s.recovery;
    const epoch = req.epoch;
    const writeback = (req.flags & Flag.CMD_WRITEBACK) !== 0;
    switch (req.opcode) {
      case Op.READ_PEER: {
        st.peerRead++;
        // A recovery read: the live object or the stale copy of tgt_epoch; never waits.
        const out = (req.flags & Flag.CMD_RECOVERY) !== 0
          ? await io.serveRecoveryRead(req)
          : await io.io(oid, "read", epoch, () => peerRead(s, oid, req.obj.offset, req.dataLength));
        st.peerTx += out.length;
        return out;
      }
      case Op.CREATE_AND_WRITE_PEER:
        st.peerWrite++;
        st.peerRx += data?.length ?? 0;
        await io.io(
          oid,
          "create",
          epoch,
          () => peerCreate(s, oid, req.obj.offset, data ?? new Uint8Array(), writeback),
        );
        return undefined;
      case Op.WRITE_PEER:
        st.peerWrite++;
        st.peerRx += data?.length ?? 0;
        await io.io(
          oid,
          "write",
          epoch,
          () => peerWrite(s, oid, req.obj.offset, data ?? new Uint8Array(), writeback),
        );
        return undefined;
      case Op.FLUSH_PEER:
        // Every writeback write this node acknowledged, at whatever epoch: no admission needed.
        await s.store.flush();
        return undefined;
      case Op.REMOVE_PEER:
        st.peerRemove++;
        await io.io(oid, "remove", epoch, () => peerRemove(s, oid));
        return undefined;
      case Op.DECREF_PEER:
        if (!isLedgerObj(req.ref.oid)) {
          throw new SdError(Res.INVALID_PARMS, "DECREF_PEER needs a ledger object id");
        }
        await io.io(
          req.ref.oid,
          "write",
          epoch,
          () => decrefPeer(s, req.ref.oid, req.ref.generation, req.ref.count, epoch),
        );
        return undefined;
    }
    throw new SdError(Res.INVALID_PARMS);
  } finally {
    st.peerActive--;
  }
}
