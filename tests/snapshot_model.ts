/**
 * A model-checked workload of snapshots, clones, rollbacks, writes and deletes on real sheep
 * (issue 5's proof), shared by the copies-2 and copies-3 test files.
 *
 * The model keeps the expected bytes of every working VDI and every snapshot. Writes go through
 * the VDI volume (the client the NBD export and dog use), snapshots, clones, rollbacks and deletes
 * through dog, in an order drawn from a seeded PRNG (the seed is printed; SNAPSHOT_SEED replays
 * it). Every VDI and snapshot is read back and compared with the model, several times, including
 * after members of its family were deleted. Finally everything is deleted in a random order and
 * every sheep's store must hold no data, VM state or ledger object any more; the inodes stay,
 * emptied after the header.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type DogResult, startCluster } from "./harness/mod.ts";
import { connectSheep, firstDiff, objectFiles } from "./harness/proto.ts";
import { Prng } from "../core/recovery/prng.ts";
import { VdiVolume } from "../core/vdi_client/volume.ts";
import type { SheepClient } from "../core/net/client.ts";
import {
  isDataObj,
  isLedgerObj,
  isVdiObj,
  isVmstateObj,
  oidToVid,
  parseOid,
} from "../core/hash/oid.ts";
import { SD_INODE_HEADER_SIZE, SD_INODE_SIZE } from "../core/proto/constants.ts";

const MIB = 1024 * 1024;
/** 1 MiB objects (-z 20), 8 per VDI: small enough to read everything often. */
export const OBJ_SIZE = MIB;
export const VDI_SIZE = 8 * MIB;

/** A snapshot or working VDI of the model. */
interface Member {
  name: string;
  /** Snapshot tag ("" for a working VDI). */
  tag: string;
  bytes: Uint8Array;
}

/** The seed of this run: SNAPSHOT_SEED or the clock; printed so a failure can be replayed. */
export function pickSeed(what: string): number {
  const env = Deno.env.get("SNAPSHOT_SEED");
  const seed = env ? Number(env) : Date.now() % 1_000_000_007;
  console.log(`${what}: seed ${seed} (SNAPSHOT_SEED=${seed} replays it)`);
  return seed;
}

/**
 * The sheep the workload runs on: a fresh startCluster cluster by default, or restartable slots
 * (tests/snapshot_model_kill_test.ts). `live()` lists the nodes requests may go through now.
 */
export interface ModelEnv {
  readonly ports: readonly number[];
  /** Store directories, one per node. */
  readonly dirs: readonly string[];
  dog(args: string[], node: number): Promise<DogResult>;
  live(): number[];
}

/** Optional hooks of the workload (e.g. kill and restart a sheep at some step). */
export interface ModelHooks {
  /** Awaited before step `step` of the workload (0 to STEPS-1), then once with STEPS. */
  beforeStep?: (step: number) => Promise<void>;
  /** Verify through every live node at the end of the workload (default: random nodes). */
  verifyEveryNode?: boolean;
}

async function dogOk(cl: ModelEnv, args: string[], node = 0): Promise<string> {
  const r = await cl.dog(args, node);
  if (!r.success) {
    throw new Error(`dog ${args.join(" ")} exited ${r.code}: ${r.stderrText}${r.stdoutText}`);
  }
  return r.stdoutText;
}

/** The stores: of a ModelEnv, or of a startCluster cluster. */
type Stores = { readonly dirs: readonly string[] } | { readonly sheep: readonly { dir: string }[] };
const storeDirs = (cl: Stores): readonly string[] =>
  "dirs" in cl ? cl.dirs : cl.sheep.map((s) => s.dir);

/** Checks that every sheep's store holds no data, VM state or ledger object. */
export function assertNoDataLeft(cl: Stores, what: string): { inodes: Set<number> } {
  const inodes = new Set<number>();
  const left: string[] = [];
  storeDirs(cl).forEach((dir, i) => {
    for (const name of objectFiles(dir)) {
      const oid = parseOid(name);
      if (isDataObj(oid) || isLedgerObj(oid) || isVmstateObj(oid)) left.push(`sheep${i}:${name}`);
      if (isVdiObj(oid)) inodes.add(oidToVid(oid));
    }
  });
  assert.deepEqual(left, [], `${what}: objects left in the stores`);
  return { inodes };
}

