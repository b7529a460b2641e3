/**
 * The shape of dog's command table (v1.0's `struct command` / `struct subcommand` /
 * `struct sd_option`) and the usage texts printed from it.
 *
 * @module
 */

import type { DogIo, DogOutput, StreamReader } from "./io.ts";
import type { DogSession } from "./session.ts";

/** One option: a short letter, a long name, whether it takes a value, and its help text. */
export interface OptionSpec {
  short: string;
  long: string;
  hasArg: boolean;
  desc: string;
}

/** What a command's run() gets. */
export interface CommandContext {
  /** The command words, e.g. ["vdi", "object", "location"]. */
  path: readonly string[];
  /** Positional arguments after the command words. */
  args: readonly string[];
  /** Options given, by short letter: the value, or true for a flag. */
  opts: ReadonlyMap<string, string | true>;
  raw: boolean;
  verbose: boolean;
  json: boolean;
  out: DogOutput;
  session: DogSession;
  stdin: StreamReader;
  io: DogIo;
}

/** A subcommand (or a nested one, like `vdi object location`). */
export interface Subcommand {
  name: string;
  /** Arguments as the usage line shows them, e.g. "<vdiname> <size>". */
  args?: string;
  desc: string;
  /** Option letters in usage order (the common ones included); "" for none. */
  opts: string;
  /** Offers the long-only `--json` option. */
  json?: boolean;
  /** Fetch the node list first (CMD_NEED_NODELIST). */
  needNodeList: boolean;
  /** Needs at least one positional argument (CMD_NEED_ARG). */
  needArg: boolean;
  /** Runs it and returns the exit code (absent for a group of nested subcommands). */
  run?: (ctx: CommandContext) => Promise<number>;
  /** Nested subcommands chosen by the first positional argument. */
  sub?: readonly Subcommand[];
}

/** A command group (vdi, node, cluster). */
export interface CommandGroup {
  name: string;
  subcommands: readonly Subcommand[];
  /** The group's option table (v1.0's per-command sd_option array). */
  options: readonly OptionSpec[];
}

/** Options every command shares (v1.0's dog_options). */
export const COMMON_OPTIONS: readonly OptionSpec[] = [
  {
    short: "a",
    long: "address",
    hasArg: true,
    desc: "specify the daemon address (default: localhost)",
  },
  { short: "p", long: "port", hasArg: true, desc: "specify the daemon port" },
  {
    short: "r",
    long: "raw",
    hasArg: false,
    desc: "raw output mode: omit headers, separate fields with\n" +
      "                          single spaces and print all sizes in decimal bytes",
  },
  { short: "v", long: "verbose", hasArg: false, desc: "print more information than default" },
  { short: "h", long: "help", hasArg: false, desc: "display this help and exit" },
  { short: "T", long: "time", hasArg: false, desc: "show elapsed time" },
];

/** The long-only JSON option. */
export const JSON_OPTION = { long: "json", desc: "print JSON instead of text" } as const;

/** The option spec of `letter` in `group` (group table first, then the common table). */
export function findOption(group: CommandGroup, letter: string): OptionSpec {
  const opt = group.options.find((o) => o.short === letter) ??
    COMMON_OPTIONS.find((o) => o.short === letter);
  if (opt === undefined) throw new Error(`no option -${letter} in ${group.name}`);
  return opt;
}

/** The program name in messages. */
export const PROGRAM = "dog";

/** v1.0's subcommand_usage text. */
export function subcommandUsage(group: CommandGroup, sub: Subcommand): string {
  const opts = [...sub.opts].map((c) => findOption(group, c));
  let line = `Usage: ${PROGRAM} ${group.name} ${sub.name}`;
  for (const o of opts) line += o.hasArg ? ` [-${o.short} ${o.long}]` : ` [-${o.short}]`;
  if (sub.json) line += ` [--${JSON_OPTION.long}]`;
  if (sub.args) line += ` ${sub.args}`;
  let out = line + "\n";
  if (opts.length > 0 || sub.json) {
    out += "Options:\n";
    for (const o of opts) out += `  ${`-${o.short}, --${o.long}`.padEnd(24)}${o.desc}\n`;
    if (sub.json) out += `  ${`    --${JSON_OPTION.long}`.padEnd(24)}${JSON_OPTION.desc}\n`;
  }
  if (sub.sub) {
    out += "Available subcommands:\n";
    for (const s of sub.sub) {
      out += `  ${`${s.name}${s.args ? " " + s.args : ""}`.padEnd(24)}${s.desc}\n`;
    }
  }
  return out;
}

/** v1.0's usage(commands, 0): the list of every command. */
export function generalUsage(groups: readonly CommandGroup[]): string {
  let out = "Sheepdog administrator utility (version 1.0)\n";
  out += `Usage: ${PROGRAM} <command> <subcommand> [options]\n`;
  out += "\nAvailable commands:\n";
  for (const g of groups) {
    for (const s of g.subcommands) {
      out += `  ${`${g.name} ${s.name}`.padEnd(24)}${s.desc}\n`;
    }
  }
  out += "\n";
  out += `For more information, run '${PROGRAM} <command> <subcommand> --help'.\n`;
  return out;
}

/** What v1.0 prints after a usage error on the command line. */
export const TRY_HELP = `Try '${PROGRAM} --help' for more information.`;
