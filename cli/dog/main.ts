/**
 * `dog`, the operator CLI: command dispatch, option parsing (commander, with v1.0's getopt
 * messages), the node list fetched before each command, and exit codes. `runDog` never exits the
 * process; the caller exits with the code it returns.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { SD_DEFAULT_PORT } from "../../core/proto/constants.ts";
import { SdError } from "../../core/proto/sd_error.ts";
import { clusterCommands } from "./cluster.ts";
import {
  type CommandContext,
  type CommandGroup,
  findOption,
  generalUsage,
  PROGRAM,
  type Subcommand,
  subcommandUsage,
  TRY_HELP,
} from "./command_spec.ts";
import { DogError, Exit, ReportedError } from "./dog_error.ts";
import { type DogIo, DogOutput, StreamReader } from "./io.ts";
import { nodeCommands } from "./node.ts";
import { addressOption, portOption } from "./option_values.ts";
import { type Connector, DogSession } from "./session.ts";
import { vdiCommands } from "./vdi.ts";
import { formatFixed } from "./c_numbers.ts";

export type { ByteSink, DogIo } from "./io.ts";

/** Every command group, in v1.0's order. */
export const COMMAND_GROUPS: readonly CommandGroup[] = [vdiCommands, nodeCommands, clusterCommands];

/** Test hooks of runDog. */
export interface RunDogOptions {
  /** Opens connections (default: TCP through SheepClient). */
  connect?: Connector;
}

const HELP_WORDS = ["help", "--help", "-h"];

/** What the command line selected. */
interface Parsed {
  positionals: string[];
  opts: Map<string, string | true>;
  json: boolean;
}

/** Turns commander's parse errors into getopt's messages. */
function getoptError(err: CommanderError): DogError {
  const quoted = /'([^']*)'/.exec(err.message)?.[1] ?? "";
  let line: string;
  if (err.code === "commander.unknownOption") {
    line = quoted.startsWith("--")
      ? `${PROGRAM}: unrecognized option '${quoted}'`
      : `${PROGRAM}: invalid option -- '${quoted.slice(1, 2)}'`;
  } else if (err.code === "commander.optionMissingArgument") {
    const short = /^-(\w)/.exec(quoted)?.[1];
    line = short !== undefined
      ? `${PROGRAM}: option requires an argument -- '${short}'`
      : `${PROGRAM}: ${err.message.replace(/^error: /, "")}`;
  } else {
    line = `${PROGRAM}: ${err.message.replace(/^error: /, "")}`;
  }
  return new DogError(Exit.USAGE, [line, TRY_HELP], { cause: err });
}

