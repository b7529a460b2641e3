/**
 * Where things are: the checkout, and the sheepdog executable the tests run.
 *
 * @module
 */

/** Absolute path of the checkout (two levels above this file). */
export const repoRoot: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Sources whose change makes a compiled dist/sheepdog stale. */
const SOURCE_ROOTS = [
  "main.ts",
  "mod.ts",
  "deno.json",
  "deno.lock",
  "deploy/runtime-flags",
  "core",
  "cli",
];

function newestMtime(path: string): number {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory) return st.mtime?.getTime() ?? 0;
  let newest = 0;
  for (const e of Deno.readDirSync(path)) {
    if (e.isDirectory || e.name.endsWith(".ts") || e.name.endsWith(".json")) {
      newest = Math.max(newest, newestMtime(`${path}/${e.name}`));
    }
  }
  return newest;
}

let chosen: string[] | null = null;

/**
 * The command that runs `sheepdog`, to which `sheep …` or `dog …` is appended:
 * `$SHEEPDOG_BIN` when set; else `dist/sheepdog` when it exists and is newer than the sources;
 * else the launcher `bin/sheepdog` (deno run on main.ts with the same flags).
 */
export function sheepdogCommand(): string[] {
  if (chosen) return [...chosen];
  const env = Deno.env.get("SHEEPDOG_BIN");
  if (env) {
    chosen = [env];
  } else {
    const dist = `${repoRoot}/dist/sheepdog`;
    let distMtime = 0;
    try {
      const st = Deno.statSync(dist);
      if (st.isFile) distMtime = st.mtime?.getTime() ?? 0;
    } catch {
      // no compiled binary
    }
    const sourcesMtime = distMtime
      ? Math.max(...SOURCE_ROOTS.map((p) => newestMtime(`${repoRoot}/${p}`)))
      : 0;
    if (distMtime && distMtime >= sourcesMtime) {
      chosen = [dist];
    } else {
      if (distMtime) {
        console.error(`harness: ${dist} is older than the sources; using bin/sheepdog`);
      }
      chosen = [`${repoRoot}/bin/sheepdog`];
    }
  }
  return [...chosen];
}
