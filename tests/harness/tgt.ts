/**
 * tgt (Debian `tgt`): an independent client of the Sheepdog protocol. tgtd opens a VDI through its
 * sheepdog backing store and exports it as an iSCSI LUN that qemu-img, qemu-io and the libiscsi
 * tools reach at `iscsi://127.0.0.1:PORT/IQN/1`.
 *
 * Each tgtd here is private: its own control socket (TGT_IPC_SOCKET in a scratch directory) and a
 * free iSCSI portal port on 127.0.0.1. tgtd ignores SIGTERM while it has targets, so stop() deletes
 * the targets and the system through tgtadm first, then kills it by pid if it is still there.
 *
 * @module
 */

import { freePort } from "./ports.ts";
import { ManagedProcess, run, type RunResult, sleep, withDeadline } from "./process.ts";
import { type TempDir, tempDir } from "./tempdir.ts";

const TGTADM_DEADLINE_MS = 20_000;

/** Options of {@linkcode startTgtd}. */
export interface TgtdOptions {
  /** iSCSI portal port on 127.0.0.1; default a free one. */
  portalPort?: number;
  /** Deadline for tgtd to answer tgtadm; default 15 s. */
  deadlineMs?: number;
}

/** A private tgtd. */
export class Tgtd {
  readonly process: ManagedProcess;
  readonly portalPort: number;
  /** `127.0.0.1:PORT` */
  readonly portal: string;
  /** The TGT_IPC_SOCKET value shared by tgtd and tgtadm. */
  readonly ipcSocket: string;
  readonly #dir: TempDir;
  readonly #tids = new Set<number>();
  #stopped = false;

  constructor(process: ManagedProcess, portalPort: number, ipcSocket: string, dir: TempDir) {
    this.process = process;
    this.portalPort = portalPort;
    this.portal = `127.0.0.1:${portalPort}`;
    this.ipcSocket = ipcSocket;
    this.#dir = dir;
  }

  get pid(): number {
    return this.process.pid;
  }

  logs(): string {
    return this.process.logs();
  }

  /** Runs tgtadm against this tgtd (never throws for a failing tgtadm). */
  tgtadm(args: string[], deadlineMs = TGTADM_DEADLINE_MS): Promise<RunResult> {
    return run("tgtadm", args, { env: { TGT_IPC_SOCKET: this.ipcSocket }, deadlineMs });
  }

  /** Runs tgtadm and throws with its output unless it exits 0. */
  async tgtadmOk(args: string[], deadlineMs = TGTADM_DEADLINE_MS): Promise<RunResult> {
    const r = await this.tgtadm(args, deadlineMs);
    if (!r.success) {
      throw new Error(
        `tgtadm ${args.join(" ")} ${r.timedOut ? "timed out" : `exited ${r.code}`}: ` +
          `${r.stderrText.trim()} ${r.stdoutText.trim()}\n--- tgtd output ---\n${this.process.logTail()}`,
      );
    }
    return r;
  }

  /** Creates target `tid` named `iqn` (remembered, so stop() deletes it). */
  async newTarget(tid: number, iqn: string): Promise<void> {
    await this.tgtadmOk([
      "--lld",
      "iscsi",
      "--mode",
      "target",
      "--op",
      "new",
      "--tid",
      String(tid),
      "--targetname",
      iqn,
    ]);
    this.#tids.add(tid);
  }

  /** Lets every initiator in (`--initiator-address ALL`). */
  async bindAll(tid: number): Promise<void> {
    await this.tgtadmOk([
      "--lld",
      "iscsi",
      "--mode",
      "target",
      "--op",
      "bind",
      "--tid",
      String(tid),
      "--initiator-address",
      "ALL",
    ]);
  }

  /** Adds LUN `lun` of target `tid` backed by sheepdog (`tcp:…:VDI` or `unix:…:VDI`). */
  async newSheepdogLun(tid: number, lun: number, backingStore: string): Promise<void> {
    await this.tgtadmOk([
      "--lld",
      "iscsi",
      "--mode",
      "logicalunit",
      "--op",
      "new",
      "--tid",
      String(tid),
      "--lun",
      String(lun),
      "--bstype",
      "sheepdog",
      "--backing-store",
      backingStore,
    ]);
  }

