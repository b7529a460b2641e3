import assert from "node:assert/strict";
import { syncFileSystem } from "./sync_fs.ts";

for (const ffi of [true, false]) {
  Deno.test(`syncFileSystem (${ffi ? "syncfs" : "fdatasync of each file"}) syncs a directory of files and skips subdirectories`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/a`, new Uint8Array(4096).fill(1));
      await Deno.writeFile(`${dir}/b`, new Uint8Array(10).fill(2));
      await Deno.mkdir(`${dir}/.stale`);
      await syncFileSystem(dir, { ffi });
      assert.deepEqual(await Deno.readFile(`${dir}/b`), new Uint8Array(10).fill(2));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`syncFileSystem (${ffi ? "syncfs" : "fdatasync of each file"}) rejects a missing directory`, async () => {
    await assert.rejects(
      syncFileSystem("/nonexistent/sheepdog-sync-fs-test", { ffi }),
      Deno.errors.NotFound,
    );
  });
}
