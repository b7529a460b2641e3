/**
 * The runtime floor of a request: a minimal Sheepdog-protocol server that answers WRITE_OBJ with
 * one positional write plus fdatasync of the object's file, READ_OBJ with one positional read,
 * and CREATE_AND_WRITE_OBJ with the plain store's own create (core/store/plain_store.ts: O_DIRECT
 * tmp file, rename, directory fsync), through the same node:fs calls, header codec and reply
 * writer as the sheep, and nothing else (no gateway, no placement, no locks, no epochs). The sheep I/O benchmark points
 * it at the store a sheep has just written (`DIR/obj/%016lx`, the sheep stopped meanwhile is not
 * needed: phases never overlap) and drives it with the very client of the sheep phase, so
 * `sheep ÷ floor` is what sheepdog's own code costs and `floor ÷ fio` what a Deno process behind
 * loopback TCP costs on this machine (process wake-ups, thread-pool hand-offs) before any of it.
 *
 * With `--peers`, it is the floor of a gateway: each write also goes to the floor servers on
 * those ports (over one connection each, as the sheep's peer pool) and is answered once all have
 * it, so scenario B (copies 3) gets a floor too.
 *
 * Run as a process: `deno run -A bench/harness/floor_server.ts --dir DIR/obj [--peers P,P]`
 * prints `listening PORT` once it accepts connections on 127.0.0.1 and serves until SIGTERM.
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import { SheepClient } from "../../core/net/client.ts";
import { ExactReader } from "../../core/net/exact_reader.ts";
import { MessageWriter } from "../../core/net/message_writer.ts";
import { Flag, Op, Res, SD_REQ_SIZE } from "../../core/proto/constants.ts";
import { SdReq, SdRsp } from "../../core/proto/header.ts";
import { objectFileName } from "../../core/store/object_names.ts";
import { PlainStore } from "../../core/store/plain_store.ts";
import { BufferPool } from "../../core/buffer_pool.ts";
import { dirname } from "node:path";

/** Largest request payload served, and the size of the objects created (4 MiB). */
const MAX_DATA = 4 << 20;
const OBJECT_SIZE = MAX_DATA;

/** What every connection of one floor server shares. */
interface FloorState {
  dir: string;
  files: Map<bigint, fsp.FileHandle>;
  peers: SheepClient[];
  /** The store over `dir`'s parent, for creates (the sheep's own create path). */
  store: PlainStore;
  buffers: BufferPool;
}

/** One connection: requests read in order, served concurrently, replies as they complete. */
async function serveConn(conn: Deno.TcpConn, st: FloorState) {
  const { dir, files, peers } = st;
  conn.setNoDelay(true);
  const reader = new ExactReader(conn);
  const writer = new MessageWriter(conn, () => conn.close());
  const open = async (oid: bigint) => {
    let fh = files.get(oid);
    if (fh === undefined) {
      fh = await fsp.open(`${dir}/${objectFileName(oid)}`, "r+");
      files.set(oid, fh);
    }
    return fh;
  };
  const serve = async (req: SdReq, data: Uint8Array) => {
    let result: number = Res.SUCCESS;
    let out = new Uint8Array(0);
    try {
      const create = req.opcode === Op.CREATE_AND_WRITE_OBJ;
      const fh = create ? null : await open(req.obj.oid);
      const offset = Number(req.obj.offset);
      if (req.opcode === Op.WRITE_OBJ || req.opcode === Op.CREATE_AND_WRITE_OBJ) {
        // As a gateway: the same write to every peer, in parallel with the local one (the
        // outcome is caught at once: a peer's failure must not go unhandled meanwhile).
        const forwarded = Promise.all(peers.map(async (p) => {
          const r = await p.request(req.clone(), data);
          if (r.rsp.result !== Res.SUCCESS) throw new Error(`peer answered ${r.rsp.result}`);
        })).then(() => null, (err: unknown) => err);
        if (fh === null) {
          await st.store.create(req.obj.oid, offset, data, OBJECT_SIZE, { sparse: false });
        } else {
          await fh.write(data, 0, data.length, offset);
          await fh.datasync();
        }
        const failed = await forwarded;
        if (failed !== null) throw failed;
      } else if (req.opcode === Op.READ_OBJ) {
        out = new Uint8Array(req.dataLength);
        await fh!.read(out, 0, out.length, offset);
      } else {
        result = Res.INVALID_PARMS;
      }
    } catch (_err) {
      result = Res.EIO;
      out = new Uint8Array(0);
    }
    const rsp = SdRsp.replyTo(req, 0, result, out.length);
    writer.send(rsp.bytes, out);
    st.buffers.give(data);
  };
  try {
    for (;;) {
      const req = new SdReq(new Uint8Array(SD_REQ_SIZE));
      if (!(await reader.readFull(req.bytes))) return;
      const carries = (req.flags & Flag.CMD_WRITE) !== 0 ? req.dataLength : 0;
      if (carries > MAX_DATA) return;
      // Object-sized payloads in aligned pooled buffers, as the sheep reads them (O_DIRECT).
      const data = st.buffers.take(carries);
      if (carries > 0 && !(await reader.readFull(data))) return;
      void serve(req, data);
    }
  } catch (_closed) {
    // The client went away: nothing to answer.
  } finally {
    writer.stop();
    try {
      conn.close();
    } catch (_alreadyClosed) {
      // closed by the writer's error path
    }
  }
}

