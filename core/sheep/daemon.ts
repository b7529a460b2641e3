/**
 * Runs a sheep as a process: takes the directory lock, opens the store and the log, joins the
 * cluster, serves TCP and the UNIX socket, and stops cleanly on SIGTERM/SIGINT (in-flight requests
 * finish, files are closed, exit 0). All the I/O edges of the daemon live here.
 *
 * @module
 */

import { BufferPool } from "../buffer_pool.ts";
import { PlainStore } from "../store/plain_store.ts";
import { acquireDirLock } from "../store/dir_lock.ts";
import { removeIfPresent } from "../store/durable_files.ts";
import { makeNode } from "../proto/node.ts";
import { SD_DEFAULT_VNODES } from "../proto/constants.ts";
import { SheepServer } from "../net/server.ts";
import { tcpPeerConnect } from "../net/peer_pool.ts";
import { systemTimers } from "../cluster/deadline.ts";
import { createDriver } from "../cluster/create_driver.ts";
import type { SheepConfigOptions } from "../../cli/sheep.ts";
import { openDaemonLog } from "./log.ts";
import { dirMetaFiles } from "./meta_files.ts";
import { Sheep } from "./sheep.ts";
import type { NbdServer } from "../nbd/server.ts";
import { startNbdExport } from "../nbd/sheep_export.ts";

/** Runs the daemon until it stops; resolves with the process exit code. */
export async function runDaemon(opts: SheepConfigOptions): Promise<number> {
  await Deno.mkdir(opts.dir, { recursive: true });
  const lock = await acquireDirLock(opts.dir);
  const log = await openDaemonLog(opts.log);
  let exitCode: number | null = null;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => resolveExit = r);
  let server: SheepServer | null = null;
  let nbd: NbdServer | null = null;
  const stopListening = () => {
    server?.stopListening();
    nbd?.stopListening();
  };
  // One pool for the buffers that pass between the store, the server and the NBD export: the
  // store reads objects into it, and the servers give the buffers back once the reply is written.
  const buffers = new BufferPool();
  const store = await PlainStore.open(opts.dir, { nosync: opts.nosync, buffers });
  const driver = await createDriver(opts.cluster.driver, opts.cluster.option);
  const addr = opts.myAddr ??
    (opts.bindAddr !== "0.0.0.0" ? opts.bindAddr : addrText(driver.localAddr()));
  const space = BigInt((await store.stat()).free);
  const node = makeNode(addr, opts.port, {
    nrVnodes: opts.gateway ? 0 : (opts.vnodes ?? SD_DEFAULT_VNODES),
    zone: opts.zone ?? undefined,
    space,
  });
  const sheep = new Sheep(
    {
      node,
      space,
      fixedVnodes: opts.vnodes !== null,
      nosync: opts.nosync,
      recoveryThrottle: opts.recovery,
    },
    {
      store,
      meta: dirMetaFiles(opts.dir),
      driver,
      log,
      now: () => Date.now(),
      timers: systemTimers,
      connectPeer: tcpPeerConnect,
      random: Math.random,
      exit: (code, reason) => {
        if (exitCode !== null) return;
        exitCode = code;
        log.notice("exiting", { code, reason });
        resolveExit(code);
      },
      stopListening,
    },
  );
  const onSignal = () => {
    log.notice("signal received: stopping");
    if (exitCode === null) {
      exitCode = 0;
      resolveExit(0);
    }
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    await sheep.load();
    log.info("starting", {
      dir: opts.dir,
      port: opts.port,
      driver: opts.cluster.driver,
      epoch: sheep.cinfo.epoch,
    });
    await sheep.join();
    const sockPath = `${opts.dir}/sock`;
    await removeIfPresent(sockPath);
    server = SheepServer.listen(
      { tcp: { hostname: opts.bindAddr, port: opts.port }, unixPath: sockPath },
      (req, data, conn) => sheep.handle(req, data, conn),
      {
        onProtocolError: (remote, message) =>
          log.warn("dropping a connection", { remote, reason: message }),
        onHandlerError: (remote, err) =>
          log.error("request handler failed", { remote, error: String(err) }),
      },
      { buffers },
    );
    // sheep --nbd: every VDI over NBD, through this sheep's own request handler (off by default).
    if (opts.nbd) {
      nbd = startNbdExport(
        { hostname: opts.nbd.host, port: opts.nbd.port },
        (req, data, conn) => sheep.handle(req, data, conn),
        log,
        buffers,
      );
    }
    if (opts.pidfile) await Deno.writeTextFile(opts.pidfile, `${Deno.pid}\n`);
    log.info("serving", { addr: `${addr}:${opts.port}`, epoch: sheep.cinfo.epoch });
    const code = await exited;
    // NBD first: it is a client of the sheep, whose requests finish before the sheep closes.
    await nbd?.close(10_000);
    server.stopListening();
    await server.close(10_000);
    await sheep.close();
    return code;
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    if (opts.pidfile) await removeIfPresent(opts.pidfile);
    log.close();
    lock.release();
  }
}

function addrText(addr: Uint8Array): string {
  return `${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
}
