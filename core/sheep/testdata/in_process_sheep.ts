/**
 * A formatted one-node sheep in process, for unit tests of its clients (VDI volumes, the NBD
 * export): a real Sheep with a plain store in a temporary directory (nosync), the SoloDriver and
 * in-memory metadata, reached through its request handler without sockets.
 *
 * @module
 */

import { Sheep } from "../sheep.ts";
import { SoloDriver } from "./solo_driver.ts";
import { systemTimers } from "../../cluster/deadline.ts";
import { tcpPeerConnect } from "../../net/peer_pool.ts";
import { memoryLog } from "../log.ts";
import { memoryMetaFiles } from "../meta_files.ts";
import { PlainStore } from "../../store/plain_store.ts";
import { makeNode } from "../../proto/node.ts";
import {
  Flag,
  Op,
  Res,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../../proto/constants.ts";
import { SdReq } from "../../proto/header.ts";
import { SdError } from "../../proto/sd_error.ts";
import { encodeFixedString } from "../../proto/strings.ts";
import { vidToVdiOid } from "../../hash/oid.ts";
import type { ConnectionInfo } from "../../net/server.ts";
import type { Reply } from "../../net/client.ts";

/** Sends one request to the sheep, as a client would. */
export type InProcessRequest = (req: SdReq, data?: Uint8Array) => Promise<Reply>;

/** The running test sheep. */
export interface TestSheep {
  sheep: Sheep;
  request: InProcessRequest;
  /** NEW_VDI of `size` bytes; the vid. */
  createVdi(name: string, size: number): Promise<number>;
  /** `dog vdi snapshot -s TAG NAME`: tags the working VDI, then NEW_VDI as its snapshot. */
  snapshot(name: string, vid: number, size: number, tag: string): Promise<number>;
}

/**
 * Runs `fn` against a freshly formatted one-node sheep (copies 1), then tears it down.
 * `clusterFlags` are added to the format's flags (ClusterFlag.USE_LOCK for `format -l`).
 */
export async function withTestSheep(
  fn: (t: TestSheep) => Promise<void>,
  opts: { clusterFlags?: number } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "test_sheep_" });
  const store = await PlainStore.open(dir, { nosync: true });
  const sheep = new Sheep(
    {
      node: makeNode("127.0.0.1", 7000, { zone: 0 }),
      space: 1n << 40n,
      fixedVnodes: false,
      nosync: true,
    },
    {
      store,
      meta: memoryMetaFiles(),
      driver: new SoloDriver(),
      log: memoryLog(),
      now: () => Date.UTC(2026, 10, 21, 4, 19, 4),
      timers: systemTimers,
      connectPeer: tcpPeerConnect,
      random: () => 0.5,
      exit: () => {},
      stopListening: () => {},
    },
  );
  const conn: ConnectionInfo = {
    transport: "unix",
    remote: "test",
    signal: new AbortController().signal,
  };
  const request: InProcessRequest = async (req, data) => {
    const r = await sheep.handle(req, data, conn);
    return { rsp: r.rsp, data: r.data ?? new Uint8Array(0) };
  };
  const expectOk = async (req: SdReq, data?: Uint8Array): Promise<Reply> => {
    const r = await request(req, data);
    if (r.rsp.result !== Res.SUCCESS) throw new SdError(r.rsp.result, `opcode ${req.opcode}`);
    return r;
  };
  const newVdi = async (name: string, size: number, base: number, snap: boolean) => {
    const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, {
      flags: Flag.CMD_WRITE,
      dataLength: SD_MAX_VDI_LEN,
    });
    req.vdi.vdiSize = BigInt(size);
    req.vdi.baseVdiId = base;
    req.vdi.snapid = snap ? 1 : 0;
    req.vdi.copies = 1;
    return (await expectOk(req, encodeFixedString(name, SD_MAX_VDI_LEN))).rsp.vdi.vdiId;
  };
  try {
    await sheep.load();
    await sheep.join();
    const fmt = SdReq.of(Op.MAKE_FS, SD_SHEEP_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 6 });
    fmt.cluster.copies = 1;
    fmt.cluster.flags = 0x4 | (opts.clusterFlags ?? 0);
    await expectOk(fmt, new TextEncoder().encode("plain\0"));
    await fn({
      sheep,
      request,
      createVdi: (name, size) => newVdi(name, size, 0, false),
      snapshot: async (name, vid, size, tag) => {
        const wr = SdReq.of(Op.WRITE_OBJ, SD_PROTO_VER, {
          flags: Flag.CMD_WRITE,
          dataLength: SD_MAX_VDI_TAG_LEN,
        });
        wr.obj.oid = vidToVdiOid(vid);
        wr.obj.offset = SD_MAX_VDI_LEN;
        await expectOk(wr, encodeFixedString(tag, SD_MAX_VDI_TAG_LEN));
        return await newVdi(name, size, vid, true);
      },
    });
  } finally {
    await sheep.close();
    await Deno.remove(dir, { recursive: true });
  }
}