/** Checks that every inode file left is the header alone (name and size cleared, no index). */
export async function assertInodesEmptied(cl: Stores): Promise<void> {
  for (const dir of storeDirs(cl)) {
    for (const name of objectFiles(dir)) {
      const oid = parseOid(name);
      if (!isVdiObj(oid)) continue;
      const f = await Deno.open(`${dir}/obj/${name}`);
      try {
        const st = await f.stat();
        assert.equal(st.size, SD_INODE_SIZE, `inode ${name} size`);
        const head = new Uint8Array(SD_INODE_HEADER_SIZE);
        await f.read(head);
        assert.equal(head[0], 0, `inode ${name}: name not cleared`);
        const rest = new Uint8Array(1 << 20);
        let pos = SD_INODE_HEADER_SIZE;
        await f.seek(pos, Deno.SeekMode.Start);
        while (pos < SD_INODE_SIZE) {
          const n = await f.read(rest);
          if (n === null) break;
          const nz = rest.subarray(0, n).findIndex((b) => b !== 0);
          assert.equal(nz, -1, `inode ${name}: byte ${pos + nz} after the header is not zero`);
          pos += n;
        }
      } finally {
        f.close();
      }
    }
  }
}

/** Runs the model workload on a fresh 3-sheep cluster with `copies`. */
export async function runSnapshotModel(copies: number, seed: number): Promise<void> {
  await using cl = await startCluster(3, { copies, extraArgs: ["-n"] });
  await runModelWorkload(
    {
      ports: cl.ports,
      dirs: cl.sheep.map((s) => s.dir),
      dog: (args, node) => cl.dog(args, { node }),
      live: () => [0, 1, 2],
    },
    copies,
    seed,
  );
}

