/**
 * Test harness for dog's command-level unit tests: runs runDog() in process against a
 * FakeCluster with captured stdout/stderr, a given stdin and a fixed clock.
 *
 * @module
 */

import { FakeCluster } from "./fake_sheep.ts";
import type { DogIo } from "./io.ts";
import { runDog } from "./main.ts";

/** What one dog run printed and returned. */
export interface DogRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in write order, as a terminal shows them. */
  all: string;
  stdoutBytes: Uint8Array;
}

/** The transcript's moment, in local time (dog prints local time). */
export const TRANSCRIPT_DATE = new Date(2026, 10, 21, 4, 19, 4);
/** Unix seconds of TRANSCRIPT_DATE. */
export const TRANSCRIPT_SECONDS = Math.floor(TRANSCRIPT_DATE.getTime() / 1000);

/** Runs dog once. `connect` defaults to the fake's connector; env defaults to empty. */
export async function runDogCaptured(
  argv: string[],
  opts: {
    fake?: FakeCluster;
    stdin?: string | Uint8Array;
    env?: Record<string, string>;
    now?: () => Date;
  } = {},
): Promise<DogRun> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const all: Uint8Array[] = [];
  const input = typeof opts.stdin === "string"
    ? new TextEncoder().encode(opts.stdin)
    : opts.stdin ?? new Uint8Array(0);
  const io: DogIo = {
    stdout: {
      write: (b: Uint8Array) => {
        out.push(b.slice());
        all.push(b.slice());
      },
    },
    stderr: {
      write: (b: Uint8Array) => {
        err.push(b.slice());
        all.push(b.slice());
      },
    },
    stdin: new ReadableStream<Uint8Array>({
      start(c) {
        if (input.length > 0) c.enqueue(input);
        c.close();
      },
    }),
    env: (name) => opts.env?.[name],
    now: opts.now ?? (() => TRANSCRIPT_DATE),
  };
  const code = await runDog(argv, io, opts.fake ? { connect: opts.fake.connect } : {});
  const join = (parts: Uint8Array[]) => {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
    return bytes;
  };
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  const stdoutBytes = join(out);
  return {
    code,
    stdout: dec(stdoutBytes),
    stderr: dec(join(err)),
    all: dec(join(all)),
    stdoutBytes,
  };
}

/** Starts a fake cluster of `n` members with the transcript's clock; stop it when done. */
export function startFake(n = 3): FakeCluster {
  const fake = new FakeCluster(n, TRANSCRIPT_SECONDS);
  fake.start();
  return fake;
}
