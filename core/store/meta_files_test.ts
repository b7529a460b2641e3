import assert from "node:assert/strict";
import {
  epochFileName,
  listEpochs,
  readConfigBytes,
  readEpochBytes,
  removeAllEpochs,
  removeEpochsAfter,
  wipe,
  writeConfigBytes,
  writeEpochBytes,
} from "./meta_files.ts";

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sheepdog-meta-files-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(path: string): string[] {
  return [...Deno.readDirSync(path)].map((e) => e.name).sort();
}

Deno.test("config bytes are missing before the first write and replaced whole afterwards", async () => {
  await withDir(async (dir) => {
    assert.equal(await readConfigBytes(dir), null);
    const first = new Uint8Array(40).fill(1);
    const second = new Uint8Array(40).fill(2);
    await writeConfigBytes(dir, first);
    assert.deepEqual(await readConfigBytes(dir), first);
    await writeConfigBytes(dir, second);
    assert.deepEqual(await readConfigBytes(dir), second);
    assert.deepEqual(names(dir), ["config"]);
  });
});

Deno.test("a config.tmp left by a crash does not change what is read and is replaced", async () => {
  await withDir(async (dir) => {
    const live = new Uint8Array(40).fill(3);
    await writeConfigBytes(dir, live);
    await Deno.writeFile(`${dir}/config.tmp`, new Uint8Array(17).fill(9));
    assert.deepEqual(await readConfigBytes(dir), live);
    await writeConfigBytes(dir, new Uint8Array(40).fill(4));
    assert.deepEqual(await readConfigBytes(dir), new Uint8Array(40).fill(4));
    assert.deepEqual(names(dir), ["config"]);
  });
});

Deno.test("epoch files are named %08u and read back by epoch", async () => {
  await withDir(async (dir) => {
    assert.equal(epochFileName(1), "00000001");
    assert.equal(epochFileName(123456789), "123456789");
    const three = new Uint8Array(3 * 80 + 8).fill(5);
    await writeEpochBytes(dir, 1, three);
    await writeEpochBytes(dir, 2, new Uint8Array(88));
    assert.deepEqual(names(`${dir}/epoch`), ["00000001", "00000002"]);
    assert.deepEqual(await readEpochBytes(dir, 1), three);
    assert.equal(await readEpochBytes(dir, 3), null);
  });
});

Deno.test("listEpochs() is sorted, ignores other files and is empty without an epoch dir", async () => {
  await withDir(async (dir) => {
    assert.deepEqual(await listEpochs(dir), []);
    for (const e of [10, 2, 100000000, 1]) await writeEpochBytes(dir, e, new Uint8Array(8));
    await Deno.writeFile(`${dir}/epoch/00000003.tmp`, new Uint8Array(8));
    await Deno.writeFile(`${dir}/epoch/notes`, new Uint8Array(8));
    assert.deepEqual(await listEpochs(dir), [1, 2, 10, 100000000]);
  });
});

Deno.test("removeEpochsAfter() keeps epochs up to the given one; removeAllEpochs() keeps none", async () => {
  await withDir(async (dir) => {
    for (const e of [1, 2, 3, 4, 5]) await writeEpochBytes(dir, e, new Uint8Array(8));
    await removeEpochsAfter(dir, 3);
    assert.deepEqual(await listEpochs(dir), [1, 2, 3]);
    await removeEpochsAfter(dir, 7);
    assert.deepEqual(await listEpochs(dir), [1, 2, 3]);
    await removeAllEpochs(dir);
    assert.deepEqual(await listEpochs(dir), []);
    await removeAllEpochs(`${dir}/nowhere`);
  });
});

Deno.test("wipe() removes objects, stale objects and epochs, and keeps lock, sock, log and config", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/obj/.stale`, { recursive: true });
    await Deno.writeFile(`${dir}/obj/807c2b2500000000`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/obj/007c2b250000000f.tmp`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/obj/.stale/007c2b250000000f.2`, new Uint8Array(10));
    await writeEpochBytes(dir, 1, new Uint8Array(88));
    await writeConfigBytes(dir, new Uint8Array(40));
    for (const keep of ["lock", "sock", "sheep.log"]) {
      await Deno.writeFile(`${dir}/${keep}`, new Uint8Array(1));
    }
    await wipe(dir);
    assert.deepEqual(names(dir), ["config", "epoch", "lock", "obj", "sheep.log", "sock"]);
    assert.deepEqual(names(`${dir}/obj`), [".stale"]);
    assert.deepEqual(names(`${dir}/obj/.stale`), []);
    assert.deepEqual(names(`${dir}/epoch`), []);
  });
});

Deno.test("wipe() of a fresh directory creates the empty layout", async () => {
  await withDir(async (dir) => {
    await wipe(dir);
    assert.deepEqual(names(dir), ["epoch", "obj"]);
    assert.deepEqual(names(`${dir}/obj`), [".stale"]);
  });
});
