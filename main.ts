/**
 * The `sheepdog` executable: `sheepdog sheep …` runs the storage daemon, `sheepdog dog …` the
 * admin CLI. This file only dispatches and turns results into exit codes.
 *
 * @module
 */

import { parseSheepArgs } from "./cli/sheep.ts";

const USAGE = `Usage: sheepdog sheep [OPTION]... [PATH]
       sheepdog dog <command> <subcommand> [options]
`;

async function writeErr(text: string): Promise<void> {
  await Deno.stderr.write(new TextEncoder().encode(text));
}

async function runSheep(argv: string[]): Promise<number> {
  const parsed = parseSheepArgs(argv);
  if (parsed.kind === "print") {
    await Deno.stdout.write(new TextEncoder().encode(parsed.text));
    return parsed.code;
  }
  if (parsed.kind === "error") {
    await writeErr(`sheep: ${parsed.message}\n${parsed.usage}`);
    return 64;
  }
  const cfg = parsed.config;
  if (!cfg.foreground) {
    const { daemonize } = await import("./cli/daemonize.ts");
    return await daemonize(cfg);
  }
  const { runDaemon } = await import("./core/sheep/daemon.ts");
  try {
    return await runDaemon(cfg);
  } catch (e) {
    await writeErr(`sheep: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function main(args: string[]): Promise<number> {
  const [prog, ...rest] = args;
  switch (prog) {
    case "sheep":
      return await runSheep(rest);
    case "dog": {
      const { runDogMain } = await import("./cli/dog_main.ts");
      return await runDogMain(rest);
    }
    case "-h":
    case "--help":
    case "help":
      await Deno.stdout.write(new TextEncoder().encode(USAGE));
      return 0;
    default:
      await writeErr(
        prog === undefined ? USAGE : `sheepdog: unknown program '${prog}'\n${USAGE}`,
      );
      return 64;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
