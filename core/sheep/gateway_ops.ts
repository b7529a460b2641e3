/**
 * Client object I/O (CREATE_AND_WRITE_OBJ, READ_OBJ, WRITE_OBJ, REMOVE_OBJ): checks that only the
 * gateway can make (read-only snapshots, bounds), then the Gateway does the replica work. A write
 * that zeroes entries of an inode's data_vdi_id releases the objects the VDI owned alone.
 *
 * @module
 */

import { Flag, Op, Res, SD_INODE_HEADER_SIZE } from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import {
  isDataObj,
  isVdiObj,
  isVmstateObj,
  oidToString,
  oidToVid,
  vidToDataOid,
} from "../hash/oid.ts";
import { MAX_DATA_OBJS } from "../proto/constants.ts";
import type { Sheep } from "./sheep.ts";
import { sizeOf } from "./peer_ops.ts";

const INDEX_END = SD_INODE_HEADER_SIZE + 4 * MAX_DATA_OBJS;

/** Serves one gateway op. */
export async function handleGatewayOp(
  s: Sheep,
  req: SdReq,
  data: Uint8Array | undefined,
  rsp: SdRsp,
): Promise<Uint8Array | undefined> {
  const oid = req.obj.oid;
  const offset = req.obj.offset;
  const copies = req.obj.copies;
  const st = s.stats;
  st.gwayActive++;
  st.gwayTotal++;
  try {
    switch (req.opcode) {
      case Op.READ_OBJ: {
        st.gwayRead++;
        checkRange(s, oid, offset, req.dataLength);
        const out = await s.gateway.read(oid, offset, req.dataLength, copies);
        st.gwayTx += out.length;
        return out;
      }
      case Op.CREATE_AND_WRITE_OBJ: {
        st.gwayWrite++;
        const payload = data ?? new Uint8Array();
        st.gwayRx += payload.length;
        checkRange(s, oid, offset, payload.length);
        checkWritable(s, oid);
        const cow = (req.flags & Flag.CMD_COW) !== 0 ? req.obj.cowOid : 0n;
        await s.gateway.create(oid, offset, payload, copies, cow, sizeOf(s, oid));
        rsp.obj.copies = s.gateway.copiesFor(oid, copies);
        return undefined;
      }
      case Op.WRITE_OBJ: {
        st.gwayWrite++;
        const payload = data ?? new Uint8Array();
        st.gwayRx += payload.length;
        checkRange(s, oid, offset, payload.length);
        checkWritable(s, oid);
        if (isVdiObj(oid) && offset < INDEX_END && offset + payload.length > SD_INODE_HEADER_SIZE) {
          await writeInodeIndex(s, oid, offset, payload, copies);
        } else {
          await s.gateway.write(oid, offset, payload, copies);
        }
        return undefined;
      }
      case Op.REMOVE_OBJ:
        st.gwayRemove++;
        await s.gateway.remove(oid, copies);
        return undefined;
    }
    throw new SdError(Res.INVALID_PARMS);
  } finally {
    st.gwayActive--;
  }
}

function checkRange(s: Sheep, oid: bigint, offset: number, length: number): void {
  const size = sizeOf(s, oid);
  if (offset + length > size) {
    throw new SdError(
      Res.INVALID_PARMS,
      `range ${offset}+${length} is outside object ${oidToString(oid)} of ${size} bytes`,
    );
  }
}

function checkWritable(s: Sheep, oid: bigint): void {
  if (!isDataObj(oid) && !isVmstateObj(oid)) return;
  const v = s.vdis.get(oidToVid(oid));
  if (v?.snapshot) throw new SdError(Res.READONLY, `${oidToString(oid)} belongs to a snapshot`);
}

/**
 * A write over data_vdi_id entries: entries this VDI owned that are replaced drop their object,
 * unless snapshots or clones of this VDI may still share it.
 */
async function writeInodeIndex(
  s: Sheep,
  oid: bigint,
  offset: number,
  payload: Uint8Array,
  copies: number,
): Promise<void> {
  const vid = oidToVid(oid);
  const from = Math.max(offset, SD_INODE_HEADER_SIZE);
  const to = Math.min(offset + payload.length, INDEX_END);
  const firstIdx = Math.floor((from - SD_INODE_HEADER_SIZE) / 4);
  const lastIdx = Math.ceil((to - SD_INODE_HEADER_SIZE) / 4);
  const aStart = SD_INODE_HEADER_SIZE + firstIdx * 4;
  const old = await s.gateway.read(oid, aStart, (lastIdx - firstIdx) * 4, copies);
  await s.gateway.write(oid, offset, payload, copies);
  if (s.vdis.hasChildren(vid) || s.vdis.get(vid)?.snapshot) return;
  const after = await s.gateway.read(oid, aStart, (lastIdx - firstIdx) * 4, copies);
  const before = new DataView(old.buffer, old.byteOffset, old.length);
  const now = new DataView(after.buffer, after.byteOffset, after.length);
  for (let i = 0; i < lastIdx - firstIdx; i++) {
    const was = before.getUint32(i * 4, true);
    if (was === vid && now.getUint32(i * 4, true) !== vid) {
      await s.gateway.remove(vidToDataOid(vid, firstIdx + i)).catch((e) =>
        s.log.warn("cannot release a data object", { error: String(e) })
      );
    }
  }
}
