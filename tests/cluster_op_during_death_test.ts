/**
 * A replica that dies while a cluster op's work step writes to it: the work runs inside the
 * cluster-wide block, and the dead node's leave passes the block (core/cluster/event_log.ts), so
 * the work's retries reach the new epoch's replicas and the op succeeds, in seconds, with no
 * error for the client.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startCluster, waitUntil } from "./harness/mod.ts";
import { SheepClient } from "../core/net/client.ts";
import { SdReq } from "../core/proto/header.ts";
import { Flag, Op, Res, SD_PROTO_VER } from "../core/proto/constants.ts";
import { encodeFixedString } from "../core/proto/strings.ts";

function snapshotReq(vid: number): SdReq {
  const req = SdReq.of(Op.NEW_VDI, SD_PROTO_VER, { flags: Flag.CMD_WRITE, dataLength: 256 });
  req.vdi.vdiSize = 16n << 20n;
  req.vdi.baseVdiId = vid;
  req.vdi.snapid = 1;
  return req;
}

Deno.test({
  name: "a snapshot whose replica just died succeeds within seconds",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using c = await startCluster(3, { copies: 3 });
    const dog = (args: string[]) => c.dog(args, { node: 0 });
    assert.equal((await dog(["vdi", "create", "v", "16M"])).code, 0);
    const vid = parseInt((await dog(["vdi", "list", "-r"])).stdoutText.split(" ")[7], 16);
    const client = await SheepClient.connect({ host: "127.0.0.1", port: c.ports[0] });
    try {
      // SIGKILL, then at once a snapshot, before the survivors can notice the death.
      Deno.kill(c.sheep[2].pid, "SIGKILL");
      const t0 = Date.now();
      const first = await client.request(snapshotReq(vid), encodeFixedString("v", 256));
      const took = Date.now() - t0;
      console.log(
        `cluster_op_during_death: snapshot right after the kill: result 0x${
          first.rsp.result.toString(16)
        } in ${took} ms`,
      );
      assert.ok(took < 15_000, `the snapshot took ${took} ms`);
      await waitUntil(
        async () => {
          const r = await dog(["node", "list", "-r"]);
          return r.code === 0 && r.stdoutText.trim().split("\n").length === 2;
        },
        15_000,
        "the dead sheep leaves",
      );
      assert.equal(first.rsp.result, Res.SUCCESS, "the client sees no error");
    } finally {
      client.close();
    }
    const list = (await dog(["vdi", "list", "-r"])).stdoutText;
    assert.match(list, /^s v 1 /m);
    assert.match(list, /^= v 0 /m);
  },
});
