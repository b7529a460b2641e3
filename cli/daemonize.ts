/**
 * `sheep` without `-f`: re-runs this executable in the background with `-f` added, detached from
 * the terminal, and returns once the child serves its port (0) or has failed (1).
 *
 * @module
 */

import type { SheepConfigOptions } from "./sheep.ts";

/** How long the parent waits for the daemon to serve (ms). */
const START_DEADLINE_MS = 60_000;

/** The command that runs this program again (compiled binary, or deno + main module). */
export function selfCommand(): string[] {
  // bin/sheepdog (the launcher of a checkout) says where it is; a compiled binary is execPath.
  const launcher = Deno.env.get("SHEEPDOG_LAUNCHER");
  if (launcher) return [launcher];
  const exe = Deno.execPath();
  const base = exe.split("/").pop() ?? exe;
  if (base === "deno") {
    return [
      exe,
      "run",
      "--allow-all",
      "--v8-flags=--stack-size=4096",
      "--quiet",
      new URL("../main.ts", import.meta.url).pathname,
    ];
  }
  return [exe];
}

/** Starts the daemon in the background; resolves with the exit code for the parent. */
export async function daemonize(cfg: SheepConfigOptions): Promise<number> {
  const [cmd, ...pre] = selfCommand();
  const child = new Deno.Command(cmd, {
    args: [...pre, "sheep", ...cfg.argv, "-f"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    detached: true,
  }).spawn();
  const deadline = Date.now() + START_DEADLINE_MS;
  let status: Deno.CommandStatus | null = null;
  child.status.then((s) => status = s);
  const host = cfg.bindAddr === "0.0.0.0" ? "127.0.0.1" : cfg.bindAddr;
  while (Date.now() < deadline) {
    if (status !== null) {
      const err = await new Response(child.stderr).text();
      await Deno.stderr.write(new TextEncoder().encode(err || "sheep: daemon exited\n"));
      return 1;
    }
    try {
      const c = await Deno.connect({ hostname: host, port: cfg.port });
      c.close();
      child.stderr.cancel();
      child.unref();
      return 0;
    } catch (_notYet) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await Deno.stderr.write(new TextEncoder().encode("sheep: the daemon did not start in time\n"));
  child.unref();
  return 1;
}
