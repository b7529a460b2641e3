/**
 * Placement with real sheep (issue 3 §2, §4): clusters of 3, 4 and 8 sheep on one host (zones
 * from the golden vectors, local driver on a private path), formatted with each copies count in
 * turn (the cases, run on `local` by cluster_placement_test.ts and on corosync and ZooKeeper by
 * cluster_on_*_test.ts). After a VDI named `test` (vid 7c2b25, the vectors' VDI) is written through node 0, the
 * object files on disk (`DIR/obj/%016lx`) must sit on exactly the nodes that
 *
 * - core/placement/ring.ts predicts from the node list the cluster reports, and
 * - the golden vectors (testdata/placement-vectors.json) predict, when the sheep could bind the
 *   vectors' ports 127.0.0.1:7000-7007 (else that cross-check is skipped with a logged note and
 *   free ports are used; the ring check still runs).
 *
 * `dog vdi object location` must report the disk truth and the ring's replica order; `dog node
 * list` and `dog node info` must show every node (on every node).
 *
 * The layouts: 3 nodes (copies 1, 2, 3 and 6, capped by the 3 zones), 8 nodes (copies 1, 2, 3, 6),
 * 4 nodes with fixed weighted vnodes 64/128/256/128 (`sheep -V`, `format -V`; copies 1, 2, 3),
 * 4 nodes two of which share zone 0 (copies 2, 3), and 4 nodes whose auto vnodes follow unequal
 * capacities seeded into their configs (copies 2; ring check only).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canBind,
  type Cluster,
  defaultClusterTemplate,
  freePort,
  runDogOk,
  startCluster,
  waitUntil,
  withDeadline,
} from "./harness/mod.ts";
import {
  clusterInfo,
  connectSheep,
  createObj,
  INODE_INDEX_OFFSET,
  objectFiles,
  randomBytes,
  readObj,
  writeObj,
} from "./harness/proto.ts";
import { buildRing } from "../core/placement/ring.ts";
import { makeNode } from "../core/proto/node.ts";
import { encodeConfig } from "../core/proto/config.ts";
import { ClusterFlag, SD_FORMAT_VERSION } from "../core/proto/constants.ts";
import { vidOfName, vidToDataOid, vidToVdiOid, vidToVmstateOid } from "../core/hash/oid.ts";

const VECTORS_PATH = new URL("../../shared/testdata/placement-vectors.json", import.meta.url);

interface VectorNode {
  addr: string;
  port: number;
  zone: number;
  nr_vnodes: number;
}
export interface VectorRing {
  name: string;
  nodes: VectorNode[];
  placements: { oid: string; copies: number; replicas: string[] }[];
}

/** The golden vectors; the file lives in the shared docs folder beside the checkout. */
function loadVectors(): VectorRing[] {
  const candidates = [
    VECTORS_PATH,
    new URL("./testdata/placement-vectors.json", import.meta.url),
    new URL("../core/placement/testdata/placement-vectors.json", import.meta.url),
  ];
  for (const p of candidates) {
    try {
      return JSON.parse(Deno.readTextFileSync(p)).rings as VectorRing[];
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new Error(`placement-vectors.json not found (looked at ${candidates.join(", ")})`);
}

const VDI = "test";
const VID = 0x7c2b25;
const VDI_SIZE = "64M";
const OBJ_SIZE = 4 * 1024 * 1024;
/** Data objects written per round: indexes 0-11, the ones the vectors place. */
const NR_DATA = 12;
/** Bytes written into each data object (a partial write still creates the whole object). */
const CHUNK = 4096;
const STEP_DEADLINE_MS = 60_000;

/** Every oid the vectors place, except the ledger object (not created through the gateway). */
function writtenOids(): bigint[] {
  const out: bigint[] = [vidToVdiOid(VID), vidToVmstateOid(VID, 1)];
  for (let i = 0; i < NR_DATA; i++) out.push(vidToDataOid(VID, i));
  return out;
}

function oidHex(oid: bigint): string {
  return oid.toString(16).padStart(16, "0");
}

export interface Layout {
  /** Name of the ring in placement-vectors.json. */
  vector: string;
  copies: number[];
  /** Fixed vnodes (`sheep -V` per node, `dog cluster format -V`). */
  fixed?: boolean;
  /**
   * Node capacities seeded into `DIR/config` before the first start (auto-vnodes clusters). A
   * sheep records its free disk space there at its first start and keeps it (v1.0 does the same),
   * so sheep started a moment apart on a shared disk can differ by a few hundred MB and get 127
   * or 129 vnodes; equal seeded capacities make the vnode counts, and so the placement,
   * deterministic.
   */
  space?: bigint[];
}

/** A ring that is not in the vectors: auto vnodes weighted by unequal seeded capacities. */
export const AUTO_WEIGHTED: VectorRing = {
  name: "4 nodes, auto vnodes from capacities 100/200/300/200 GiB",
  nodes: [64, 128, 192, 128].map((v, i) => ({
    addr: "127.0.0.1",
    port: 0,
    zone: i,
    nr_vnodes: v,
  })),
  placements: [],
};
const GIB = 1n << 30n;

/** A fresh node's config (not formatted yet) recording its capacity. */
function seedConfig(dir: string, space: bigint): void {
  Deno.writeFileSync(
    `${dir}/config`,
    encodeConfig({
      ctime: 0n,
      flags: ClusterFlag.AUTO_VNODES,
      copies: 3,
      defaultStore: "plain",
      shutdown: false,
      copyPolicy: 0,
      blockSizeShift: 22,
      version: SD_FORMAT_VERSION,
      space,
    }),
  );
}

interface NodeRow {
  id: number;
  addr: string;
  vnodes: number;
  zone: number;
}

/** `dog node list -r` → rows. */
function parseNodeList(text: string): NodeRow[] {
  return text.trim().split("\n").map((line) => {
    const f = line.split(" ");
    assert.equal(f.length, 4, `node list -r line: ${JSON.stringify(line)}`);
    return { id: Number(f[0]), addr: f[1], vnodes: Number(f[2]), zone: Number(f[3]) };
  });
}

/** Runs a step with a deadline so a hung daemon fails the test instead of stalling CI. */
async function bounded<T>(what: string, p: Promise<T>, ms = STEP_DEADLINE_MS): Promise<T> {
  const r = await withDeadline(p, ms);
  if (!r.ok) throw new Error(`${what}: no result after ${ms} ms`);
  return r.value;
}

/** Chooses the vectors' ports when all are free, else free ones. */
function choosePorts(ring: VectorRing): { ports: number[]; vectorPorts: boolean } {
  if (ring.placements.length === 0) {
    return { ports: ring.nodes.map(() => freePort()), vectorPorts: false };
  }
  const want = ring.nodes.map((n) => n.port);
  if (ring.nodes.every((n) => n.addr === "127.0.0.1") && want.every((p) => canBind(p))) {
    return { ports: want, vectorPorts: true };
  }
  const taken = want.filter((p) => !canBind(p));
  console.log(
    `cluster_placement: ports ${taken.join(", ")} are taken: using free ports and skipping the ` +
      `golden-vector cross-check of "${ring.name}" (the ring check still runs)`,
  );
  return { ports: ring.nodes.map(() => freePort()), vectorPorts: false };
}

/** Checks `dog node list` (-r and plain) and returns its rows (asked of every node, same answer). */
async function checkNodeList(cl: Cluster, ring: VectorRing): Promise<NodeRow[]> {
  const outs = await Promise.all(
    cl.ports.map((port) => runDogOk(["node", "list", "-r"], { port })),
  );
  for (let i = 1; i < outs.length; i++) {
    assert.equal(outs[i].stdoutText, outs[0].stdoutText, `node list -r on node ${i} vs node 0`);
  }
  const rows = parseNodeList(outs[0].stdoutText);
  assert.equal(rows.length, cl.ports.length, `node list -r:\n${outs[0].stdoutText}`);
  // Nodes are listed in address order: by port here, all on 127.0.0.1.
  const byPort = cl.ports.map((p, i) => ({ p, i })).sort((a, b) => a.p - b.p);
  rows.forEach((r, k) => {
    const i = byPort[k].i;
    assert.equal(r.id, k);
    assert.equal(r.addr, `127.0.0.1:${cl.ports[i]}`);
    assert.equal(r.zone, ring.nodes[i].zone, `zone of ${r.addr}`);
    assert.equal(r.vnodes, ring.nodes[i].nr_vnodes, `vnodes of ${r.addr}`);
  });
  // The human table: header, then `%4d   %-20s\t%2d%11d` per node.
  const plain = await runDogOk(["node", "list"], { port: cl.ports[cl.ports.length - 1] });
  const lines = plain.stdoutText.split("\n").filter((l) => l !== "");
  assert.equal(lines[0], "  Id   Host:Port         V-Nodes       Zone");
  assert.equal(lines.length, rows.length + 1, plain.stdoutText);
  rows.forEach((r, k) => {
    const want = `${String(r.id).padStart(4)}   ${r.addr.padEnd(20)}\t${
      String(r.vnodes).padStart(2)
    }${String(r.zone).padStart(11)}`;
    assert.equal(lines[k + 1], want, `node list row ${k}`);
  });
  return rows;
}

/** Checks `dog node info -r` on every node: one row per node, a consistent Total line. */
async function checkNodeInfo(cl: Cluster, rows: NodeRow[], space?: bigint[]): Promise<void> {
  const outs = await Promise.all(
    cl.ports.map((port) => runDogOk(["node", "info", "-r"], { port })),
  );
  for (const [i, o] of outs.entries()) {
    const lines = o.stdoutText.trim().split("\n");
    assert.equal(lines.length, rows.length + 1, `node info -r on node ${i}:\n${o.stdoutText}`);
    let size = 0n;
    let used = 0n;
    for (let k = 0; k < rows.length; k++) {
      const f = lines[k].split(" ");
      assert.equal(f.length, 5, `node info -r row: ${lines[k]}`);
      assert.equal(Number(f[0]), k, `node info -r row ${k}`);
      assert.ok(BigInt(f[1]) > 0n, `node ${k} reports no space: ${lines[k]}`);
      if (space) {
        const i = cl.ports.indexOf(Number(rows[k].addr.split(":")[1]));
        assert.equal(BigInt(f[1]), space[i], `node info -r Size of ${rows[k].addr}`);
      }
      assert.ok(BigInt(f[2]) >= 0n && BigInt(f[3]) >= 0n, lines[k]);
      size += BigInt(f[1]);
      used += BigInt(f[2]);
    }
    const total = lines[rows.length].split(" ");
    assert.equal(total[0], "Total", lines[rows.length]);
    assert.equal(BigInt(total[1]), size, `Total size on node ${i}`);
    assert.equal(BigInt(total[2]), used, `Total used on node ${i}`);
    assert.ok(used > 0n, `nothing used after the writes:\n${o.stdoutText}`);
  }
  const plain = await runDogOk(["node", "info"], { port: cl.ports[0] });
  const lines = plain.stdoutText.split("\n");
  assert.equal(lines[0], "Id\tSize\tUsed\tAvail\tUse%");
  for (let k = 0; k < rows.length; k++) {
    assert.match(lines[k + 1], new RegExp(`^ ?${k}\\t`), `node info row ${k}`);
  }
  assert.match(lines[rows.length + 1], /^Total\t/);
  assert.match(plain.stdoutText, /\nTotal virtual image size\t/);
}

/** Writes data objects 0-11 (object 0 with dog, the rest raw), the inode index, a vmstate object. */
async function writeVdi(cl: Cluster): Promise<Map<bigint, Uint8Array>> {
  const written = new Map<bigint, Uint8Array>();
  const first = randomBytes(CHUNK);
  await runDogOk(["vdi", "write", VDI, "0", String(CHUNK)], { port: cl.ports[0], stdin: first });
  written.set(vidToDataOid(VID, 0), first);
  const c = await connectSheep(cl.ports[0]);
  try {
    const index = new Uint8Array(4 * NR_DATA);
    const view = new DataView(index.buffer);
    view.setUint32(0, VID, true);
    await Promise.all(Array.from({ length: NR_DATA - 1 }, async (_, k) => {
      const idx = k + 1;
      const data = randomBytes(CHUNK);
      // Somewhere inside the object, so offsets are forwarded too.
      const offset = (idx * 65536) % OBJ_SIZE;
      await createObj(c, vidToDataOid(VID, idx), data, offset);
      written.set(vidToDataOid(VID, idx), data);
      view.setUint32(4 * idx, VID, true);
    }));
    await writeObj(c, vidToVdiOid(VID), INODE_INDEX_OFFSET + 4, index.subarray(4));
    const vm = randomBytes(CHUNK);
    await createObj(c, vidToVmstateOid(VID, 1), vm);
    written.set(vidToVmstateOid(VID, 1), vm);
    // Everything reads back through node 0.
    for (const [oid, data] of written) {
      const idx = Number(oid & 0xffffffffn);
      const offset = oid === vidToDataOid(VID, idx) && idx > 0 ? (idx * 65536) % OBJ_SIZE : 0;
      const got = await readObj(c, oid, offset, data.length);
      assert.deepEqual(got, data, `object ${oidHex(oid)} read back through node 0`);
    }
  } finally {
    c.close();
  }
  return written;
}

/**
 * Waits until every node has applied the latest format. `dog cluster format` returns once the node
 * it asked has; the others apply MAKE_FS from the event stream a moment later (as in v1.0), and
 * one that lags would wipe objects written in between.
 */
async function waitFormatted(cl: Cluster): Promise<void> {
  const clients = await Promise.all(cl.ports.map((p) => connectSheep(p)));
  try {
    const want = (await clusterInfo(clients[0])).ctime;
    await waitUntil(
      async () => {
        const infos = await Promise.all(clients.map((c) => clusterInfo(c)));
        return infos.every((ci) => ci.ctime === want && ci.epoch === 1);
      },
      20_000,
      "every node to apply the format",
      20,
    );
  } finally {
    for (const c of clients) c.close();
  }
}

/** oid → indexes of the nodes whose obj/ holds it. */
function diskTruth(cl: Cluster): Map<string, number[]> {
  const m = new Map<string, number[]>();
  cl.sheep.forEach((s, i) => {
    for (const name of objectFiles(s.dir)) {
      if (!m.has(name)) m.set(name, []);
      m.get(name)!.push(i);
    }
  });
  return m;
}

interface Location {
  has: Set<string>;
  hasNot: Set<string>;
  placement: string[];
  copies: number;
}

function parseLocation(text: string): Location {
  const head = text.match(
    /^Looking for the (?:inode )?object [0-9a-f]{16} \(vid 0x[0-9a-f]+(?: idx \d+)?, (\d+) copies\) with (\d+) nodes\n\n/,
  );
  assert.ok(head, `object location output:\n${text}`);
  const has = new Set<string>();
  const hasNot = new Set<string>();
  for (const m of text.matchAll(/^(\S+) has the object$/gm)) has.add(m[1]);
  for (const m of text.matchAll(/^(\S+) doesn't have the object$/gm)) hasNot.add(m[1]);
  const tail = text.split("According to sheepdog algorithm, the object should be located at:\n");
  assert.equal(tail.length, 2, `object location output:\n${text}`);
  return {
    has,
    hasNot,
    placement: tail[1].trim().split(" "),
    copies: Number(head[1]),
  };
}

/**
 * One layout on the cluster driver of `driver` (a `-c` template, see `expandClusterSpec`; the
 * local driver unless $SHEEPDOG_TEST_CLUSTER says otherwise).
 */
export async function runLayout(layout: Layout, driver = defaultClusterTemplate()): Promise<void> {
  const ring = layout.vector === AUTO_WEIGHTED.name
    ? AUTO_WEIGHTED
    : loadVectors().find((r) => r.name === layout.vector);
  assert.ok(ring, `no ring "${layout.vector}" in placement-vectors.json`);
  const n = ring.nodes.length;
  const { ports, vectorPorts } = choosePorts(ring);
  const t0 = Date.now();
  const cl = await startCluster(n, {
    clusterTemplate: driver,
    ports,
    zones: ring.nodes.map((x) => x.zone),
    extraArgs: ["-n"],
    nodeArgs: layout.fixed ? ring.nodes.map((x) => ["-V", String(x.nr_vnodes)]) : undefined,
    prepare: layout.space ? (dir, i) => seedConfig(dir, layout.space![i]) : undefined,
  });
  try {
    const name = (i: number) => `127.0.0.1:${cl.ports[i]}`;
    const portIndex = new Map(cl.ports.map((p, i) => [`127.0.0.1:${p}`, i]));
    const vecIndex = new Map(ring.nodes.map((x, i) => [`${x.addr}:${x.port}`, i]));
    const nrZones = new Set(ring.nodes.map((x) => x.zone)).size;
    let rows: NodeRow[] = [];
    let vectorChecks = 0;

    const tStart = Date.now();
    const lap: string[] = [`start ${tStart - t0}`];
    for (const copies of layout.copies) {
      const tc = Date.now();
      const fmt = ["cluster", "format", "-c", String(copies), "-f"];
      if (layout.fixed) fmt.push("-V");
      await bounded("format", runDogOk(fmt, { port: cl.ports[0] }));
      await bounded("format applied everywhere", waitFormatted(cl));
      if (rows.length === 0) rows = await bounded("node list", checkNodeList(cl, ring));
      for (const s of cl.sheep) {
        assert.deepEqual(objectFiles(s.dir), [], `${s.addr} still has objects after the format`);
      }
      await runDogOk(["vdi", "create", VDI, VDI_SIZE], { port: cl.ports[0] });
      assert.equal(vidOfName(VDI), VID);
      if (copies === layout.copies[0]) {
        // Once per cluster (later rounds see the inode file 807c2b2500000000 on disk).
        const list = await runDogOk(["vdi", "list", "-r", VDI], { port: cl.ports[n - 1] });
        const f = list.stdoutText.trim().split(" ");
        assert.equal(f[7], VID.toString(16), `vid of ${VDI}: ${list.stdoutText}`);
        assert.equal(Number(f[8]), copies, `copies column: ${list.stdoutText}`);
      }

      const written = await bounded("writes", writeVdi(cl));

      // The ring, from the node list the cluster reports.
      const nodes = rows.map((r) => {
        const i = portIndex.get(r.addr)!;
        return makeNode("127.0.0.1", cl.ports[i], { nrVnodes: r.vnodes, zone: r.zone });
      });
      const r = buildRing(nodes);
      assert.equal(r.nrZones, nrZones);
      const truth = diskTruth(cl);
      const want = new Set([...written.keys()].map(oidHex));
      want.add(oidHex(vidToVdiOid(VID)));
      assert.deepEqual(
        [...truth.keys()].sort(),
        [...want].sort(),
        "the set of object files on all disks",
      );
      const effective = Math.min(copies, nrZones);
      for (const oid of writtenOids()) {
        const predicted = r.place(oid, copies).map((x) =>
          portIndex.get(`127.0.0.1:${x.nid.port}`)!
        );
        assert.equal(predicted.length, effective);
        const onDisk = truth.get(oidHex(oid)) ?? [];
        assert.deepEqual(
          [...onDisk].sort((a, b) => a - b),
          [...predicted].sort((a, b) => a - b),
          `copies ${copies}: object ${oidHex(oid)} is on ${onDisk.map(name)}, the ring says ` +
            `${predicted.map(name)}`,
        );
        if (vectorPorts) {
          for (const v of ring.placements) {
            if (v.oid !== oidHex(oid) || v.copies !== copies) continue;
            const vec = v.replicas.map((a) => vecIndex.get(a)!);
            assert.deepEqual(predicted, vec, `vector ${v.oid} copies ${copies} (ring order)`);
            assert.deepEqual(
              [...onDisk].sort((a, b) => a - b),
              [...vec].sort((a, b) => a - b),
              `copies ${copies}: object ${v.oid} is on ${onDisk.map(name)}, the vectors say ` +
                `${v.replicas}`,
            );
            vectorChecks++;
          }
        }
      }

      // dog vdi object location: the inode and a few data objects, through different nodes.
      const idxs = [undefined, copies % NR_DATA, (copies + 5) % NR_DATA];
      await Promise.all(idxs.map(async (idx, k) => {
        const args = ["vdi", "object", "location", VDI];
        if (idx !== undefined) args.splice(3, 0, "-i", String(idx));
        const port = cl.ports[k % n];
        const out = await runDogOk(args, { port });
        const loc = parseLocation(out.stdoutText);
        const oid = idx === undefined ? vidToVdiOid(VID) : vidToDataOid(VID, idx);
        const onDisk = new Set((truth.get(oidHex(oid)) ?? []).map(name));
        const what = `object location ${idx ?? "inode"} via ${port}:\n${out.stdoutText}`;
        assert.deepEqual(loc.has, onDisk, what);
        assert.equal(loc.has.size + loc.hasNot.size, n, what);
        for (const a of loc.hasNot) assert.ok(!onDisk.has(a), what);
        assert.deepEqual(
          loc.placement,
          r.place(oid, copies).map((x) => `127.0.0.1:${x.nid.port}`),
          what,
        );
        assert.equal(loc.copies, copies, what);
      }));
      lap.push(`c${copies} ${Date.now() - tc}`);
    }
    await bounded("node info", checkNodeInfo(cl, rows, layout.space));
    console.log(
      `cluster_placement (${cl.clusterSpec.split(":")[0]}): "${ring.name}" copies ${
        layout.copies.join("/")
      }: ` +
        `${vectorPorts ? `${vectorChecks} vector placements checked` : "vector check skipped"}, ` +
        `${Date.now() - t0} ms (ms per phase: ${lap.join(", ")})`,
    );
    if (vectorPorts) assert.ok(vectorChecks > 0, "no vector placement was checked");
    for (const s of cl.sheep) assert.ok(s.running, `${s.addr} died:\n${s.process.logTail()}`);
  } finally {
    await cl.stopAll();
  }
}

const EQUAL = (n: number) => Array.from({ length: n }, () => 64n * GIB);

export const LAYOUTS: Layout[] = [
  { vector: "3 nodes, zones 0-2, 128 vnodes", copies: [1, 2, 3, 6], space: EQUAL(3) },
  { vector: "8 nodes, zones 0-7, 128 vnodes", copies: [1, 2, 3, 6], space: EQUAL(8) },
  { vector: "4 nodes, weighted vnodes 64/128/256/128", copies: [1, 2, 3], fixed: true },
  { vector: "4 nodes, two share zone 0", copies: [2, 3], space: EQUAL(4) },
  {
    vector: AUTO_WEIGHTED.name,
    copies: [2],
    space: [100n * GIB, 200n * GIB, 300n * GIB, 200n * GIB],
  },
];
