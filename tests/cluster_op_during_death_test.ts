/**
 * A replica that dies while a cluster op's work step writes to it: the work runs inside the
 * cluster-wide block, which holds back the dead node's leave, so waiting for a new epoch would
 * stall every cluster op until the gateway's long retry deadline (60 s, past dog's request
 * timeout). The work step fails fast instead; once the leave is in, the same op succeeds.
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
  name: "a snapshot whose replica just died ends within seconds, and succeeds after the leave",
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
      if (first.rsp.result !== Res.SUCCESS) {
        const again = await client.request(snapshotReq(vid), encodeFixedString("v", 256));
        assert.equal(again.rsp.result, Res.SUCCESS);
      }
    } finally {
      client.close();
    }
    const list = (await dog(["vdi", "list", "-r"])).stdoutText;
    assert.match(list, /^s v 1 /m);
    assert.match(list, /^= v 0 /m);
  },
});
