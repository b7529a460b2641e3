import assert from "node:assert/strict";
import { GroupSync } from "./group_sync.ts";

/** A flush whose completions the test controls. */
function manualFlush() {
  const started: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const flush = () =>
    new Promise<void>((resolve, reject) => {
      started.push({ resolve, reject });
    });
  return { started, flush };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("GroupSync starts a flush at once when none is running", async () => {
  const { started, flush } = manualFlush();
  const group = new GroupSync(flush);
  const done = group.sync();
  assert.equal(started.length, 1);
  started[0].resolve();
  await done;
});

Deno.test("GroupSync makes writers that arrive during a flush share the next one", async () => {
  const { started, flush } = manualFlush();
  const group = new GroupSync(flush);
  let firstDone = false;
  const first = group.sync().then(() => (firstDone = true));
  const later = [group.sync(), group.sync(), group.sync()];
  let laterDone = 0;
  for (const p of later) p.then(() => laterDone++);
  assert.equal(started.length, 1);
  started[0].resolve();
  await first;
  await tick();
  assert.ok(firstDone);
  assert.equal(laterDone, 0, "a flush begun before a writer's call must not count for it");
  assert.equal(started.length, 2);
  started[1].resolve();
  await Promise.all(later);
  assert.equal(started.length, 2);
});

Deno.test("GroupSync reports a failed flush to every writer that shares it, then recovers", async () => {
  const { started, flush } = manualFlush();
  const group = new GroupSync(flush);
  const first = group.sync();
  const a = group.sync();
  const b = group.sync();
  started[0].reject(new Error("EIO"));
  await assert.rejects(first, /EIO/);
  await tick();
  started[1].reject(new Error("EIO again"));
  await assert.rejects(a, /EIO again/);
  await assert.rejects(b, /EIO again/);
  const c = group.sync();
  started[2].resolve();
  await c;
});
