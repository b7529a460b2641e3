import assert from "node:assert/strict";
import { Res } from "../../core/proto/constants.ts";
import { makeNode } from "../../core/proto/node.ts";
import { DegradedReason } from "../../core/proto/degraded.ts";
import {
  clusterInfoText,
  degradedStatus,
  type EpochView,
  escapeRawName,
  NODE_INFO_HEADER,
  NODE_LIST_HEADER,
  nodeInfoRow,
  nodeInfoTotal,
  nodeListRow,
  objectLocationText,
  objectMapRow,
  padLeft,
  padRight,
  redundancyScheme,
  VDI_LIST_HEADER,
  type VdiListEntry,
  vdiListRow,
} from "./format.ts";

const nodes = [0, 1, 2].map((i) => makeNode("127.0.0.1", 7000 + i, { zone: i, nrVnodes: 128 }));
const seconds = BigInt(Math.floor(new Date(2026, 10, 21, 4, 19, 4).getTime() / 1000));

Deno.test("nodeListRow() prints the transcript's rows with the TAB before V-Nodes", () => {
  assert.equal(NODE_LIST_HEADER, "  Id   Host:Port         V-Nodes       Zone");
  assert.equal(nodeListRow(0, nodes[0], false), "   0   127.0.0.1:7000      \t128          0");
  assert.equal(nodeListRow(2, nodes[2], false), "   2   127.0.0.1:7002      \t128          2");
});

Deno.test("nodeListRow() prints single spaces in raw mode", () => {
  assert.equal(nodeListRow(1, nodes[1], true), "1 127.0.0.1:7001 128 1");
});

Deno.test("nodeListRow() keeps narrow vnode counts at width 2 and zones unsigned", () => {
  const n = makeNode("10.0.0.12", 17000, { zone: 0xffffffff, nrVnodes: 7 });
  assert.equal(nodeListRow(12, n, false), "  12   10.0.0.12:17000     \t 7 4294967295");
  assert.equal(nodeListRow(12, n, true), "12 10.0.0.12:17000 7 4294967295");
});

Deno.test("nodeInfoRow() prints the transcript's rows", () => {
  assert.equal(NODE_INFO_HEADER, "Id\tSize\tUsed\tAvail\tUse%");
  assert.equal(nodeInfoRow(0, 78640807936n, 78640807936n, false), " 0\t73 GB\t0.0 MB\t73 GB\t  0%");
  assert.equal(nodeInfoRow(0, 78640807936n, 78640807936n, true), "0 78640807936 0 78640807936 0%");
});

Deno.test("nodeInfoRow() truncates the use ratio and shows 0% for a zero-size node", () => {
  assert.equal(nodeInfoRow(3, 1000n, 1n, false), " 3\t0.0 MB\t0.0 MB\t0.0 MB\t 99%");
  assert.equal(nodeInfoRow(3, 0n, 0n, true), "3 0 0 0 0%");
});

Deno.test("nodeInfoTotal() prints the Total line and the virtual image size", () => {
  assert.deepEqual(nodeInfoTotal(235922423808n, 235922423808n, 0n, false), [
    "Total\t220 GB\t0.0 MB\t220 GB\t  0%",
    "",
    "Total virtual image size\t0.0 MB",
  ]);
  assert.deepEqual(nodeInfoTotal(235922423808n, 235922423808n, 0n, true), [
    "Total 235922423808 0 235922423808 0% 0",
  ]);
  assert.deepEqual(nodeInfoTotal(300n * 2n ** 20n, 100n * 2n ** 20n, 113246208n, false), [
    "Total\t300 MB\t200 MB\t100 MB\t 66%",
    "",
    "Total virtual image size\t108 MB",
  ]);
});

Deno.test("nodeInfoTotal() prints C's INT_MIN ratio for a cluster without space", () => {
  assert.deepEqual(nodeInfoTotal(0n, 0n, 0n, true), ["Total 0 0 0 -2147483648% 0"]);
});

function entry(over: Partial<VdiListEntry>): VdiListEntry {
  return {
    vid: 0x7c2b25,
    name: "test",
    tag: "",
    snapId: 0,
    kind: "working",
    vdiSize: 104857600n,
    used: 0n,
    shared: 0n,
    createTime: seconds,
    copies: 2,
    copyPolicy: 0,
    blockSizeShift: 22,
    ...over,
  };
}

