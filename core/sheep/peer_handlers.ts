/**
 * The PEER ops as served to other sheep (the gateway of another node forwards them here).
 *
 * @module
 */

import { Op, Res } from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import type { Sheep } from "./sheep.ts";
import { peerCreate, peerRead, peerRemove, peerWrite } from "./peer_ops.ts";

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
    switch (req.opcode) {
      case Op.READ_PEER: {
        st.peerRead++;
        const out = await peerRead(s, oid, req.obj.offset, req.dataLength);
        st.peerTx += out.length;
        return out;
      }
      case Op.CREATE_AND_WRITE_PEER:
        st.peerWrite++;
        st.peerRx += data?.length ?? 0;
        await peerCreate(s, oid, req.obj.offset, data ?? new Uint8Array());
        return undefined;
      case Op.WRITE_PEER:
        st.peerWrite++;
        st.peerRx += data?.length ?? 0;
        await peerWrite(s, oid, req.obj.offset, data ?? new Uint8Array());
        return undefined;
      case Op.REMOVE_PEER:
        st.peerRemove++;
        await peerRemove(s, oid);
        return undefined;
    }
    throw new SdError(Res.INVALID_PARMS);
  } finally {
    st.peerActive--;
  }
}