/** Runs the model workload on the formatted cluster of `cl`. */
export async function runModelWorkload(
  cl: ModelEnv,
  copies: number,
  seed: number,
  hooks: ModelHooks = {},
): Promise<void> {
  const rng = new Prng(seed);
  // One connection per node, made again after the node was killed and restarted.
  const clients: (SheepClient | null)[] = cl.ports.map(() => null);
  const client = async (i: number): Promise<SheepClient> => {
    let c = clients[i];
    if (!c || c.closed) c = clients[i] = await connectSheep(cl.ports[i]);
    return c;
  };
  try {
    const working = new Map<string, Member>(); // by name
    const snapshots: Member[] = [];
    let tags = 0;
    let clones = 0;
    const done = { writes: 0, snapshots: 0, clones: 0, rollbacks: 0, deletes: 0, verified: 0 };
    const via = () => rng.pick(cl.live());

    const open = async (m: Member, node = via()) => {
      const c = await client(node);
      return VdiVolume.open(
        (req, data) => c.request(req, data),
        m.name,
        { id: 0, tag: m.tag },
      );
    };
    const verify = async (when: string, everyNode = false) => {
      for (const m of [...working.values(), ...snapshots]) {
        for (const node of everyNode ? cl.live() : [via()]) {
          const v = await open(m, node);
          const got = await v.read(0, VDI_SIZE);
          const d = firstDiff(got, m.bytes);
          done.verified++;
          assert.equal(
            d,
            -1,
            `seed ${seed}, ${when}: ${m.name}${m.tag ? `:${m.tag}` : ""} differs at byte ${d}` +
              ` (read through node ${node})`,
          );
        }
      }
    };
    const write = async (m: Member) => {
      const v = await open(m);
      const n = 1 + rng.int(3);
      for (let i = 0; i < n; i++) {
        const len = 1 + rng.int(300_000);
        const off = rng.int(VDI_SIZE - len);
        const data = new Uint8Array(len).fill(1 + rng.int(255));
        data[0] = rng.int(256);
        await v.write(off, data);
        m.bytes.set(data, off);
      }
    };

    await dogOk(cl, ["vdi", "create", "-z", "20", "base", String(VDI_SIZE)]);
    working.set("base", { name: "base", tag: "", bytes: new Uint8Array(VDI_SIZE) });
    await write(working.get("base")!);

    const STEPS = 40;
    for (let step = 0; step < STEPS; step++) {
      await hooks.beforeStep?.(step);
      const names = [...working.keys()];
      const r = rng.float();
      if (r < 0.35 && names.length > 0) {
        await write(working.get(rng.pick(names))!);
        done.writes++;
      } else if (r < 0.6 && names.length > 0) {
        const w = working.get(rng.pick(names))!;
        const tag = `t${++tags}`;
        await dogOk(cl, ["vdi", "snapshot", "-s", tag, w.name], via());
        snapshots.push({ name: w.name, tag, bytes: w.bytes.slice() });
        done.snapshots++;
      } else if (r < 0.75 && snapshots.length > 0) {
        const s = rng.pick(snapshots);
        const name = `c${++clones}`;
        await dogOk(cl, ["vdi", "clone", "-s", s.tag, s.name, name], via());
        working.set(name, { name, tag: "", bytes: s.bytes.slice() });
        done.clones++;
      } else if (r < 0.85 && snapshots.length > 0) {
        const s = rng.pick(snapshots);
        if (!working.has(s.name)) continue;
        await dogOk(cl, ["vdi", "rollback", "-f", "-s", s.tag, s.name], via());
        working.get(s.name)!.bytes = s.bytes.slice();
        done.rollbacks++;
      } else if (snapshots.length + names.length > 2) {
        // Delete one member in the middle of the run; its family must not notice.
        const all: Member[] = [...working.values(), ...snapshots];
        const m = rng.pick(all);
        if (m.tag === "") {
          await dogOk(cl, ["vdi", "delete", m.name], via());
          working.delete(m.name);
        } else {
          await dogOk(cl, ["vdi", "delete", "-s", m.tag, m.name], via());
          snapshots.splice(snapshots.indexOf(m), 1);
        }
        done.deletes++;
      }
      if (step % 9 === 8) await verify(`step ${step}`);
    }
    await hooks.beforeStep?.(STEPS);
    await verify("end of the workload", hooks.verifyEveryNode);

    // The list shows every member with v1.0's flags.
    const list = await dogOk(cl, ["vdi", "list", "-r"]);
    for (const m of working.values()) {
      assert.match(list, new RegExp(`^[=c] ${m.name} 0 `, "m"), `vdi list:\n${list}`);
    }
    for (const s of snapshots) {
      assert.match(
        list,
        new RegExp(`^s ${s.name} \\d+ .* ${s.tag} 20$`, "m"),
        `vdi list:\n${list}`,
      );
    }

    // Everything deleted in a random order; the rest must stay intact meanwhile.
    const all: Member[] = rng.shuffle([...working.values(), ...snapshots]);
    for (let i = 0; i < all.length; i++) {
      const m = all[i];
      const args = m.tag === ""
        ? ["vdi", "delete", m.name]
        : ["vdi", "delete", "-s", m.tag, m.name];
      await dogOk(cl, args, via());
      if (m.tag === "") working.delete(m.name);
      else snapshots.splice(snapshots.indexOf(m), 1);
      if (i === Math.floor(all.length / 2)) await verify("half deleted");
    }
    console.log(
      `copies ${copies}: ${JSON.stringify(done)}, ${all.length} members deleted at the end`,
    );
    const listAfter = await dogOk(cl, ["vdi", "list", "-r"]);
    assert.equal(listAfter, "", "vdi list after deleting everything");
    const { inodes } = assertNoDataLeft(cl, `seed ${seed}`);
    assert.ok(inodes.size >= 1, "the inodes of deleted VDIs stay");
    await assertInodesEmptied(cl);
  } finally {
    for (const c of clients) c?.close();
  }
}
