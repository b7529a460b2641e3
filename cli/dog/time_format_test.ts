import assert from "node:assert/strict";
import {
  dateOfSeconds,
  formatCtime,
  formatMinute,
  formatSecond,
  sdTimeOf,
  sdTimeSeconds,
} from "./time_format.ts";

Deno.test("formatCtime() prints ctime(3)'s layout with a space-padded day", () => {
  assert.equal(formatCtime(new Date(2026, 10, 21, 4, 19, 4)), "Sat Nov 21 04:19:04 2026");
  assert.equal(formatCtime(new Date(2026, 10, 1, 14, 5, 6)), "Sun Nov  1 14:05:06 2026");
});

Deno.test("formatMinute() and formatSecond() print strftime's %Y-%m-%d %H:%M[:%S]", () => {
  const d = new Date(2026, 0, 2, 3, 4, 5);
  assert.equal(formatMinute(d), "2026-01-02 03:04");
  assert.equal(formatSecond(d), "2026-01-02 03:04:05");
});

Deno.test("sdTimeOf() puts seconds high and nanoseconds low", () => {
  const t = sdTimeOf(new Date(1795234744123));
  assert.equal(t, (1795234744n << 32n) | 123000000n);
  assert.equal(sdTimeSeconds(t), 1795234744n);
  assert.equal(dateOfSeconds(1795234744n).getTime(), 1795234744000);
});
