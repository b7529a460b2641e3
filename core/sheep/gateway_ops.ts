/**
 * Client object I/O (CREATE_AND_WRITE_OBJ, READ_OBJ, WRITE_OBJ, REMOVE_OBJ): checks that only the
 * gateway can make (read-only snapshots, bounds), then the Gateway does the replica work. A write
 * that replaces entries of an inode's data_vdi_id releases the references they held (gref and
 * ledger, protocol sheet §8.3); DECREF_OBJ releases one reference explicitly.
 *
 * Writeback (Flag.CMD_WRITEBACK, the NBD export's writes): creates and writes are acknowledged
 * before they are durable, and FLUSH_NODES makes everything acknowledged before it durable. An
 * inode write that replaces non-zero entries stays durable whatever the flag: the references of
 * the replaced entries are released right after it, and a crash must never bring back an entry
 * whose object was released.
 *
 * @module
 */

import { Flag, Op, Res, SD_INODE_HEADER_SIZE } from "../proto/constants.ts";
import type { SdReq, SdRsp } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import {
  isDataObj,
  isLedgerObj,
  isVdiObj,
  isVmstateObj,
  oidToString,
  oidToVid,
} from "../hash/oid.ts";
import { MAX_DATA_OBJS } from "../proto/constants.ts";
import {
  decodeIndex,
  GREF_SIZE,
  grefOffset,
  indexOffset,
  releasedReferences,
} from "../vdi/gref.ts";
import type { Sheep } from "./sheep.ts";
import { sizeOf } from "./peer_ops.ts";
import { contextLocks, INODE_LOCKS } from "./keyed_lock.ts";
import { decrefObject, sendReleases } from "./ledger.ts";

const INDEX_END = SD_INODE_HEADER_SIZE + 4 * MAX_DATA_OBJS;

/**
 * Serves one gateway op; `client` is aborted when the client's connection is gone (writes then
 * stop retrying).
 */
export async function handleGatewayOp(
  s: Sheep,
  req: SdReq,
  data: Uint8Array | undefined,
  rsp: SdRsp,
  client?: AbortSignal,
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
        await s.gateway.create(
          oid,
          offset,
          payload,
          copies,
          cow,
          sizeOf(s, oid),
          client,
          writebackOf(req),
        );
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
          await writeInodeIndex(s, oid, offset, payload, copies, writebackOf(req));
        } else {
          await s.gateway.write(oid, offset, payload, copies, client, writebackOf(req));
        }
        return undefined;
      }
      case Op.FLUSH_NODES:
        await s.gateway.flushNodes(client);
        return undefined;
      case Op.REMOVE_OBJ:
        st.gwayRemove++;
        await s.gateway.remove(oid, copies, client);
        return undefined;
      case Op.DECREF_OBJ:
        if (!isLedgerObj(req.ref.oid)) {
          throw new SdError(Res.INVALID_PARMS, "DECREF_OBJ needs a ledger object id");
        }
        await decrefObject(s, req.ref.oid, req.ref.generation, req.ref.count);
        return undefined;
    }
    throw new SdError(Res.INVALID_PARMS);
  } finally {
    st.gwayActive--;
  }
}

function writebackOf(req: SdReq): boolean {
  return (req.flags & Flag.CMD_WRITEBACK) !== 0;
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
 * A write over data_vdi_id entries, with generational reference counting (§8.3): under the VDI's
 * inode lock, the old entries and their grefs are read, the write goes to every replica, then each
 * replaced non-zero entry releases its reference (DECREF to the ledger of the old object, waited
 * for) and its gref is reset to {0, 0}. A crash between these steps can only leak an object
 * (a reference counted that no longer exists), never drop one that is still referenced.
 *
 * A snapshot's entries may only be cleared (dog releases them when deleting it): a write that
 * would point a snapshot at other objects is refused with READONLY.
 */
export async function writeInodeIndex(
  s: Sheep,
  oid: bigint,
  offset: number,
  payload: Uint8Array,
  copies: number,
  writeback = false,
): Promise<void> {
  const vid = oidToVid(oid);
  const from = Math.max(offset, SD_INODE_HEADER_SIZE);
  const to = Math.min(offset + payload.length, INDEX_END);
  const firstIdx = Math.floor((from - SD_INODE_HEADER_SIZE) / 4);
  const lastIdx = Math.ceil((to - SD_INODE_HEADER_SIZE) / 4);
  const n = lastIdx - firstIdx;
  const aStart = indexOffset(firstIdx);
  await contextLocks<number>(s, INODE_LOCKS).with(vid, async () => {
    const oldBytes = await s.gateway.read(oid, aStart, n * 4, copies);
    // The entries as they will be: the old bytes with the payload laid over them.
    const newBytes = oldBytes.slice();
    const lo = Math.max(aStart, offset);
    const hi = Math.min(aStart + n * 4, offset + payload.length);
    newBytes.set(payload.subarray(lo - offset, hi - offset), lo - aStart);
    const before = decodeIndex(oldBytes);
    const after = decodeIndex(newBytes);
    if (s.vdis.get(vid)?.snapshot && after.some((v, i) => v !== 0 && v !== before[i])) {
      throw new SdError(Res.READONLY, `VDI ${vid.toString(16)} is a snapshot`);
    }
    // Only entries that held a reference and change need their grefs (the common case of a
    // client naming a newly created object in an empty entry reads none).
    const replaces = before.some((v, i) => v !== 0 && v !== after[i]);
    const grefs = replaces
      ? await s.gateway.read(oid, grefOffset(firstIdx), n * GREF_SIZE, copies)
      : new Uint8Array(n * GREF_SIZE);
    // Only a write that fills empty entries may be writeback (see the module doc).
    await s.gateway.write(oid, offset, payload, copies, undefined, writeback && !replaces);
    if (!replaces) return;
    const { releases, changed } = releasedReferences(firstIdx, before, after, grefs);
    await sendReleases(s, releases);
    // Reset the grefs of the replaced entries, one write per run of consecutive ones.
    let i = 0;
    while (i < changed.length) {
      let j = i + 1;
      while (j < changed.length && changed[j] === changed[j - 1] + 1) j++;
      const zeros = new Uint8Array((j - i) * GREF_SIZE);
      await s.gateway.write(oid, grefOffset(firstIdx + changed[i]), zeros, copies);
      i = j;
    }
  });
}
