import assert from "node:assert/strict";
import { repoRoot } from "./paths.ts";
import { startCluster } from "./sheep.ts";

const haveMain = (() => {
  try {
    return Deno.statSync(`${repoRoot}/main.ts`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "startCluster(3): three sheep on free ports answer dog, and stopAll() ends them",
  ignore: !haveMain,
  async fn() {
    const c = await startCluster(3, { copies: 3 });
    try {
      assert.equal(c.sheep.length, 3);
      assert.equal(new Set(c.ports).size, 3);
      for (const s of c.sheep) assert.ok(s.running, `sheep ${s.addr} is not running`);
      const list = await c.dog(["node", "list"]);
      assert.equal(list.code, 0, list.stderrText);
      const down = await c.dog(["node", "list"], { node: 2 });
      assert.equal(down.code, 0, down.stderrText);
      const st = await c.sheep[2].kill();
      assert.equal(st.signal, "SIGKILL");
    } finally {
      await c.stopAll();
    }
    for (const s of c.sheep) assert.equal(s.running, false);
    await assert.rejects(Deno.stat(c.root), Deno.errors.NotFound);
  },
});
