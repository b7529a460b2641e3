/**
 * v1.0's confirm(): print a question, read one line (fgets of 8 bytes) and go on only when it
 * starts with "yes" in any case. Anything else, end of input included, means "stop, exit 0".
 *
 * @module
 */

import type { DogOutput, StreamReader } from "./io.ts";

/** True when the operator answered yes. */
export async function confirm(
  out: DogOutput,
  stdin: StreamReader,
  question: string,
): Promise<boolean> {
  await out.print(question);
  const line = await stdin.readLine(8);
  return line !== undefined && line.slice(0, 3).toLowerCase() === "yes";
}

/** The question `cluster format` asks on a cluster that holds VDIs. */
export const FORMAT_NOT_EMPTY = "    __\n" +
  "   ()'`;\n" +
  "   /\\|`\n" +
  "  /  |   Caution! The cluster is not empty.\n" +
  "(/_)_|_  Are you sure you want to continue? [yes/no]: ";
