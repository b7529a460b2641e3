/**
 * `sheep --nbd ADDR:PORT`: the daemon serves every VDI over NBD. The NBD server is one more client
 * of the sheep's own request handler, called in process: NBD commands become the same
 * READ_OBJ / WRITE_OBJ / CREATE_AND_WRITE_OBJ requests that QEMU's old sheepdog driver sent, with
 * the same checks, gateway and replication, and no extra network hop.
 *
 * @module
 */

import { BufferPool } from "../buffer_pool.ts";
import type { ConnectionInfo, RequestHandler } from "../net/server.ts";
import type { SheepRequest } from "../vdi_client/volume.ts";
import { type NbdListenSpec, NbdServer, type NbdServerEvents } from "./server.ts";
import { VdiExports } from "./vdi_exports.ts";

/** What the NBD export logs. */
export interface NbdLog {
  info(msg: string, props?: Record<string, unknown>): void;
  warn(msg: string, props?: Record<string, unknown>): void;
  error(msg: string, props?: Record<string, unknown>): void;
}

/** A request function over the daemon's handler, as if a local client had sent the request. */
export function inProcessRequest(handler: RequestHandler): SheepRequest {
  const conn: ConnectionInfo = {
    transport: "unix",
    remote: "nbd",
    signal: new AbortController().signal,
  };
  return async (req, data) => {
    const reply = await handler(req, data, conn);
    return { rsp: reply.rsp, data: reply.data ?? new Uint8Array(0) };
  };
}

/**
 * Starts the NBD server of a sheep; throws when the address cannot be bound. `buffers` is the
 * daemon's pool (core/buffer_pool.ts), the one its store reads into: the volumes and the NBD
 * server give read buffers back to it, and the server takes write payloads from it.
 */
export function startNbdExport(
  spec: NbdListenSpec,
  handler: RequestHandler,
  log: NbdLog,
  buffers: BufferPool = new BufferPool(),
): NbdServer {
  const exports = new VdiExports(inProcessRequest(handler), {
    buffers,
    onIoError: (name, err) => log.warn("NBD command failed", { export: name, error: err.message }),
    onUnlockError: (name, err) =>
      log.error("cannot release the VDI lock of an NBD connection", {
        export: name,
        error: String(err),
      }),
  });
  const events: NbdServerEvents = {
    onProtocolError: (remote, message) =>
      log.warn("dropping an NBD connection", { remote, reason: message }),
    onCommandError: (remote, err) =>
      log.error("NBD command failed unexpectedly", { remote, error: String(err) }),
  };
  let server: NbdServer;
  try {
    server = NbdServer.listen(spec, exports, events, { buffers });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot serve NBD on ${spec.hostname}:${spec.port}: ${why}`, { cause: e });
  }
  log.info("serving NBD", { addr: `${spec.hostname}:${server.port}` });
  return server;
}
