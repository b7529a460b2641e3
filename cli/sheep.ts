/**
 * `sheepdog sheep` options (v1.0 spellings) → daemon configuration. Parsing is pure: it returns the
 * configuration, a text to print (help, version) or a usage error; main.ts does the printing and
 * exiting.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { SD_DEFAULT_PORT } from "../core/proto/constants.ts";
import { type LogOptions, parseLogLevel } from "../core/sheep/log.ts";

/** The version printed by `sheep -v`. */
export const SHEEPDOG_VERSION = "1.0.0-ts.1";
/** Cluster drivers compiled in. */
export const DRIVERS = ["local", "corosync", "zookeeper"] as const;

/** Daemon configuration from the command line. */
export interface SheepConfigOptions {
  dir: string;
  port: number;
  bindAddr: string;
  myAddr: string | null;
  zone: number | null;
  cluster: { driver: string; option: string };
  foreground: boolean;
  pidfile: string | null;
  nosync: boolean;
  log: LogOptions;
  gateway: boolean;
  vnodes: number | null;
  recovery: { max: number; intervalMs: number } | null;
  nbd: { host: string; port: number } | null;
  /** The original arguments, for daemonizing (re-spawned with -f). */
  argv: string[];
}

/** Result of parsing. */
export type SheepCliResult =
  | { kind: "run"; config: SheepConfigOptions }
  | { kind: "print"; text: string; code: number }
  | { kind: "error"; message: string; usage: string };

class UsageError extends Error {}

function intIn(name: string, lo: number, hi: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) {
      throw new UsageError(`invalid ${name} '${v}': expected an integer from ${lo} to ${hi}`);
    }
    return Number(v);
  };
}

function ipv4(name: string) {
  return (v: string): string => {
    const parts = v.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
      throw new UsageError(`invalid ${name} '${v}': expected an IPv4 address`);
    }
    return v;
  };
}

/** Parses `key=value,key=value` into a map; rejects unknown keys. */
function keyValues(what: string, text: string, keys: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    if (!keys.includes(k)) {
      throw new UsageError(`invalid ${what} option '${k}': expected one of ${keys.join(", ")}`);
    }
    out.set(k, v);
  }
  return out;
}

function parseLog(text: string, dir: string): LogOptions {
  const kv = keyValues("--log", text, ["level", "dir", "dst", "format"]);
  const levelText = kv.get("level") ?? "info";
  const level = parseLogLevel(levelText);
  if (level === null) {
    throw new UsageError(
      `invalid log level '${levelText}': expected emerg, alert, crit, err, warning, notice, info, debug or 0-7`,
    );
  }
  const format = kv.get("format") ?? "default";
  if (format !== "default" && format !== "server" && format !== "json") {
    throw new UsageError(`invalid log format '${format}': expected default, server or json`);
  }
  const dst = kv.get("dst") ?? "default";
  if (dst !== "default" && dst !== "stdout") {
    throw new UsageError(`invalid log destination '${dst}': expected default or stdout`);
  }
  return { level, dir: kv.get("dir") || dir, format, dst };
}

function parseCluster(text: string): { driver: string; option: string } {
  const i = text.indexOf(":");
  const driver = i < 0 ? text : text.slice(0, i);
  const option = i < 0 ? "" : text.slice(i + 1);
  if (!(DRIVERS as readonly string[]).includes(driver)) {
    throw new UsageError(`invalid cluster driver '${driver}': expected ${DRIVERS.join(", ")}`);
  }
  return { driver, option };
}

function parseRecovery(text: string): { max: number; intervalMs: number } {
  const kv = keyValues("--recovery", text, ["max", "interval"]);
  const max = intIn("recovery max", 1, 1 << 30)(kv.get("max") ?? "");
  const intervalMs = intIn("recovery interval", 1, 1 << 30)(kv.get("interval") ?? "");
  return { max, intervalMs };
}

function parseHostPort(what: string, text: string): { host: string; port: number } {
  const i = text.lastIndexOf(":");
  if (i < 0) throw new UsageError(`invalid ${what} '${text}': expected ADDR:PORT`);
  return {
    host: ipv4(what)(text.slice(0, i)),
    port: intIn(`${what} port`, 1, 65535)(text.slice(i + 1)),
  };
}

