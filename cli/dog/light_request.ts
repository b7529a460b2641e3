/**
 * v1.0's send_light_req(): a header-only request whose failure is reported on stderr and turned
 * into `false` for the caller to print its own summary line.
 *
 * @module
 */

import { Res, resultText } from "../../core/proto/constants.ts";
import type { SdReq, SdRsp } from "../../core/proto/header.ts";
import type { SdNode } from "../../core/proto/node.ts";
import { ReportedError } from "./dog_error.ts";
import type { DogSession } from "./session.ts";

/**
 * Sends `req` to `node` (or the target sheep). Returns the reply header on success, undefined on
 * failure after printing why: the connect failure lines, the broken connection, or
 * "Response's result: <text>".
 */
export async function lightRequest(
  session: DogSession,
  node: SdNode | undefined,
  req: SdReq,
): Promise<SdRsp | undefined> {
  try {
    const { rsp } = node === undefined ? await session.exec(req) : await session.execOn(node, req);
    if (rsp.result !== Res.SUCCESS) {
      await session.out.error(`Response's result: ${resultText(rsp.result)}`);
      return undefined;
    }
    return rsp;
  } catch (e) {
    if (!(e instanceof ReportedError)) {
      await session.out.error(e instanceof Error ? e.message : String(e));
    }
    return undefined;
  }
}

/** lightRequest() reduced to success or failure. */
export async function sendLightReq(
  session: DogSession,
  node: SdNode | undefined,
  req: SdReq,
): Promise<boolean> {
  return (await lightRequest(session, node, req)) !== undefined;
}
