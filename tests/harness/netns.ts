/**
 * Running a test module inside a private network namespace (root needed). A test process there
 * has its own 127.0.0.1 and its own abstract UNIX sockets, so it can start a corosync and sheep
 * exactly as on the host's loopback, with the ordinary harness (ports, dog, protocol clients),
 * without colliding with another test run's corosync.
 *
 * A module that needs it re-runs itself: when NETNS_ENV is not set it registers one test that
 * calls `runTestFileInNetns(import.meta.url)`; inside, NETNS_ENV is set and it registers its real
 * tests. The inner results are printed indented (so that bin/test's summary counts the outer
 * test only) and the inner output is shown in full when it fails.
 *
 * @module
 */

import { run, runOk } from "./process.ts";

/** Set (to the namespace name) in a test process that runs inside a private namespace. */
export const NETNS_ENV = "SHEEPDOG_TEST_NETNS";

/** The private namespace this process runs in, or null. */
export function privateNetns(): string | null {
  return Deno.env.get(NETNS_ENV) ?? null;
}

/**
 * Creates a namespace (loopback up), runs `deno test` on `file` inside it with the same flags as
 * bin/test, deletes the namespace, and throws with the inner output unless every test passed.
 * Returns the inner result lines.
 */
export async function runTestFileInNetns(
  file: string | URL,
  opts: { deadlineMs?: number; env?: Record<string, string>; filter?: string } = {},
): Promise<string[]> {
  const path = file instanceof URL || file.startsWith("file:") ? new URL(file).pathname : file;
  const ns = `sdt${Deno.pid.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  await runOk("ip", ["netns", "add", ns], { deadlineMs: 10_000 });
  try {
    await runOk("ip", ["-n", ns, "link", "set", "lo", "up"], { deadlineMs: 10_000 });
    const args = [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "test",
      "--allow-all",
      "--no-check",
      "--v8-flags=--stack-size=4096",
      ...(opts.filter ? ["--filter", opts.filter] : []),
      path,
    ];
    const r = await run("ip", args, {
      deadlineMs: opts.deadlineMs ?? 20 * 60_000,
      env: { ...opts.env, [NETNS_ENV]: ns, NO_COLOR: "1" },
    });
    const out = r.stdoutText + r.stderrText;
    // Result lines, and what the tests printed (between deno test's output markers).
    const results: string[] = [];
    let inOutput = false;
    for (const l of out.split("\n")) {
      if (/^-+ output -+$/.test(l.trim())) inOutput = true;
      else if (/^-+ output end -+$/.test(l.trim())) inOutput = false;
      else if (inOutput || / \.\.\. (ok|FAILED|ignored)/.test(l)) results.push(l);
    }
    if (!r.success) {
      throw new Error(
        `the tests in namespace ${ns} ${r.timedOut ? "timed out" : `failed (exit ${r.code})`}:\n` +
          out.split("\n").map((l) => `  | ${l}`).join("\n"),
      );
    }
    for (const l of results) console.log(`  [in ${ns}] ${l.trim()}`);
    return results;
  } finally {
    await run("ip", ["netns", "delete", ns], { deadlineMs: 10_000 });
  }
}