function buildCommand(): Command {
  return new Command("sheep")
    .usage("[OPTION]... [PATH]")
    .description("Sheepdog storage daemon. PATH is DIR (default /tmp).")
    .argument("[path]", "store directory")
    .option("-b, --bindaddr <ip>", "listen address (default: all interfaces)")
    .option("-c, --cluster <driver>", "cluster driver: local[:PATH], corosync, zookeeper:H:P[,…]")
    .option("-f, --foreground", "do not daemonize")
    .option("-g, --gateway", "gateway only: store nothing (0 vnodes)")
    .option("-l, --log <opts>", "level=L,dir=D,format=default|server|json,dst=default|stdout")
    .option("-n, --nosync", "do not fdatasync writes before acknowledging them")
    .option("-p, --port <port>", `TCP port (default ${SD_DEFAULT_PORT})`)
    .option("-P, --pidfile <file>", "write the pid to FILE (removed on clean exit)")
    .option("-R, --recovery <opts>", "recovery throttling: max=N,interval=MS")
    .option("-v, --version", "print the version and the cluster drivers")
    .option("-V, --vnodes <n>", "fixed number of vnodes (cluster formatted with -V)")
    .option("-y, --myaddr <ip>", "address announced to the other sheep")
    .option("-z, --zone <zone>", "failure zone (default: from the IPv4 address)")
    .addOption(
      new Option("--nbd <addr:port>", "serve every VDI over NBD at ADDR:PORT (default: off)"),
    )
    .helpOption("-h, --help", "show this help")
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .allowExcessArguments(false);
}

/** The usage text. */
export function sheepUsage(): string {
  return buildCommand().helpInformation();
}

/** Parses sheep's arguments (without the leading "sheep"). */
export function parseSheepArgs(argv: string[]): SheepCliResult {
  const cmd = buildCommand();
  const usage = cmd.helpInformation();
  try {
    cmd.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.help") {
        return { kind: "print", text: usage, code: 0 };
      }
      return { kind: "error", message: e.message.replace(/^error: /, ""), usage };
    }
    throw e;
  }
  const o = cmd.opts<Record<string, string | boolean | undefined>>();
  if (o.version) {
    return {
      kind: "print",
      text: `Sheepdog daemon version ${SHEEPDOG_VERSION}\nCluster drivers: ${DRIVERS.join(" ")}\n`,
      code: 0,
    };
  }
  try {
    const path = (cmd.args[0] as string | undefined) ?? "/tmp";
    const [dir, ...disks] = path.split(",");
    if (disks.length > 0) {
      throw new UsageError("multi-disk stores (DIR,DISK…) are not supported by this build");
    }
    if (dir === "") throw new UsageError("empty store directory");
    if (o.gateway && o.vnodes !== undefined) {
      throw new UsageError("-g (gateway) and -V (vnodes) cannot be used together");
    }
    const config: SheepConfigOptions = {
      dir,
      port: o.port !== undefined ? intIn("port", 1, 65535)(String(o.port)) : SD_DEFAULT_PORT,
      bindAddr: o.bindaddr !== undefined ? ipv4("bind address")(String(o.bindaddr)) : "0.0.0.0",
      myAddr: o.myaddr !== undefined ? ipv4("address")(String(o.myaddr)) : null,
      zone: o.zone !== undefined ? intIn("zone", 0, 0xffffffff)(String(o.zone)) : null,
      cluster: parseCluster(o.cluster !== undefined ? String(o.cluster) : "local"),
      foreground: o.foreground === true,
      pidfile: o.pidfile !== undefined ? String(o.pidfile) : null,
      nosync: o.nosync === true,
      log: parseLog(o.log !== undefined ? String(o.log) : "", dir),
      gateway: o.gateway === true,
      vnodes: o.vnodes !== undefined ? intIn("vnodes", 1, 65535)(String(o.vnodes)) : null,
      recovery: o.recovery !== undefined ? parseRecovery(String(o.recovery)) : null,
      nbd: o.nbd !== undefined ? parseHostPort("--nbd", String(o.nbd)) : null,
      argv,
    };
    return { kind: "run", config };
  } catch (e) {
    if (e instanceof UsageError) return { kind: "error", message: e.message, usage };
    throw e;
  }
}
