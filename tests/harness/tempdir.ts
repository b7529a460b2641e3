/**
 * Private scratch directories for tests: under `<checkout>/.test-tmp` (git-ignored), or under
 * `$SHEEPDOG_TEST_TMP`. Kept when `SHEEPDOG_TEST_KEEP=1`, for a post-mortem.
 *
 * @module
 */

import { repoRoot } from "./paths.ts";

/** A UNIX socket path must fit in 108 bytes: leave room for `<tmp>/<prefix>-XXXXXX/sheepN/sock`. */
const MAX_BASE_LENGTH = 60;

/** A scratch directory; remove it with {@linkcode TempDir.cleanup} (or `await using`). */
export interface TempDir {
  readonly path: string;
  /** Removes the directory and everything in it (unless SHEEPDOG_TEST_KEEP=1). */
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The folder that holds every test's scratch directories. */
export function testTmpBase(): string {
  const env = Deno.env.get("SHEEPDOG_TEST_TMP");
  if (env) return env;
  const inRepo = `${repoRoot}/.test-tmp`;
  return inRepo.length <= MAX_BASE_LENGTH ? inRepo : "/tmp/sheepdog-test";
}

/** Creates a fresh directory `<base>/<prefix>-XXXXXX`. */
export async function tempDir(prefix = "t"): Promise<TempDir> {
  const base = testTmpBase();
  await Deno.mkdir(base, { recursive: true });
  const path = await Deno.makeTempDir({ dir: base, prefix: `${prefix}-` });
  let removed = false;
  const cleanup = async () => {
    if (removed) return;
    removed = true;
    if (Deno.env.get("SHEEPDOG_TEST_KEEP") === "1") {
      console.error(`harness: keeping ${path} (SHEEPDOG_TEST_KEEP=1)`);
      return;
    }
    try {
      await Deno.remove(path, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  return { path, cleanup, [Symbol.asyncDispose]: cleanup };
}
