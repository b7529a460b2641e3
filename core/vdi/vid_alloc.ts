/**
 * VID allocation and lookup by name, v1.0's open addressing in the in-use bitmap (protocol sheet
 * §7.2), split into pure steps around the I/O:
 *
 * 1. planLookup() picks the free vid a new VDI would take and the vids whose inode headers must
 *    be read, in scan order;
 * 2. the caller reads those headers (it may stop at the first matchVdiHeader() "match");
 * 3. chooseVdi() turns the headers read into v1.0's result (SUCCESS + vid, NO_TAG or NO_VDI).
 *
 * Default mode: a name's family occupies the run of set in-use bits starting at its hash slot;
 * each snapshot or clone takes the first clear bit after the run, so the newest (working) VDI
 * has the highest vid and a downward scan meets it first. Deleted VDIs keep their in-use bit and
 * their inode, whose name is cleared, so they never match a name again.
 *
 * @module
 */

import { SdError } from "../proto/sd_error.ts";
import { Res, SD_NR_VDIS } from "../proto/constants.ts";
import { vidOfName } from "../hash/oid.ts";
import { assert } from "../assert.ts";
import type { VdiBitmap } from "./bitmap.ts";

/** What a lookup needs to read, and where a new VDI of that name would go. */
export interface LookupPlan {
  /** The vid a new VDI/snapshot/clone takes; null when the bitmap is full (FULL_VDI). */
  freeVid: number | null;
  /** Vids whose inode header to read, in scan order (the first match wins). */
  candidates: number[];
}

/** The inode header fields a lookup compares (name and tag decoded up to their NUL). */
export interface VdiLookupHeader {
  name: string;
  tag: string;
  snapId: number;
  /** Non-zero ⇒ the VDI is a snapshot. */
  snapCtime: bigint;
}

/** One inode header read during a lookup. */
export interface FoundVdi {
  vid: number;
  header: VdiLookupHeader;
}

/** What is looked up besides the name: nothing (the working VDI), a tag or a snap id. */
export interface VdiWant {
  tag?: string;
  snapId?: number;
}

/** Outcome of a lookup: SUCCESS with the vid, or NO_TAG / NO_VDI. */
export interface VdiChoice {
  result: number;
  vid?: number;
}

/** How one header relates to a lookup; see matchVdiHeader(). */
export type VdiHeaderMatch = "match" | "name" | "other";

function checkName(name: string | Uint8Array): void {
  if (name.length === 0) throw new SdError(Res.INVALID_PARMS, "empty VDI name");
}

/**
 * The first slot of a name's family: vidOfName(name), with 0 replaced by 1 because vid 0 is
 * never used.
 */
export function vidSlotOfName(name: string | Uint8Array): number {
  return vidOfName(name) || 1;
}

/**
 * Plans a lookup of `name` over the in-use and deleted bitmaps (§7.2).
 *
 * Default mode: left = vidSlotOfName(name); right = the first clear in-use bit ≥ left, or, when
 * there is none up to 2^24-1, the first clear bit ≥ 1 (wrap-around); none at all → freeVid null
 * (FULL_VDI) and nothing to read, as in v1.0, whose lookup fails outright then. freeVid = right.
 * Candidates: right-1 down to left; when wrapped, right-1 down to 1 and then 2^24-1 down to left
 * (the wrapped piece holds the family's newest members). left == right gives no candidates: the
 * name does not exist.
 *
 * `recycle` (RECYCLE_VID clusters): freeVid is the first clear bit ≥ 1 (null when none) and the
 * candidates are every vid from 2^24-1 down to 1, regardless of the name.
 *
 * In both modes only vids whose in-use or deleted bit is set are candidates (in default mode the
 * whole scanned run is in use by construction). Throws SdError(INVALID_PARMS) for an empty name.
 */
