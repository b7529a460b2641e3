import assert from "node:assert/strict";
import { tempDir, testTmpBase } from "./tempdir.ts";
import { repoRoot, sheepdogCommand } from "./paths.ts";

Deno.test("tempDir() makes a private directory and cleanup() removes it", async () => {
  const d = await tempDir("unit");
  assert.ok(d.path.startsWith(testTmpBase()));
  await Deno.writeTextFile(`${d.path}/x`, "y");
  await d.cleanup();
  await assert.rejects(Deno.stat(d.path), Deno.errors.NotFound);
  await d.cleanup(); // idempotent
});

Deno.test("tempDir() leaves room for a UNIX socket path in a store directory", async () => {
  await using d = await tempDir("cluster");
  assert.ok(`${d.path}/sheep10/sock`.length < 108);
});

Deno.test("sheepdogCommand() runs dist/sheepdog or bin/sheepdog of this checkout", () => {
  const cmd = sheepdogCommand();
  assert.equal(cmd.length, 1);
  assert.ok(
    cmd[0] === `${repoRoot}/bin/sheepdog` || cmd[0] === `${repoRoot}/dist/sheepdog` ||
      cmd[0] === Deno.env.get("SHEEPDOG_BIN"),
    cmd[0],
  );
});
