import assert from "node:assert/strict";
import { run } from "./process.ts";
import { sheepdogBackingStore, startTgtd } from "./tgt.ts";

Deno.test("startTgtd(): a private tgtd with a target and no LUN, then stop() by tgtadm", async () => {
  const tgtd = await startTgtd();
  try {
    await tgtd.newTarget(1, "iqn.2026-01.test.sheepdog:harness");
    await tgtd.bindAll(1);
    const show = await tgtd.tgtadmOk(["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert.match(show.stdoutText, /iqn\.2026-01\.test\.sheepdog:harness/);
    // An independent initiator sees the target on the private portal.
    const ls = await run("iscsi-ls", [`iscsi://${tgtd.portal}`], { deadlineMs: 20_000 });
    assert.equal(ls.code, 0, ls.stderrText);
    assert.match(ls.stdoutText, /iqn\.2026-01\.test\.sheepdog:harness/);
  } finally {
    await tgtd.stop();
  }
  assert.equal(tgtd.process.running, false);
  const st = await tgtd.process.exited;
  assert.equal(st.signal, null, `tgtd needed a signal: ${tgtd.logs()}`);
});

Deno.test("sheepdogBackingStore(): tcp and unix forms, tags, and the four-digit port limit", () => {
  assert.equal(sheepdogBackingStore({ sheepPort: 7000, vdi: "v" }), "tcp:127.0.0.1:7000:v");
  assert.equal(
    sheepdogBackingStore({ sheepSocketPath: "/s/sock", vdi: "v", snapshot: "snap1" }),
    "unix:/s/sock:v:snap1",
  );
  assert.throws(() => sheepdogBackingStore({ sheepPort: 17000, vdi: "v" }), /four/);
  assert.throws(() => sheepdogBackingStore({ vdi: "v" }), /exactly one/);
});