export function planLookup(
  inUse: VdiBitmap,
  deleted: VdiBitmap,
  name: string | Uint8Array,
  recycle: boolean,
): LookupPlan {
  checkName(name);
  const candidates: number[] = [];
  if (recycle) {
    const free = inUse.findNextZero(1);
    collectDown(inUse, deleted, SD_NR_VDIS - 1, 1, candidates);
    return { freeVid: free < 0 ? null : free, candidates };
  }
  const left = vidSlotOfName(name);
  let right = inUse.findNextZero(left);
  if (right === left) return { freeVid: right, candidates };
  if (right >= 0) {
    collectDown(inUse, deleted, right - 1, left, candidates);
    return { freeVid: right, candidates };
  }
  right = inUse.findNextZero(1);
  if (right < 0) return { freeVid: null, candidates };
  // Every bit from left to the end is set, so the first clear one from 1 lies below left.
  assert(right < left, "wrapped free vid must lie below the hash slot");
  collectDown(inUse, deleted, right - 1, 1, candidates);
  collectDown(inUse, deleted, SD_NR_VDIS - 1, left, candidates);
  return { freeVid: right, candidates };
}

/** Appends the vids from `hi` down to `lo` whose in-use or deleted bit is set. */
function collectDown(
  inUse: VdiBitmap,
  deleted: VdiBitmap,
  hi: number,
  lo: number,
  out: number[],
): void {
  // Merge two downward scans; each resumes where it stopped, so the whole walk is linear.
  let a = inUse.findPrevSet(hi);
  let b = deleted.findPrevSet(hi);
  for (;;) {
    const v = a > b ? a : b;
    if (v < lo) return;
    out.push(v);
    if (a === v) a = inUse.findPrevSet(v - 1);
    if (b === v) b = deleted.findPrevSet(v - 1);
  }
}

/**
 * How one inode header relates to a lookup of `name` with `want`:
 * - "other": another name (a deleted VDI's cleared name never matches);
 * - "match": the VDI looked for — with a tag, the snapshot with that tag; else with a snap id ≠ 0,
 *   the snapshot with that snap_id; else the working VDI (snapCtime 0). A tag wins over a snap id;
 * - "name": the name matches but the entry is not the one wanted (a non-snapshot when a tag or
 *   snap id is asked, a snapshot when the working VDI is asked, another tag or snap id).
 */
export function matchVdiHeader(
  header: VdiLookupHeader,
  name: string,
  want: VdiWant,
): VdiHeaderMatch {
  if (header.name !== name) return "other";
  const isSnapshot = header.snapCtime !== 0n;
  const tag = want.tag ?? "";
  const snapId = want.snapId ?? 0;
  if (tag !== "") return isSnapshot && header.tag === tag ? "match" : "name";
  if (snapId !== 0) return isSnapshot && header.snapId === snapId ? "match" : "name";
  return isSnapshot ? "name" : "match";
}

/**
 * v1.0's choice among the headers read, in planLookup()'s scan order: the first "match" (see
 * matchVdiHeader()) wins with SUCCESS and its vid; otherwise NO_TAG when some header had the
 * name, else NO_VDI. Throws SdError(INVALID_PARMS) for an empty name or a snap id that is not a
 * u32.
 */
export function chooseVdi(
  found: readonly FoundVdi[],
  name: string,
  want: VdiWant,
): VdiChoice {
  checkName(name);
  const snapId = want.snapId ?? 0;
  if (!Number.isInteger(snapId) || snapId < 0 || snapId > 0xffffffff) {
    throw new SdError(Res.INVALID_PARMS, `invalid snapshot id ${snapId}`);
  }
  let nameFound = false;
  for (const f of found) {
    const m = matchVdiHeader(f.header, name, want);
    if (m === "match") return { result: Res.SUCCESS, vid: f.vid };
    if (m === "name") nameFound = true;
  }
  return { result: nameFound ? Res.NO_TAG : Res.NO_VDI };
}
