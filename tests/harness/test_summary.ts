/**
 * The closing line of bin/test: reads the output of `deno test` and prints `N passed, N failed`
 * (test cases, not steps), the plain line CI reads.
 *
 * `deno test` ends with `ok | 3 passed (2 steps) | 0 failed (1s)` or
 * `FAILED | 3 passed | 1 failed | 1 ignored (2s)`. When that line is missing (a type error, a crash,
 * the run killed at its deadline) the per-test result lines seen so far are counted instead and the
 * incomplete run counts as one more failure.
 *
 * Usage: `deno run --allow-read test_summary.ts LOG [DENO_TEST_EXIT_CODE]`; prints explanations and
 * then the closing line last, and exits 0 only for a complete run without failures.
 *
 * @module
 */

/** Counts taken from a `deno test` output. */
export interface TestSummary {
  passed: number;
  failed: number;
  ignored: number;
  /** True when deno test's own summary line was found (else counts come from result lines). */
  complete: boolean;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const SUMMARY = /^(ok|FAILED) \| (\d+) passed\b.*\| (\d+) failed\b/;
/** `name ... ok (3ms)`, or `./a_test.ts => name ... FAILED (1s)` with --parallel. Not indented. */
const RESULT = /^(?:\S+ => )?(\S.*?) \.\.\. (ok|FAILED|ignored)(?: \(.*\))?$/;

/** Parses deno test output; the last summary line wins (several runs may share one log). */
export function parseDenoTestOutput(text: string): TestSummary {
  const lines = text.replace(ANSI, "").split(/\r?\n/);
  let summary: TestSummary | null = null;
  let passed = 0;
  let failed = 0;
  let ignored = 0;
  for (const line of lines) {
    const s = SUMMARY.exec(line);
    if (s) {
      const ign = /\| (\d+) ignored\b/.exec(line);
      summary = {
        passed: Number(s[2]),
        failed: Number(s[3]),
        ignored: ign ? Number(ign[1]) : 0,
        complete: true,
      };
      continue;
    }
    const r = RESULT.exec(line);
    // A step printed with --parallel reads `file => test ... step ... ok`: not a test case.
    if (r && !r[1].includes(" ... ")) {
      if (r[2] === "ok") passed++;
      else if (r[2] === "FAILED") failed++;
      else ignored++;
    }
  }
  return summary ?? { passed, failed, ignored, complete: false };
}

/**
 * The verdict for a run: the closing line, notes to print before it, and whether it passed.
 * A non-zero exit of deno test with no failed test counted (or no summary) adds one failure, so
 * the closing line never says "0 failed" for a run that failed.
 */
export function verdict(
  s: TestSummary,
  denoExitCode: number,
): { notes: string[]; line: string; ok: boolean } {
  const notes: string[] = [];
  let failed = s.failed;
  if (!s.complete) {
    notes.push(
      `bin/test: deno test printed no summary line (exit ${denoExitCode}); ` +
        `counted the results it printed and one failure for the incomplete run`,
    );
    failed++;
  } else if (denoExitCode !== 0 && failed === 0) {
    notes.push(
      `bin/test: deno test exited ${denoExitCode} although no test failed; counted as one failure`,
    );
    failed++;
  }
  if (s.ignored > 0) notes.push(`bin/test: ${s.ignored} ignored`);
  const ok = failed === 0 && denoExitCode === 0;
  return { notes, line: `${s.passed} passed, ${failed} failed`, ok };
}

if (import.meta.main) {
  const [log, code] = Deno.args;
  if (!log) {
    console.error("usage: test_summary.ts LOG [DENO_TEST_EXIT_CODE]");
    Deno.exit(64);
  }
  let text = "";
  try {
    text = Deno.readTextFileSync(log);
  } catch (e) {
    console.log(`bin/test: cannot read ${log}: ${e instanceof Error ? e.message : e}`);
  }
  const v = verdict(parseDenoTestOutput(text), Number(code ?? 0));
  for (const n of v.notes) console.log(n);
  console.log(v.line);
  Deno.exit(v.ok ? 0 : 1);
}
