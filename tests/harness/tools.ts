/**
 * External programs the integration tests drive (tgt, qemu-img, iscsi and NBD tools): finding them
 * on the PATH, and failing a test with the Debian packages to install when one is missing (.ci/run
 * installs them; a missing tool is a failure, never a skip).
 *
 * @module
 */

import assert from "node:assert/strict";

/** A program and the Debian package that provides it. */
export type RequiredTool = readonly [program: string, debianPackage: string];

/** Full path of the executable `name` on the PATH (or in /usr/bin, /usr/sbin, /sbin), or null. */
export function findExecutable(name: string): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/usr/sbin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return `${d}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** Fails the test, naming the packages to install, when any of `tools` is missing. */
export function requireTools(tools: readonly RequiredTool[]): void {
  const missing = tools.filter(([t]) => findExecutable(t) === null);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, p]) => p))].join(" ");
    assert.fail(
      `missing ${missing.map(([t]) => t).join(", ")}: install them with ` +
        `'apt-get install -y ${pkgs}' (.ci/run does this)`,
    );
  }
}
