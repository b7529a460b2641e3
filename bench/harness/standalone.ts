/**
 * The command line of a benchmark scenario run on its own (`deno run -A bench/<scenario>.ts`):
 * its own options as `deno task bench` parses them, `--help`, and `--json FILE|-`.
 *
 * @module
 */

/** What a scenario module gives {@linkcode parseStandaloneArgs}. */
export interface StandaloneSpec<O> {
  /** Script name for messages, e.g. `nbd_bench`. */
  readonly name: string;
  /** The scenario's option lines (its `*_USAGE`). */
  readonly usage: string;
  /** Parses the option at `argv[i]` into `o`; the number of arguments used (0: not its own). */
  parseArg(argv: readonly string[], i: number, o: O): number;
}

/**
 * Parses `argv` into `o`. Returns the `--json` target (undefined when absent), or null after
 * printing the help. A bad command line prints the reason and the usage and exits 64.
 */
export function parseStandaloneArgs<O>(
  spec: StandaloneSpec<O>,
  argv: readonly string[],
  o: O,
): { json: string | undefined } | null {
  let json: string | undefined;
  try {
    for (let i = 0; i < argv.length;) {
      if (argv[i] === "--help" || argv[i] === "-h") {
        console.log(
          `usage: deno run -A bench/${spec.name}.ts [options] [--json FILE|-]\n${spec.usage}`,
        );
        return null;
      }
      if (argv[i] === "--json") {
        json = argv[i + 1];
        if (!json) throw new Error("--json needs a file");
        i += 2;
        continue;
      }
      const used = spec.parseArg(argv, i, o);
      if (used === 0) throw new Error(`unknown option ${argv[i]}`);
      i += used;
    }
  } catch (e) {
    console.error(`${spec.name}: ${e instanceof Error ? e.message : e}\n${spec.usage}`);
    Deno.exit(64);
  }
  return { json };
}

/** Prints `report` as JSON to stdout (`json` "-"), or writes it to `json` and returns false. */
export async function writeJsonReport(json: string | undefined, report: unknown): Promise<boolean> {
  if (json === "-") {
    console.log(JSON.stringify(report, null, 2));
    return true;
  }
  if (json) await Deno.writeTextFile(json, JSON.stringify(report, null, 2) + "\n");
  return false;
}
