import assert from "node:assert/strict";
import { measureRawLimits, median, parseFioJson, rawLimitsTable } from "./raw_limits.ts";

Deno.test("median() of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("parseFioJson() reads bandwidth, IOPS and latency including the fdatasync", () => {
  const out = `fio: some warning\n${
    JSON.stringify({
      jobs: [{
        error: 0,
        write: { bw_bytes: 1000, iops: 250.5, lat_ns: { mean: 4000 } },
        read: { bw_bytes: 0, iops: 0, lat_ns: { mean: 0 } },
        sync: { total_ios: 0, lat_ns: { mean: 96000, N: 10 } },
      }],
    })
  }`;
  assert.deepEqual(parseFioJson(out, "write"), { bwBytes: 1000, iops: 250.5, meanLatUs: 100 });
  assert.throws(() => parseFioJson("nothing", "read"), /no JSON/);
});

Deno.test("measureRawLimits() runs fio jobs and reports medians (tiny run)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raw-limits-test-" });
  try {
    const r = await measureRawLimits({
      dir,
      sizeMiB: 8,
      runtimeSec: 1,
      repeats: 1,
      only: ["seq_write_4m_fdatasync", "randread_4k_qd16"],
    });
    assert.equal(r.results.length, 2);
    for (const x of r.results) {
      assert.ok(x.bwBytes > 0 && x.iops > 0 && x.meanLatUs > 0, JSON.stringify(x));
      assert.equal(x.samples.length, 1);
    }
    assert.match(rawLimitsTable(r), /\| seq write 4 MiB, fdatasync each/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "scratch files left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
