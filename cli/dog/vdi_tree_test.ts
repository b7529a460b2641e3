import assert from "node:assert/strict";
import { GRAPH_FOOTER, GRAPH_HEADER, graphEntry, renderTree, type TreeVdi } from "./vdi_tree.ts";

const here = "(you are here)";
const t = (name: string, label: string, vid: number, parentVid: number): TreeVdi => ({
  name,
  label,
  vid,
  parentVid,
  highlight: false,
});

Deno.test("vdi tree: the v1.0 transcript (clone starts its own tree)", () => {
  const out = renderTree([
    t("cl", here, 0x4a297a, 0x7c2b25),
    t("test", "[2026-11-21 04:19]", 0x7c2b25, 0),
    t("test", here, 0x7c2b26, 0x7c2b25),
    t("small", here, 0x98998c, 0),
  ]);
  assert.equal(
    out,
    "cl---(you are here)\n" +
      "test---[2026-11-21 04:19]---(you are here)\n" +
      "small---(you are here)\n",
  );
});

Deno.test("vdi tree: branches after a rollback are aligned under the label", () => {
  const s1 = "[2026-01-01 00:00]";
  const s2 = "[2026-01-01 00:01]";
  const out = renderTree([
    t("a", s1, 10, 0),
    t("a", s2, 11, 10),
    t("a", here, 12, 10),
    t("a", "[2026-01-01 00:02]", 13, 11),
    t("a", here, 14, 13),
  ]);
  assert.equal(
    out,
    "a---[2026-01-01 00:00]-+-[2026-01-01 00:01]---[2026-01-01 00:02]---(you are here)\n" +
      "                       `-(you are here)\n",
  );
  // Three children, the middle one with children of its own.
  const out3 = renderTree([
    t("b", "[s]", 1, 0),
    t("b", "[x]", 2, 1),
    t("b", "[y]", 3, 1),
    t("b", here, 4, 1),
    t("b", here, 5, 3),
  ]);
  assert.equal(
    out3,
    "b---[s]-+-[x]\n" +
      "        |-[y]---(you are here)\n" +
      "        `-(you are here)\n",
  );
});

Deno.test("vdi tree: a child listed before its parent is moved under it", () => {
  const out = renderTree([t("z", here, 1, 0xffffff), t("z", "[p]", 0xffffff, 0)]);
  assert.equal(out, "z---[p]---(you are here)\n");
});

Deno.test("vdi tree: highlighted labels are bold", () => {
  const out = renderTree([{ name: "w", label: here, vid: 1, parentVid: 0, highlight: true }]);
  assert.equal(out, "w---\x1b[1m(you are here)\x1b[0m\n");
});

Deno.test("vdi graph: v1.0's dot entries", () => {
  assert.ok(GRAPH_HEADER.startsWith("digraph G {\n"));
  assert.equal(GRAPH_FOOTER, "}\n");
  const e = graphEntry({
    name: "test",
    vid: 0x7c2b26,
    parentVid: 0x7c2b25,
    snapId: 2,
    vdiSize: 104857600n,
    createSeconds: 0n,
    isCurrent: true,
  }, true);
  const lines = e.split("\n");
  assert.equal(lines[0], '  "7c2b25" -> "7c2b26";');
  assert.equal(lines[1], '  "7c2b26" [');
  assert.equal(lines[2], '    group = "test",');
  assert.match(lines[3], /^ {4}label = "Name: {7}test\\nTag: {11}2\\nSize: {2}104857600\\nDate: /);
  assert.equal(lines[4], '    color="red"');
  assert.equal(lines[5], "  ];");
});
