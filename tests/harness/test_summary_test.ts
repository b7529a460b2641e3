import assert from "node:assert/strict";
import { parseDenoTestOutput, verdict } from "./test_summary.ts";

const ESC = "\x1b";

Deno.test("parseDenoTestOutput() reads passed/failed test cases, not steps", () => {
  const s = parseDenoTestOutput(
    `running 2 tests\na ... ok (1ms)\n` +
      `${ESC}[0m${ESC}[31mFAILED${ESC}[0m | 3 passed (2 steps) | 1 failed | 1 ignored ${ESC}[0m(33ms)\n`,
  );
  assert.deepEqual(s, { passed: 3, failed: 1, ignored: 1, complete: true });
  assert.deepEqual(verdict(s, 1).line, "3 passed, 1 failed");
  assert.equal(verdict(s, 1).ok, false);
});

Deno.test("parseDenoTestOutput(): ok line with steps", () => {
  const s = parseDenoTestOutput("ok | 12 passed (40 steps) | 0 failed (2m 3s)\n");
  assert.deepEqual(s, { passed: 12, failed: 0, ignored: 0, complete: true });
  assert.deepEqual(verdict(s, 0), { notes: [], line: "12 passed, 0 failed", ok: true });
});

Deno.test("parseDenoTestOutput(): no summary line counts result lines plus one failure", () => {
  const text = [
    "./a_test.ts => one ... ok (1ms)",
    "./a_test.ts => two ... s1 ... ok (0ms)",
    "./a_test.ts => two ... ok (2ms)",
    "three ... FAILED (1ms)",
    "  step ... ok (1ms)",
    "error: Type checking failed.",
  ].join("\n");
  const s = parseDenoTestOutput(text);
  assert.deepEqual(s, { passed: 2, failed: 1, ignored: 0, complete: false });
  const v = verdict(s, 1);
  assert.equal(v.line, "2 passed, 2 failed");
  assert.equal(v.ok, false);
  assert.equal(verdict(parseDenoTestOutput(""), 1).line, "0 passed, 1 failed");
});

Deno.test("verdict(): a failing exit code never yields '0 failed'", () => {
  const v = verdict({ passed: 5, failed: 0, ignored: 0, complete: true }, 124);
  assert.equal(v.line, "5 passed, 1 failed");
  assert.equal(v.ok, false);
});
