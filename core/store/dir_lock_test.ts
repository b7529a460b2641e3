import assert from "node:assert/strict";
import { Res } from "../proto/constants.ts";
import { SdError } from "../proto/sd_error.ts";
import { acquireDirLock } from "./dir_lock.ts";

const MODULE_URL = new URL("./dir_lock.ts", import.meta.url).href;

/** A deno process that takes the lock of `dir` and reports "locked" or the error, then waits. */
function spawnHolder(dir: string): Deno.ChildProcess {
  const script = `
    import { acquireDirLock } from ${JSON.stringify(MODULE_URL)};
    try {
      await acquireDirLock(${JSON.stringify(dir)});
      console.log("locked");
      setInterval(() => {}, 1_000_000);
    } catch (err) {
      console.log("refused: " + err.message);
      Deno.exit(3);
    }
  `;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** The first line the child prints, within `ms` (then the test fails). */
async function firstLine(child: Deno.ChildProcess, ms: number): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no line from child within ${ms} ms`)), ms);
  });
  try {
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      text += value;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return text.split("\n")[0];
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sheepdog-dir-lock-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a second lock of the same directory in one process is refused until release", async () => {
  await withDir(async (dir) => {
    const lock = await acquireDirLock(dir);
    await assert.rejects(acquireDirLock(dir), (err: unknown) => {
      assert.ok(err instanceof SdError && err.result === Res.SYSTEM_ERROR);
      assert.match(err.message, new RegExp(`in use by another sheep \\(pid ${Deno.pid}\\)`));
      return true;
    });
    lock.release();
    lock.release();
    (await acquireDirLock(dir)).release();
  });
});

Deno.test("a second sheep process fails fast while the first holds the lock, and succeeds after it is SIGKILLed", async () => {
  await withDir(async (dir) => {
    const first = spawnHolder(dir);
    let firstDone = false;
    try {
      assert.equal(await firstLine(first, 20_000), "locked");

      const started = performance.now();
      const second = spawnHolder(dir);
      const line = await firstLine(second, 20_000);
      const status = await second.status;
      assert.match(line, /^refused: .* is in use by another sheep \(pid \d+\)/);
      assert.equal(status.code, 3);
      assert.ok(performance.now() - started < 15_000, "the refusal must not wait for the lock");
      await assert.rejects(acquireDirLock(dir), /in use by another sheep/);

      first.kill("SIGKILL");
      await first.status;
      firstDone = true;
      const third = spawnHolder(dir);
      assert.equal(await firstLine(third, 20_000), "locked");
      third.kill("SIGKILL");
      await third.status;
      (await acquireDirLock(dir)).release();
    } finally {
      if (!firstDone) {
        first.kill("SIGKILL");
        await first.status;
      }
    }
  });
});
