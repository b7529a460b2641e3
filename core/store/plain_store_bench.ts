/**
 * Write throughput of the plain store against raw `node:fs` loops in the same run:
 * `deno bench --allow-all core/store/plain_store_bench.ts`. One iteration of a "4 KiB" bench is
 * BATCH random 4 KiB writes at queue depth QD (IOPS = BATCH / time per iteration); one iteration
 * of a "4 MiB" bench is one 4 MiB write (MB/s = 4.19 / time in ms × 1000).
 *
 * @module
 */

import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import { PlainStore } from "./plain_store.ts";

const OBJ_SIZE = 4 << 20;
const NR_OBJECTS = 16;
const BATCH = 256;
const QD = 16;
const BLOCK = 4096;

interface Setup {
  readonly dir: string;
  readonly store: PlainStore;
  /** Raw handles on copies of the same objects: plain, and O_DSYNC. */
  readonly raw: fsp.FileHandle[];
  readonly rawDsync: fsp.FileHandle[];
  readonly big: Uint8Array;
  readonly block: Uint8Array;
  nextCreate: number;
}

// Bench files have no setup/teardown hooks: the lazily built fixture lives for the process.
let setup: Promise<Setup> | null = null;
let scratchDir: string | null = null;

/** Lazily builds the objects once for all benches (no work at import time). */
function getSetup(): Promise<Setup> {
  setup ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "sheepdog-store-bench-" });
    scratchDir = dir;
    const store = await PlainStore.open(dir);
    const raw: fsp.FileHandle[] = [];
    const rawDsync: fsp.FileHandle[] = [];
    const big = new Uint8Array(OBJ_SIZE).fill(0x5a);
    await Deno.mkdir(`${dir}/raw`);
    for (let i = 0; i < NR_OBJECTS; i++) {
      await store.create(BigInt(i), 0, big, OBJ_SIZE, { sparse: false });
      const path = `${dir}/raw/${i}`;
      await Deno.writeFile(path, big);
      raw.push(await fsp.open(path, "r+"));
      rawDsync.push(await fsp.open(path, constants.O_RDWR | constants.O_DSYNC));
    }
    return { dir, store, raw, rawDsync, big, block: new Uint8Array(BLOCK).fill(7), nextCreate: 0 };
  })();
  return setup;
}

/** BATCH random 4 KiB writes at queue depth QD over `objects` objects. */
async function randomWrites(
  objects: number,
  write: (obj: number, pos: number) => Promise<void>,
): Promise<void> {
  let issued = 0;
  const worker = async () => {
    while (issued < BATCH) {
      issued++;
      const obj = Math.floor(Math.random() * objects);
      await write(obj, Math.floor(Math.random() * (OBJ_SIZE / BLOCK)) * BLOCK);
    }
  };
  await Promise.all(Array.from({ length: QD }, worker));
}

for (const objects of [1, NR_OBJECTS]) {
  const group = `4 KiB random writes, QD${QD}, ${objects} object(s)`;
  Deno.bench(`raw pwrite + fdatasync (${objects})`, { group, baseline: true }, async () => {
    const s = await getSetup();
    await randomWrites(objects, async (obj, pos) => {
      await s.raw[obj].write(s.block, 0, BLOCK, pos);
      await s.raw[obj].datasync();
    });
  });
  Deno.bench(`raw O_DSYNC pwrite (${objects})`, { group }, async () => {
    const s = await getSetup();
    await randomWrites(objects, async (obj, pos) => {
      await s.rawDsync[obj].write(s.block, 0, BLOCK, pos);
    });
  });
  Deno.bench(`PlainStore.write (${objects})`, { group }, async () => {
    const s = await getSetup();
    await randomWrites(objects, (obj, pos) => s.store.write(BigInt(obj), pos, s.block));
  });
}

Deno.bench("raw 4 MiB pwrite + fdatasync", { group: "4 MiB writes", baseline: true }, async () => {
  const s = await getSetup();
  await s.raw[0].write(s.big, 0, OBJ_SIZE, 0);
  await s.raw[0].datasync();
});
Deno.bench("PlainStore.write 4 MiB", { group: "4 MiB writes" }, async () => {
  const s = await getSetup();
  await s.store.write(1n, 0, s.big);
});
Deno.bench(
  "raw new file 4 MiB + fdatasync",
  { group: "4 MiB creates", baseline: true },
  async () => {
    const s = await getSetup();
    const fh = await fsp.open(`${s.dir}/raw/new${s.nextCreate++}`, "wx");
    await fh.write(s.big, 0, OBJ_SIZE, 0);
    await fh.datasync();
    await fh.close();
  },
);
Deno.bench("PlainStore.create full 4 MiB", { group: "4 MiB creates" }, async () => {
  const s = await getSetup();
  await s.store.create(BigInt(1000 + s.nextCreate++), 0, s.big, OBJ_SIZE, { sparse: false });
});
Deno.bench(
  "PlainStore.create 4 KiB into 4 MiB (zero fill)",
  { group: "4 MiB creates" },
  async () => {
    const s = await getSetup();
    await s.store.create(BigInt(1000 + s.nextCreate++), 8192, s.block, OBJ_SIZE, { sparse: false });
  },
);
Deno.bench("PlainStore.create 4 KiB into 4 MiB (sparse)", { group: "4 MiB creates" }, async () => {
  const s = await getSetup();
  await s.store.create(BigInt(1000 + s.nextCreate++), 8192, s.block, OBJ_SIZE, { sparse: true });
});

globalThis.addEventListener("unload", () => {
  if (scratchDir !== null) Deno.removeSync(scratchDir, { recursive: true });
});