Deno.test("vdiListRow() prints the transcript's working, snapshot and clone rows", () => {
  assert.equal(
    VDI_LIST_HEADER,
    "  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift",
  );
  assert.equal(
    vdiListRow(entry({}), false),
    "  test         0  100 MB  0.0 MB  0.0 MB 2026-11-21 04:19   7c2b25      2                22",
  );
  assert.equal(
    vdiListRow(entry({ kind: "snapshot", snapId: 1, tag: "s1", used: 4194304n }), false),
    "s test         1  100 MB  4.0 MB  0.0 MB 2026-11-21 04:19   7c2b25      2            s1  22",
  );
  assert.equal(
    vdiListRow(entry({ kind: "clone", name: "cl", vid: 0x4a297a, shared: 4194304n }), false),
    "c cl           0  100 MB  0.0 MB  4.0 MB 2026-11-21 04:19   4a297a      2                22",
  );
  assert.equal(
    vdiListRow(
      entry({ name: "small", vid: 0x98998c, vdiSize: 8388608n, used: 8388608n }),
      false,
    ),
    "  small        0  8.0 MB  8.0 MB  0.0 MB 2026-11-21 04:19   98998c      2                22",
  );
});

Deno.test("vdiListRow() prints the transcript's raw rows", () => {
  assert.equal(vdiListRow(entry({}), true), `= test 0 104857600 0 0 ${seconds} 7c2b25 2  22`);
  assert.equal(
    vdiListRow(entry({ kind: "snapshot", snapId: 1, tag: "s1", used: 4194304n }), true),
    `s test 1 104857600 4194304 0 ${seconds} 7c2b25 2 s1 22`,
  );
  assert.equal(
    vdiListRow(entry({ kind: "clone", name: "cl", vid: 0x4a297a, shared: 4194304n }), true),
    `c cl 0 104857600 0 4194304 ${seconds} 4a297a 2  22`,
  );
});

Deno.test("vdiListRow() escapes white space and backslashes in raw names only", () => {
  assert.equal(escapeRawName("a b\\c\td"), "a\\ b\\\\c\\\td");
  assert.ok(vdiListRow(entry({ name: "my disk" }), true).startsWith("= my\\ disk 0 "));
  assert.ok(vdiListRow(entry({ name: "my disk" }), false).startsWith("  my disk      0 "));
});

Deno.test("vdiListRow() lets long names push the columns and pads by bytes", () => {
  assert.ok(
    vdiListRow(entry({ name: "a-very-long-name" }), false).startsWith(
      "  a-very-long-name     0  100 MB",
    ),
  );
  // "é" is two bytes: C's %-8s pads it with six spaces.
  assert.ok(vdiListRow(entry({ name: "é" }), false).startsWith("  é           0  100 MB"));
});

Deno.test("redundancyScheme() prints N copies or D:P for erasure coding", () => {
  assert.equal(redundancyScheme(3, 0), "3");
  assert.equal(redundancyScheme(6, 0x22), "4:2");
  assert.equal(redundancyScheme(31, 0x8f), "16:15");
  assert.ok(vdiListRow(entry({ copies: 6, copyPolicy: 0x22 }), false).includes("7c2b25    4:2 "));
});

Deno.test("padLeft() and padRight() never truncate", () => {
  assert.equal(padLeft("abc", 2), "abc");
  assert.equal(padRight("abc", 2), "abc");
  assert.equal(padLeft(7, 3), "  7");
  assert.equal(padRight(7, 3), "7  ");
});

function epoch(n: number, over: Partial<EpochView> = {}): EpochView {
  return {
    ctime: seconds << 32n,
    time: seconds + BigInt(n - 1),
    epoch: n,
    disableRecovery: false,
    nrCopies: 2,
    copyPolicy: 0,
    flags: 0x0004,
    drvName: "plain",
    nodes,
    ...over,
  };
}

const EPOCH_ROW =
  "2026-11-21 04:19:04      1 [127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7002:128]\n";

Deno.test("clusterInfoText() prints the transcript's unformatted cluster", () => {
  assert.equal(
    clusterInfoText(Res.WAIT_FOR_FORMAT, [], { raw: false, verbose: false }),
    "Cluster status: Waiting for cluster to be formatted\n\n",
  );
});

Deno.test("clusterInfoText() prints the transcript's running cluster", () => {
  assert.equal(
    clusterInfoText(Res.SUCCESS, [epoch(1)], { raw: false, verbose: false }),
    "Cluster status: running, auto-recovery enabled\n\n" +
      "Cluster created at Sat Nov 21 04:19:04 2026\n\n" +
      "Epoch Time           Version [Host:Port:V-Nodes,,,]\n" + EPOCH_ROW,
  );
});

Deno.test("clusterInfoText() prints the transcript's verbose block", () => {
  assert.equal(
    clusterInfoText(Res.SUCCESS, [epoch(1)], { raw: false, verbose: true }),
    "Cluster status: running, auto-recovery enabled\n" +
      "Cluster store: plain with 2 redundancy policy\n" +
      "Cluster vnodes strategy: auto\n" +
      "Cluster vnode mode: node\n" +
      "Cluster created at Sat Nov 21 04:19:04 2026\n\n" +
      "Epoch Time           Version [Host:Port:V-Nodes,,,]\n" + EPOCH_ROW,
  );
});