/** Parses the options of one subcommand with commander; positionals are returned as they come. */
function parseOptions(group: CommandGroup, sub: Subcommand, args: readonly string[]): Parsed {
  const cmd = new Command(`${group.name} ${sub.name}`)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .helpOption(false)
    .allowExcessArguments(true)
    .showSuggestionAfterError(false)
    .argument("[args...]")
    .action(() => {});
  const letterOf = new Map<string, string>();
  for (const letter of sub.opts) {
    const spec = findOption(group, letter);
    const option = new Option(
      spec.hasArg ? `-${letter}, --${spec.long} <${spec.long}>` : `-${letter}, --${spec.long}`,
    );
    // v1.0 long names like --no-share are plain flags, not commander's negations.
    option.negate = false;
    letterOf.set(option.attributeName(), letter);
    cmd.addOption(option);
  }
  if (sub.json) cmd.addOption(new Option("--json"));
  try {
    cmd.parse([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) throw getoptError(e);
    throw e;
  }
  const opts = new Map<string, string | true>();
  let json = false;
  for (const [attr, value] of Object.entries(cmd.opts())) {
    if (attr === "json") json = value === true;
    else {
      const letter = letterOf.get(attr);
      if (letter !== undefined && value !== undefined) {
        opts.set(letter, typeof value === "string" ? value : true);
      }
    }
  }
  return { positionals: [...cmd.args], opts, json };
}

/** Prints a DogError (and the usage when it asks for it) and returns its exit code. */
async function report(
  e: DogError,
  out: DogOutput,
  usage: (() => string) | undefined,
): Promise<number> {
  await out.error(...e.lines);
  if (e.showUsage && usage !== undefined) await out.error(usage().replace(/\n$/, ""));
  return e.exitCode;
}

/**
 * Runs `dog` with `argv` (the words after "dog") and returns the exit code: 0 success, 1 failure,
 * 2 system or cluster failure, 3 exists, 4 full, 5 missing, 64 usage, 255 for node subcommands
 * whose request failed.
 */
export async function runDog(
  argv: readonly string[],
  io: DogIo,
  options: RunDogOptions = {},
): Promise<number> {
  const out = new DogOutput(io);
  const [cmdName, subName] = argv;
  if (cmdName === undefined || HELP_WORDS.includes(cmdName)) {
    await out.print(generalUsage(COMMAND_GROUPS));
    return Exit.SUCCESS;
  }
  const group = COMMAND_GROUPS.find((g) => g.name === cmdName);
  if (group === undefined) {
    await out.error(`Invalid command '${cmdName}'`, TRY_HELP);
    return Exit.USAGE;
  }
  const sub = group.subcommands.find((s) => s.name === subName);
  if (sub === undefined) {
    const lines: string[] = [];
    if (subName !== undefined && !HELP_WORDS.includes(subName)) {
      lines.push(`Invalid command '${cmdName} ${subName}'`);
    }
    lines.push(`Available ${cmdName} commands:`);
    for (const s of group.subcommands) lines.push(`  ${cmdName} ${s.name}`);
    await out.error(...lines);
    return Exit.USAGE;
  }
  const usage = () => subcommandUsage(group, sub);

  let parsed: Parsed;
  let host = "127.0.0.1";
  let port = SD_DEFAULT_PORT;
  try {
    parsed = parseOptions(group, sub, argv.slice(2));
    if (parsed.opts.has("h")) {
      await out.print(usage());
      return Exit.SUCCESS;
    }
    const envAddr = io.env("SHEEPDOG_DOG_ADDR");
    if (envAddr) host = addressOption(envAddr);
    const envPort = io.env("SHEEPDOG_DOG_PORT");
    if (envPort) port = portOption(envPort);
    const a = parsed.opts.get("a");
    if (typeof a === "string") host = addressOption(a);
    const p = parsed.opts.get("p");
    if (typeof p === "string") port = portOption(p);
  } catch (e) {
    if (e instanceof DogError) return await report(e, out, usage);
    throw e;
  }

  // Nested subcommands (vdi object location, node log level get…) take the first positionals.
  let leaf = sub;
  let positionals = parsed.positionals;
  const path = [group.name, sub.name];
  while (leaf.sub !== undefined) {
    const name = positionals[0];
    const next = leaf.sub.find((s) => s.name === name);
    // A command that runs by itself as well (node recovery): no subcommand named, run it.
    if (next === undefined && leaf.run !== undefined) break;
    if (next === undefined) {
      await out.error(usage().replace(/\n$/, ""));
      return name === undefined ? Exit.USAGE : Exit.FAILURE;
    }
    leaf = next;
    positionals = positionals.slice(1);
    path.push(next.name);
  }
  const run = leaf.run;
  if (run === undefined) throw new Error(`dog ${path.join(" ")} has no handler`);

  const started = io.now().getTime();
  const session = new DogSession({ host, port }, out, options.connect);
  const stdin = new StreamReader(io.stdin);
  try {
    if (leaf.needNodeList) await session.updateNodeList();
    if (leaf.needArg && positionals.length === 0) {
      await out.error(usage().replace(/\n$/, ""));
      return Exit.USAGE;
    }
    const ctx: CommandContext = {
      path,
      args: positionals,
      opts: parsed.opts,
      raw: parsed.opts.has("r"),
      verbose: parsed.opts.has("v"),
      json: parsed.json,
      out,
      session,
      stdin,
      io,
    };
    const code = await run(ctx);
    if (code === Exit.USAGE) await out.error(usage().replace(/\n$/, ""));
    if (parsed.opts.has("T")) {
      const seconds = (io.now().getTime() - started) / 1000;
      await out.print(`\nElapsed time: ${formatFixed(seconds, 3)} seconds\n`);
    }
    return code;
  } catch (e) {
    if (e instanceof DogError) return await report(e, out, usage);
    if (e instanceof ReportedError) return Exit.SYSFAIL;
    if (e instanceof SdError) {
      await out.error(e.message);
      return Exit.SYSFAIL;
    }
    throw e;
  } finally {
    stdin.release();
    await session.close();
  }
}
