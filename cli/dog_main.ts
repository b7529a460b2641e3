/**
 * `sheepdog dog …` on a real process: wires dog to the process's stdio, environment and clock.
 *
 * @module
 */

import { runDog } from "./dog/main.ts";

/** Runs dog with the process's I/O and returns its exit code. */
export async function runDogMain(argv: string[]): Promise<number> {
  const stdout = Deno.stdout.writable.getWriter();
  const stderr = Deno.stderr.writable.getWriter();
  try {
    return await runDog(argv, {
      stdout,
      stderr,
      stdin: Deno.stdin.readable,
      env: (name) => Deno.env.get(name),
      isStdinTty: Deno.stdin.isTerminal(),
      isStdoutTty: Deno.stdout.isTerminal(),
      now: () => new Date(),
    });
  } finally {
    await stdout.ready;
    await stderr.ready;
  }
}
