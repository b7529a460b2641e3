/**
 * The simulated administrator deleting a VDI while the cluster changes, as `dog vdi delete` does
 * (cli/dog/vdi.ts deleteVdi): read the inode's data index, write zeros over its non-zero entries
 * (each replaced entry releases its object's reference: the ledger is updated and the object
 * reclaimed on every replica of the current epoch), then DEL_VDI. Its VM was shut down first
 * (Workload.retire). A step that fails (reset connection, gateway gave up) makes the administrator
 * run the whole command again, which reads the index afresh; a DEL_VDI answered NO_VDI after an
 * earlier attempt whose reply was lost is the deletion done.
 *
 * This exercises reclaim against recovery: a node away while an object is reclaimed keeps its
 * copy, and recovery must not bring it back (core/sheep/reclaimed_check.ts).
 *
 * @module
 */

import {
  Flag,
  Op,
  Res,
  SD_INODE_HEADER_SIZE,
  SD_MAX_VDI_LEN,
  SD_PROTO_VER,
} from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { encodeFixedString } from "../proto/strings.ts";
import { vidToVdiOid } from "../hash/oid.ts";
import type { Reply } from "../net/client.ts";
import type { Prng } from "../recovery/prng.ts";
import type { SimNode, SimWorld } from "./sim_node.ts";

/** Pause before the administrator runs a failed command again (ms). */
const RERUN_PAUSE_MS = 500;

/** What to delete. */
export interface VdiToDelete {
  readonly vid: number;
  readonly name: string;
  /** Data objects the VDI can have (entries of its index). */
  readonly objects: number;
  readonly copies: number;
}

/**
 * Deletes `v` through random serving gateways, running the command again after failures until
 * it succeeds or `untilMs`; true when the VDI is deleted.
 */
export async function deleteVdiLikeDog(
  world: SimWorld,
  prng: Prng,
  gateways: () => SimNode[],
  v: VdiToDelete,
  untilMs: number,
): Promise<boolean> {
  const { clock, trace } = world;
  let delSent = false;
  while (clock.now() < untilMs) {
    const step = await attempt(world, prng, gateways, v, delSent);
    if (step === "done") {
      trace.event(`vdi delete ${v.name}: done`);
      return true;
    }
    if (step === "delSent") delSent = true;
    trace.event(`vdi delete ${v.name}: failed, running it again`);
    await clock.sleep(RERUN_PAUSE_MS);
  }
  return false;
}

/** One run of the command; "delSent" when DEL_VDI went out but its reply did not come back. */
async function attempt(
  world: SimWorld,
  prng: Prng,
  gateways: () => SimNode[],
  v: VdiToDelete,
  delSentBefore: boolean,
): Promise<"done" | "delSent" | "failed"> {
  const inode = vidToVdiOid(v.vid);
  const read = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: v.objects * 4 });
  read.obj.oid = inode;
  read.obj.offset = SD_INODE_HEADER_SIZE;
  read.obj.copies = v.copies;
  const idx = await send(world, prng, gateways, read);
  if (idx === null || idx.rsp.result !== Res.SUCCESS) {
    // Deleted by an earlier run whose DEL_VDI reply was lost (the inode may be gone with
    // RECYCLE_VID, or its name cleared): DEL_VDI below says so.
    if (!delSentBefore || idx === null) return "failed";
  } else {
    const entries = new DataView(idx.data.buffer, idx.data.byteOffset, idx.data.length);
    let first = -1;
    for (let i = 0; i < v.objects; i++) {
      if (entries.getUint32(i * 4, true) !== 0) {
        first = i;
        break;
      }
    }
    if (first >= 0) {
      const len = (v.objects - first) * 4;
      const w = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: len });
      w.obj.oid = inode;
      w.obj.offset = SD_INODE_HEADER_SIZE + first * 4;
      w.obj.copies = v.copies;
      const r = await send(world, prng, gateways, w, new Uint8Array(len));
      if (r === null || r.rsp.result !== Res.SUCCESS) {
        world.trace.event(`vdi delete ${v.name}: index write result ${r?.rsp.result ?? "none"}`);
        return delSentBefore ? "delSent" : "failed";
      }
    }
  }
  const payload = new Uint8Array(2 * SD_MAX_VDI_LEN);
  payload.set(encodeFixedString(v.name, SD_MAX_VDI_LEN), 0);
  const del = SdReq.of(Op.DEL_VDI, SD_PROTO_VER, {
    flags: Flag.CMD_WRITE,
    dataLength: payload.length,
  });
  const r = await send(world, prng, gateways, del, payload);
  if (r === null) return "delSent";
  if (r.rsp.result === Res.SUCCESS) return "done";
  if (r.rsp.result === Res.NO_VDI && delSentBefore) return "done";
  world.trace.event(`vdi delete ${v.name}: DEL_VDI result ${r.rsp.result}`);
  return delSentBefore ? "delSent" : "failed";
}

/** One request on a new connection to a random serving gateway; null without a reply. */
async function send(
  world: SimWorld,
  prng: Prng,
  gateways: () => SimNode[],
  req: SdReq,
  data?: Uint8Array,
): Promise<Reply | null> {
  const gws = gateways();
  if (gws.length === 0) return null;
  const gw = prng.pick(gws);
  try {
    const c = await world.net.connect("admin", gw.name);
    try {
      return await c.request(req, data);
    } finally {
      c.close();
    }
  } catch (e) {
    world.trace.event(`admin via ${gw.name}: ${String(e)}`);
    return null;
  }
}
