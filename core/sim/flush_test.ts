/**
 * Writeback writes (Flag.CMD_WRITEBACK) and FLUSH_NODES on a simulated cluster of three sheep
 * with copies 3, then a power failure of every node at once (each store loses what was not
 * durable, per MemoryStore's crash model): the flushed writes are on every disk, the one written
 * after the flush on none. The cluster simulation (cluster_sim_test.ts) never takes down more
 * than copies - 1 nodes; this is the case only a flush protects.
 */

import assert from "node:assert/strict";
import { MemoryHub } from "../cluster/memory.ts";
import { Flag, Op, Res, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import type { Reply } from "../net/client.ts";
import { Prng } from "../recovery/prng.ts";
import { MemoryStore } from "../store/memory_store.ts";
import { SIM_OWNER, SimClock } from "./sim_clock.ts";
import { SimNetwork } from "./sim_network.ts";
import { SimNode, type SimWorld } from "./sim_node.ts";
import { SimTrace } from "./sim_trace.ts";
import { blockContent } from "./workload.ts";

const DEADLINE_MS = 60_000;
const BLOCK_SHIFT = 16;
const OBJ_SIZE = 1 << BLOCK_SHIFT;
const BLOCK = 4096;
const OID_A = 0x00aaaa0000000001n;
const OID_B = 0x00aaaa0000000002n;

/** Sends one request through `to`, driving the virtual clock until it is answered. */
async function request(w: SimWorld, to: string, req: SdReq, data?: Uint8Array): Promise<Reply> {
  let reply: Reply | null = null;
  let failure: unknown = null;
  (async () => {
    const c = await w.net.connect("client", to);
    try {
      reply = await c.request(req, data);
    } finally {
      c.close();
    }
  })().catch((e) => failure = e);
  const done = await w.clock.runUntil(
    () => reply !== null || failure !== null,
    w.clock.now() + DEADLINE_MS,
  );
  assert.ok(done, `request 0x${req.opcode.toString(16)} answered`);
  if (failure !== null) throw failure;
  return reply!;
}

async function expectOk(w: SimWorld, to: string, req: SdReq, data?: Uint8Array): Promise<void> {
  const r = await request(w, to, req, data);
  assert.equal(r.rsp.result, Res.SUCCESS, `request 0x${req.opcode.toString(16)}`);
}

/** A writeback CREATE_AND_WRITE_OBJ or WRITE_OBJ of `data` at `offset` through `to`. */
async function writeback(
  w: SimWorld,
  to: string,
  op: number,
  oid: bigint,
  offset: number,
  data: Uint8Array,
): Promise<void> {
  const req = SdReq.of(op, SD_PROTO_VER, {
    flags: Flag.CMD_WRITE | Flag.CMD_WRITEBACK,
    dataLength: data.length,
  });
  req.obj.oid = oid;
  req.obj.offset = offset;
  req.obj.copies = 3;
  await expectOk(w, to, req, data);
}

Deno.test("sim: FLUSH_NODES makes writeback writes durable on every replica; a power failure of every node loses only what came after it", async () => {
  const clock = new SimClock(new Prng(1), Date.UTC(2026, 0, 1));
  const net = new SimNetwork(clock, new Prng(2), { delayMs: [0, 2], resetChance: 0 });
  const hubPrng = new Prng(3);
  const hub = new MemoryHub({
    schedule: (fn) => clock.schedule(hubPrng.between(0, 2), fn, SIM_OWNER, "hub"),
  });
  const w: SimWorld = { clock, net, hub, trace: new SimTrace(clock, 6) };
  const nodes = [0, 1, 2].map((i) => new SimNode(w, i, 64, 10 + i));
  try {
    for (const n of nodes) n.start().catch((e) => assert.fail(`${n.name}: ${e}`));
    assert.ok(await clock.runUntil(() => nodes.every((n) => n.up), clock.now() + DEADLINE_MS));
    const fmt = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 6 });
    fmt.cluster.copies = 3;
    fmt.cluster.blockSizeShift = BLOCK_SHIFT;
    fmt.cluster.ctime = BigInt(Math.floor(clock.now() / 1000)) << 32n;
    await expectOk(w, nodes[0].name, fmt, new TextEncoder().encode("plain\0"));

    const v1 = blockContent(OID_A, 0, 1, BLOCK);
    const v2 = blockContent(OID_B, 3, 2, BLOCK);
    const v3 = blockContent(OID_A, 0, 3, BLOCK);
    await writeback(w, nodes[0].name, Op.CREATE_AND_WRITE_OBJ, OID_A, 0, v1);
    await writeback(w, nodes[1].name, Op.CREATE_AND_WRITE_OBJ, OID_B, 0, v1);
    await writeback(w, nodes[2].name, Op.WRITE_OBJ, OID_B, 3 * BLOCK, v2);
    for (const n of nodes) assert.ok(n.inc!.store.unsyncedCount > 0, `${n.name} has writes`);
    await expectOk(w, nodes[1].name, SdReq.of(Op.FLUSH_NODES, SD_SHEEP_PROTO_VER, {}));
    // Written after the flush: acknowledged, in every replica's cache, on no disk.
    await writeback(w, nodes[0].name, Op.WRITE_OBJ, OID_A, 0, v3);

    for (const n of nodes) n.crash();
    for (const n of nodes) {
      const store = MemoryStore.open(n.disk);
      assert.deepEqual(await store.list(), [OID_A, OID_B], n.name);
      assert.deepEqual(await store.read(OID_A, 0, BLOCK), v1, `${n.name}: v3 was never flushed`);
      assert.deepEqual(await store.read(OID_B, 3 * BLOCK, BLOCK), v2, n.name);
      assert.equal(await store.size(OID_B), OBJ_SIZE);
      await store.close();
    }
  } finally {
    for (const n of nodes) n.crash();
    await clock.settle();
  }
});
