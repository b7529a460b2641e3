/**
 * Reference release through ledger objects (protocol sheet §8.3), both halves:
 *
 * - Gateway (DECREF_OBJ, and every inode write that replaces data_vdi_id entries): one
 *   DECREF_PEER {ledger oid, generation, count} to each replica of the ledger, each replica asked
 *   exactly once (the op is not idempotent).
 * - Peer (DECREF_PEER): read-modify-write of the local ledger copy under a per-ledger lock. A
 *   missing ledger is the fresh [1] of an object whose creator's reference is the only one; it is
 *   created only when the result is not all zero. When the ledger becomes all zero it is removed,
 *   and the first replica holder of the ledger removes the data object from every replica.
 *
 * Releases are synchronous: the inode write that released a reference is answered only after
 * every ledger replica applied it and a reclaimed object is gone. v1.0 sends them asynchronously
 * unless RECYCLE_VID is set; here a client that discards an object and writes it again can never
 * have its new object removed by a late release of the old one, and a vid freed by RECYCLE_VID
 * never receives a release meant for its previous family.
 *
 * I/O per release: the ledger is read as a prefix covering the generation (4 KiB for the first
 * 1022 generations), and written back as the 8 bytes that changed; the rest of the 4 MiB ledger is
 * read only when the prefix becomes all zero, to confirm the object is unreferenced.
 *
 * @module
 */

import { Op, Res, SD_LEDGER_OBJ_SIZE, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { SdError } from "../proto/sd_error.ts";
import { sameNode } from "../proto/node.ts";
import { dataOidToLedgerOid, oidToString, vidToDataOid } from "../hash/oid.ts";
import {
  applyRelease,
  freshLedger,
  isAllZero,
  ledgerPrefixBytes,
  ledgerWords,
  type Release,
} from "../vdi/gref.ts";
import type { Sheep } from "./sheep.ts";
import { contextLocks, LEDGER_LOCKS } from "./keyed_lock.ts";

/** Releases sent at once by one inode write. */
const RELEASE_WINDOW = 32;
/** Chunk of the ledger read when confirming that it is all zero. */
const CONFIRM_CHUNK = 512 * 1024;

/** The data object of a ledger oid. */
export function ledgerToDataOid(ledgerOid: bigint): bigint {
  return ledgerOid & ~(1n << 59n);
}

/**
 * DECREF_OBJ at the gateway: sends {generation, count} for `ledgerOid` to every replica of the
 * ledger (copies of the data object's VDI).
 */
export async function decrefObject(
  s: Sheep,
  ledgerOid: bigint,
  generation: number,
  count: number,
): Promise<void> {
  const copies = s.gateway.copiesFor(ledgerToDataOid(ledgerOid));
  await s.gateway.eachReplicaOnce(
    ledgerOid,
    copies,
    (epoch) => {
      const req = SdReq.of(Op.DECREF_PEER, SD_SHEEP_PROTO_VER, { epoch });
      req.ref.oid = ledgerOid;
      req.ref.generation = generation;
      req.ref.count = count;
      return req;
    },
    (epoch) => decrefPeer(s, ledgerOid, generation, count, epoch),
  );
}

/**
 * Sends every release (bounded in flight). A release that cannot be delivered is logged and
 * skipped: the object then stays (leaks) rather than being removed while referenced.
 */
export async function sendReleases(s: Sheep, releases: readonly Release[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < releases.length) {
      const r = releases[next++];
      const ledger = dataOidToLedgerOid(vidToDataOid(r.vid, r.idx));
      try {
        await decrefObject(s, ledger, r.generation, r.count);
      } catch (e) {
        s.log.error("cannot release a reference; the object is kept", {
          ledger: oidToString(ledger),
          generation: r.generation,
          count: r.count,
          error: String(e),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RELEASE_WINDOW, releases.length) }, worker));
}

/** DECREF_PEER on this node's copy of the ledger, admitted (recovery's io()) at `epoch`. */
export async function decrefPeer(
  s: Sheep,
  ledgerOid: bigint,
  generation: number,
  count: number,
  epoch: number,
): Promise<void> {
  const locks = contextLocks<bigint>(s, LEDGER_LOCKS);
  const reclaim = await locks.with(
    ledgerOid,
    () => updateLedger(s, ledgerOid, generation, count, epoch),
  );
  if (!reclaim) return;
  const dataOid = ledgerToDataOid(ledgerOid);
  const copies = s.gateway.copiesFor(dataOid);
  const first = s.ring.place(ledgerOid, copies)[0];
  if (first === undefined || !sameNode(first, s.self)) return;
  s.log.debug("reclaiming an unreferenced object", { oid: oidToString(dataOid) });
  await s.gateway.remove(dataOid, copies);
}

/** Applies one release to the local ledger; true when the object became unreferenced. */
async function updateLedger(
  s: Sheep,
  ledgerOid: bigint,
  generation: number,
  count: number,
  epoch: number,
): Promise<boolean> {
  const prefixLen = ledgerPrefixBytes(generation);
  let exists = true;
  let prefix: Uint8Array;
  try {
    prefix = await s.store.read(ledgerOid, 0, prefixLen);
  } catch (e) {
    if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
    if (s.cinfo.epoch !== epoch) {
      // Admitted at another epoch (an older one, then it waited for the lock; or a newer one this
      // node has not adopted yet): the ledger may be missing because the moves took it to stale or
      // its recovery has not run, not because it is the fresh [1]. Creating it would leave a live
      // copy with a wrong count, maybe on a node that does not hold the ledger any more (a later
      // epoch could trust it). Nothing is applied: the gateway retries at the current epoch.
      throw new SdError(
        Res.OLD_NODE_VER,
        `${oidToString(ledgerOid)} missing after an epoch change`,
      );
    }
    exists = false;
    prefix = freshLedger(prefixLen);
  }
  const changed = applyRelease(prefix, generation, count);
  let zero = isAllZero(prefix);
  if (zero && exists) zero = await restIsZero(s, ledgerOid, prefixLen);
  if (zero) {
    if (exists) await s.store.remove(ledgerOid).catch(ignoreNoObj);
    return true;
  }
  if (exists) {
    await s.store.write(
      ledgerOid,
      changed.offset,
      prefix.subarray(changed.offset, changed.offset + changed.length),
    );
  } else {
    await s.store.create(ledgerOid, 0, prefix, SD_LEDGER_OBJ_SIZE, { sparse: true })
      .catch(async (e) => {
        // Another create won meanwhile (cannot happen under the lock, but a store may say so).
        if (!(e instanceof SdError && e.result === Res.OID_EXIST)) throw e;
        await s.store.write(ledgerOid, 0, prefix);
      });
  }
  s.log.debug("ledger updated", { ledger: oidToString(ledgerOid), words: ledgerWords(prefix) });
  return false;
}

async function restIsZero(s: Sheep, ledgerOid: bigint, from: number): Promise<boolean> {
  for (let at = from; at < SD_LEDGER_OBJ_SIZE; at += CONFIRM_CHUNK) {
    const n = Math.min(CONFIRM_CHUNK, SD_LEDGER_OBJ_SIZE - at);
    if (!isAllZero(await s.store.read(ledgerOid, at, n))) return false;
  }
  return true;
}

function ignoreNoObj(e: unknown): void {
  if (!(e instanceof SdError && e.result === Res.NO_OBJ)) throw e;
}