Deno.test("clusterInfoText() lists epochs newest first as given", () => {
  const text = clusterInfoText(Res.SUCCESS, [epoch(12, { nodes: nodes.slice(0, 2) }), epoch(11)], {
    raw: false,
    verbose: false,
  });
  assert.ok(text.endsWith(
    "2026-11-21 04:19:15     12 [127.0.0.1:7000:128, 127.0.0.1:7001:128]\n" +
      "2026-11-21 04:19:14     11 [127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7002:128]\n",
  ));
});

Deno.test("clusterInfoText() reports disabled recovery, fixed vnodes, EC and disk mode", () => {
  const text = clusterInfoText(
    Res.SUCCESS,
    [epoch(1, { disableRecovery: true, flags: 0x0002, copyPolicy: 0x22, nrCopies: 6 })],
    { raw: false, verbose: true },
  );
  assert.ok(text.startsWith(
    "Cluster status: running, auto-recovery disabled\n" +
      "Cluster store: plain with 4:2 redundancy policy\n" +
      "Cluster vnodes strategy: fixed\n" +
      "Cluster vnode mode: disk\n",
  ));
});

Deno.test("clusterInfoText() shows the history of a cluster waiting for its members", () => {
  const text = clusterInfoText(Res.WAIT_FOR_JOIN, [epoch(1)], { raw: false, verbose: false });
  assert.ok(text.startsWith(
    "Cluster status: Waiting for other nodes to join cluster\n\nCluster created at ",
  ));
  assert.equal(
    clusterInfoText(Res.SHUTDOWN, [], { raw: false, verbose: false }),
    "Cluster status: System is shutting down\n\n",
  );
});

Deno.test("clusterInfoText() drops labels and the header in raw mode", () => {
  assert.equal(
    clusterInfoText(Res.SUCCESS, [epoch(1)], { raw: true, verbose: false }),
    "running, auto-recovery enabled\n\n" +
      `${seconds} 1 [127.0.0.1:7000:128, 127.0.0.1:7001:128, 127.0.0.1:7002:128]\n`,
  );
});

Deno.test("objectLocationText() prints the transcript's block", () => {
  const text = objectLocationText(
    { oid: 0x007c2b2500000000n, vid: 0x7c2b26, index: 0, copies: 2 },
    3,
    [{ node: nodes[0], has: true }, { node: nodes[1], has: true }, { node: nodes[2], has: false }],
    [nodes[1], nodes[0]],
  );
  assert.equal(
    text,
    "Looking for the object 007c2b2500000000 (vid 0x7c2b26 idx 0, 2 copies) with 3 nodes\n\n" +
      "127.0.0.1:7000 has the object\n" +
      "127.0.0.1:7001 has the object\n" +
      "127.0.0.1:7002 doesn't have the object\n\n" +
      "According to sheepdog algorithm, the object should be located at:\n" +
      "127.0.0.1:7001 127.0.0.1:7000\n",
  );
});

Deno.test("objectLocationText() names the inode object and reports failed checks", () => {
  const text = objectLocationText(
    { oid: 0x807c2b2600000000n, vid: 0x7c2b26, index: undefined, copies: 2 },
    1,
    [{ node: nodes[0], has: "I/O error" }],
    [nodes[0]],
  );
  assert.ok(text.startsWith(
    "Looking for the inode object 807c2b2600000000 (vid 0x7c2b26, 2 copies) with 1 nodes\n\n" +
      "127.0.0.1:7000: failed to check the object: I/O error\n",
  ));
});

Deno.test("objectMapRow() prints the transcript's row", () => {
  assert.equal(objectMapRow(0, 0x7c2b25), "00000000   7c2b25");
  assert.equal(objectMapRow(1048575, 0x1), "01048575        1");
});

Deno.test("degradedStatus() names the nodes whose recovery does not go on (exact strings)", () => {
  const a = makeNode("127.0.0.1", 7001, { zone: 1 });
  const b = makeNode("127.0.0.1", 7002, { zone: 2 });
  const d = (node: typeof a, reason: 1 | 2) => ({ node, reason, needed: 0, free: 0 });
  assert.equal(
    degradedStatus([d(a, DegradedReason.NOT_STARTED)]),
    "degraded (recovery not started: node 127.0.0.1:7001 would be out of space)",
  );
  assert.equal(
    degradedStatus([d(a, DegradedReason.NOT_STARTED), d(b, DegradedReason.NOT_STARTED)]),
    "degraded (recovery not started: nodes 127.0.0.1:7001, 127.0.0.1:7002 would be out of space)",
  );
  assert.equal(
    degradedStatus([d(b, DegradedReason.OUT_OF_SPACE)]),
    "degraded (recovery stalled: node 127.0.0.1:7002 is out of space)",
  );
  assert.equal(
    degradedStatus([d(a, DegradedReason.OUT_OF_SPACE), d(b, DegradedReason.NOT_STARTED)]),
    "degraded (recovery not started: node 127.0.0.1:7002 would be out of space; " +
      "recovery stalled: node 127.0.0.1:7001 is out of space)",
  );
});