/**
 * Serves the object files of `dir` on 127.0.0.1 until the listener is closed. With `peers`, each
 * write also goes to every peer (floor servers themselves) and is answered once all have it: the
 * floor of a gateway with copies = peers + 1.
 */
export async function serveFloor(
  listener: Deno.TcpListener,
  dir: string,
  peers: SheepClient[] = [],
): Promise<void> {
  const files = new Map<bigint, fsp.FileHandle>();
  const buffers = new BufferPool();
  const store = await PlainStore.open(dirname(dir), { buffers });
  const st: FloorState = { dir, files, peers, store, buffers };
  try {
    for await (const conn of listener) void serveConn(conn, st);
  } finally {
    await store.close();
    for (const p of peers) p.close();
    await Promise.all([...files.values()].map((f) => f.close()));
  }
}

/** Deadline for the server process to print its port. */
const START_DEADLINE_MS = 20_000;

/** A floor server process; `stop()` ends it (SIGTERM) and waits for it. */
export interface FloorServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts this module as a process serving the object files of `objDir`, forwarding writes to
 * the floor servers on 127.0.0.1 at `peerPorts`.
 */
export async function startFloorServer(
  objDir: string,
  peerPorts: number[] = [],
): Promise<FloorServer> {
  const self = new URL(import.meta.url).pathname;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      "--config",
      config,
      self,
      "--dir",
      objDir,
      ...(peerPorts.length > 0 ? ["--peers", peerPorts.join(",")] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch (_gone) {
      // already exited
    }
    await child.status;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`floor server did not start within ${START_DEADLINE_MS} ms`)),
      START_DEADLINE_MS,
    );
  });
  try {
    let text = "";
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error("floor server exited before listening");
      text += value;
      const m = /listening (\d+)\n/.exec(text);
      if (m) {
        reader.releaseLock();
        void child.stdout.cancel().catch(() => {});
        return { port: Number(m[1]), stop };
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--dir");
  const dir = at >= 0 ? Deno.args[at + 1] : undefined;
  if (dir === undefined) {
    console.error("usage: floor_server.ts --dir OBJ_DIR [--peers PORT,PORT...]");
    Deno.exit(2);
  }
  const p = Deno.args.indexOf("--peers");
  const peerPorts = p >= 0 ? Deno.args[p + 1].split(",").map(Number) : [];
  const peers = await Promise.all(
    peerPorts.map((port) => SheepClient.connect({ host: "127.0.0.1", port })),
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  Deno.addSignalListener("SIGTERM", () => listener.close());
  console.log(`listening ${listener.addr.port}`);
  await serveFloor(listener, dir, peers);
}