  /**
   * Deletes its targets and the system through tgtadm, waits up to `deadlineMs` for tgtd to exit,
   * then SIGKILLs it by pid; removes its scratch directory. Idempotent.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      if (this.process.running) {
        for (const tid of this.#tids) {
          await this.tgtadm(
            [
              "--lld",
              "iscsi",
              "--mode",
              "target",
              "--op",
              "delete",
              "--force",
              "--tid",
              String(tid),
            ],
            5_000,
          );
        }
        await this.tgtadm(["--mode", "system", "--op", "delete"], 5_000);
        const r = await withDeadline(this.process.exited, deadlineMs);
        if (!r.ok) this.process.signal("SIGKILL");
      }
      await this.process.stop(deadlineMs);
    } finally {
      await this.#dir.cleanup();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts a private `tgtd -f` and waits until tgtadm can talk to it. No targets yet. */
export async function startTgtd(opts: TgtdOptions = {}): Promise<Tgtd> {
  const dir = await tempDir("tgt");
  const ipcSocket = `${dir.path}/socket.0`;
  const portalPort = opts.portalPort ?? freePort();
  let proc: ManagedProcess;
  try {
    proc = new ManagedProcess(["tgtd", "-f", "--iscsi", `portal=127.0.0.1:${portalPort}`], {
      env: { TGT_IPC_SOCKET: ipcSocket },
      logFile: `${dir.path}/tgtd.log`,
    });
  } catch (e) {
    await dir.cleanup();
    throw e;
  }
  const tgtd = new Tgtd(proc, portalPort, ipcSocket, dir);
  const deadlineMs = opts.deadlineMs ?? 15_000;
  const end = Date.now() + deadlineMs;
  try {
    for (;;) {
      if (!proc.running) {
        throw new Error(`tgtd exited (${proc.status!.code}) at start:\n${proc.logTail()}`);
      }
      const r = await tgtd.tgtadm(["--mode", "system", "--op", "show"], 5_000);
      if (r.success) return tgtd;
      if (Date.now() >= end) {
        throw new Error(`tgtd not answering tgtadm after ${deadlineMs} ms:\n${proc.logTail()}`);
      }
      await sleep(50);
    }
  } catch (e) {
    await tgtd.stop();
    throw e;
  }
}

/** Options of {@linkcode startTgt}: exactly one of sheepPort / sheepSocketPath. */
export interface TgtOptions {
  /** TCP port of the sheep (must be below 10000: tgt keeps only four digits). */
  sheepPort?: number;
  /** The sheep's UNIX socket, `<store dir>/sock`. */
  sheepSocketPath?: string;
  /** VDI name. */
  vdi: string;
  /** Snapshot tag or id: appended as `:TAG` to the backing store. */
  snapshot?: string | number;
  /** Target name; default `iqn.2026-01.test.sheepdog:<vdi>`. */
  iqn?: string;
  portalPort?: number;
  deadlineMs?: number;
}

/** A tgtd exporting one VDI as LUN 1 of target 1. */
export interface TgtExport {
  iqn: string;
  /** `127.0.0.1:PORT` */
  portal: string;
  portalPort: number;
  /** `iscsi://127.0.0.1:PORT/IQN/1` for qemu-img, qemu-io, iscsi-inq… */
  url: string;
  tgtd: Tgtd;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The `--backing-store` value for a sheepdog LUN. */
export function sheepdogBackingStore(opts: TgtOptions): string {
  const suffix = opts.snapshot === undefined ? "" : `:${opts.snapshot}`;
  if ((opts.sheepPort === undefined) === (opts.sheepSocketPath === undefined)) {
    throw new Error("startTgt: give exactly one of sheepPort and sheepSocketPath");
  }
  if (opts.sheepPort !== undefined) {
    if (opts.sheepPort >= 10_000) {
      throw new Error(
        `startTgt: sheep port ${opts.sheepPort} has five digits and tgt keeps four; ` +
          `use freePortBelow(10000) or sheepSocketPath`,
      );
    }
    return `tcp:127.0.0.1:${opts.sheepPort}:${opts.vdi}${suffix}`;
  }
  return `unix:${opts.sheepSocketPath}:${opts.vdi}${suffix}`;
}

/**
 * Starts a private tgtd that exports `vdi` of a running sheep as LUN 1 of target 1 (bound to every
 * initiator). Stop it with `stop()` in a finally.
 */
export async function startTgt(opts: TgtOptions): Promise<TgtExport> {
  const backing = sheepdogBackingStore(opts);
  const iqn = opts.iqn ??
    `iqn.2026-01.test.sheepdog:${opts.vdi.toLowerCase().replace(/[^a-z0-9.-]/g, "-")}`;
  const tgtd = await startTgtd({ portalPort: opts.portalPort, deadlineMs: opts.deadlineMs });
  try {
    await tgtd.newTarget(1, iqn);
    await tgtd.newSheepdogLun(1, 1, backing);
    await tgtd.bindAll(1);
  } catch (e) {
    await tgtd.stop();
    throw e;
  }
  const stop = () => tgtd.stop();
  return {
    iqn,
    portal: tgtd.portal,
    portalPort: tgtd.portalPort,
    url: `iscsi://${tgtd.portal}/${iqn}/1`,
    tgtd,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
