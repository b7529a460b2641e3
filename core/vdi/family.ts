/**
 * VDI families for RECYCLE_VID clusters (`dog cluster format -R`): a family is every VDI linked to
 * another by parent_vdi_id (snapshot chains, rollbacks and clones, across names). Once every
 * member is deleted, the family's inodes are removed and its vids may be reused.
 *
 * @module
 */

/** What the family walk needs of a VDI. */
export interface FamilyMember {
  vid: number;
  parentVid: number;
  deleted: boolean;
}

/** Every vid connected to `vid` through parent links (both directions), ascending. */
export function familyOf(vid: number, members: Iterable<FamilyMember>): number[] {
  const byVid = new Map<number, FamilyMember>();
  const children = new Map<number, number[]>();
  for (const m of members) {
    byVid.set(m.vid, m);
    if (m.parentVid !== 0) {
      const list = children.get(m.parentVid) ?? [];
      list.push(m.vid);
      children.set(m.parentVid, list);
    }
  }
  const seen = new Set<number>([vid]);
  const todo = [vid];
  while (todo.length > 0) {
    const v = todo.pop()!;
    const p = byVid.get(v)?.parentVid ?? 0;
    const next = [...(children.get(v) ?? [])];
    if (p !== 0 && byVid.has(p)) next.push(p);
    for (const n of next) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * The vids to reclaim when `vid` is deleted: its whole family when every other member is deleted
 * already, else none.
 */
export function reclaimableFamily(vid: number, members: Iterable<FamilyMember>): number[] {
  const list = [...members];
  const family = familyOf(vid, list);
  const deleted = new Map(list.map((m) => [m.vid, m.deleted]));
  return family.every((v) => v === vid || deleted.get(v) === true) ? family : [];
}
