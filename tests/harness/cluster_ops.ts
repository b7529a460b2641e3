/**
 * Cluster-level operations on real sheep for the driver tests: a VDI create sent straight over
 * the protocol (to time a cluster operation without dog's start-up), the epoch of a node, and
 * waiting until every node reached an epoch.
 *
 * @module
 */

import type { SheepAddress } from "../../core/net/client.ts";
import { Flag, Op, Res, SD_MAX_VDI_LEN, SD_PROTO_VER } from "../../core/proto/constants.ts";
import { SdReq } from "../../core/proto/header.ts";
import { clusterInfo, connectSheep } from "./proto.ts";
import { sleep } from "./process.ts";

/** NEW_VDI `name` of `size` bytes through the sheep at `where`; returns its id and the time. */
export async function newVdi(
  where: number | SheepAddress,
  name: string,
  size: bigint,
): Promise<{ vid: number; ms: number }> {
  const c = await connectSheep(where);
  try {
    const payload = new Uint8Array(SD_MAX_VDI_LEN);
    payload.set(new TextEncoder().encode(name));
    const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: SD_MAX_VDI_LEN,
    });
    req.vdi.vdiSize = size;
    req.vdi.blockSizeShift = 22;
    const t0 = performance.now();
    const { rsp } = await c.request(req, payload);
    const ms = performance.now() - t0;
    if (rsp.result !== Res.SUCCESS) throw new Error(`NEW_VDI ${name}: result ${rsp.result}`);
    return { vid: rsp.vdi.vdiId, ms };
  } finally {
    c.close();
  }
}

/** The epoch of the sheep at `where`. */
export async function epochOf(where: number | SheepAddress): Promise<number> {
  const c = await connectSheep(where);
  try {
    return (await clusterInfo(c)).epoch;
  } finally {
    c.close();
  }
}

/**
 * Waits until every sheep in `where` is at `epoch` or later; returns, per sheep, the time (from
 * `t0`, performance.now()) at which that was first seen (polled every 10 ms).
 */
export async function waitEpoch(
  where: (number | SheepAddress)[],
  epoch: number,
  deadlineMs: number,
  t0 = performance.now(),
): Promise<number[]> {
  const end = Date.now() + deadlineMs;
  const seen: (number | null)[] = where.map(() => null);
  while (seen.some((s) => s === null)) {
    await Promise.all(where.map(async (w, i) => {
      if (seen[i] !== null) return;
      const e = await epochOf(w).catch(() => -1);
      if (e >= epoch) seen[i] = performance.now() - t0;
    }));
    if (seen.every((s) => s !== null)) break;
    if (Date.now() > end) {
      throw new Error(`epoch ${epoch} not reached everywhere after ${deadlineMs} ms: ${seen}`);
    }
    await sleep(10);
  }
  return seen as number[];
}
