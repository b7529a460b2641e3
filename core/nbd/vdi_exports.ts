/**
 * Every VDI of the cluster as an NBD export, through any Sheepdog request function (the daemon's
 * own request handler in process, or a client connection).
 *
 * Export names: `NAME` is the working VDI (writable); `NAME:TAG` and `NAME:ID` a snapshot
 * (read-only). A name is first looked up whole, so a working VDI whose name holds a colon stays
 * reachable; the text after the last colon is a snapshot id when it is all digits, else a tag.
 * NBD_OPT_LIST lists working VDIs by name and snapshots as `NAME:ID` (their tag in the
 * description).
 *
 * Connections to the same VDI share one VdiVolume (its per-object locks and its copy of the data
 * index), so several connections writing one export (nbdcopy uses four when the server offers
 * multi-conn) never race on an object's creation. A working VDI's volume is shared by name and
 * follows it when it is snapshotted; a snapshot's by vid. The volume is dropped when its last
 * connection ends, so the next one reads the inode afresh.
 *
 * @module
 */

import { Op, Res, resultText, SD_PROTO_VER, SD_SHEEP_PROTO_VER } from "../proto/constants.ts";
import { SD_VDI_BITMAP_SIZE } from "../proto/constants.ts";
import { SdReq } from "../proto/header.ts";
import { decodeInodeHeader, type InodeHeader, isSnapshot } from "../proto/inode.ts";
import { SdError } from "../proto/sd_error.ts";
import { vidToVdiOid } from "../hash/oid.ts";
import {
  loadVdi,
  lookupVdiId,
  type SheepRequest,
  type SnapshotSelector,
  VdiVolume,
  WORKING_VDI,
} from "../vdi_client/volume.ts";
import {
  NbdCommandError,
  type NbdExport,
  type NbdExportEntry,
  type NbdExportProvider,
} from "./server.ts";
import { Errno } from "./protocol.ts";

/** Bytes of an inode read to list it (name … btree_counter). */
const LIST_HEADER_READ = 572;
/** Inode reads in flight while listing. */
const LIST_WINDOW = 16;
/** Longest VDI name or tag (a 256-byte field with its NUL). */
const MAX_NAME_BYTES = 255;

/** One way to read an export name: a VDI name and a snapshot selector. */
export interface ExportNameReading {
  name: string;
  snap: SnapshotSelector;
}

/**
 * The readings of an export name, in the order they are tried: the whole name as a working VDI,
 * then (when it holds a colon) NAME:ID or NAME:TAG split at the last colon.
 */
export function exportNameReadings(exportName: string): ExportNameReading[] {
  const out: ExportNameReading[] = [];
  const fits = (s: string) => s !== "" && new TextEncoder().encode(s).length <= MAX_NAME_BYTES;
  if (fits(exportName)) out.push({ name: exportName, snap: WORKING_VDI });
  const colon = exportName.lastIndexOf(":");
  if (colon > 0 && colon < exportName.length - 1) {
    const name = exportName.slice(0, colon);
    const sel = exportName.slice(colon + 1);
    if (fits(name) && fits(sel)) {
      if (/^\d+$/.test(sel)) {
        const id = Number(sel);
        if (id > 0 && id <= 0xffffffff) out.push({ name, snap: { id, tag: "" } });
      } else {
        out.push({ name, snap: { id: 0, tag: sel } });
      }
    }
  }
  return out;
}

/** The errno an NBD client gets for a failed VDI operation. */
export function errnoOfResult(result: number): number {
  switch (result) {
    case Res.INVALID_PARMS:
      return Errno.EINVAL;
    case Res.READONLY:
    case Res.VDI_LOCKED:
      return Errno.EPERM;
    case Res.NO_SPACE:
    case Res.FULL_VDI:
      return Errno.ENOSPC;
    case Res.NO_MEM:
      return Errno.ENOMEM;
    case Res.SHUTDOWN:
    case Res.KILLED:
    case Res.HALT:
      return Errno.ESHUTDOWN;
    default:
      return Errno.EIO;
  }
}

/** Options of {@linkcode VdiExports}. */
export interface VdiExportsOptions {
  /** Called for a command that failed in the store (the client gets an errno). */
  onIoError?(exportName: string, err: SdError): void;
}

interface SharedVolume {
  volume: Promise<VdiVolume>;
  refs: number;
}

/** The VDIs as NBD exports. */
export class VdiExports implements NbdExportProvider {
  readonly #request: SheepRequest;
  readonly #opts: VdiExportsOptions;
  readonly #volumes = new Map<string, SharedVolume>();

  constructor(request: SheepRequest, opts: VdiExportsOptions = {}) {
    this.#request = request;
    this.#opts = opts;
  }

  /** Volumes currently open (shared by their connections). */
  get openVolumes(): number {
    return this.#volumes.size;
  }

  async list(): Promise<NbdExportEntry[]> {
    const inuse = await this.#bitmap(Op.READ_VDIS, SD_PROTO_VER);
    const deleted = await this.#bitmap(Op.READ_DEL_VDIS, SD_SHEEP_PROTO_VER);
    const vids: number[] = [];
    for (let byte = 0; byte < inuse.length; byte++) {
      const live = inuse[byte] & ~deleted[byte];
      if (live === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (live & (1 << bit)) vids.push(byte * 8 + bit);
    }
    const headers: (InodeHeader | null)[] = new Array(vids.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < vids.length) {
        const i = next++;
        headers[i] = await this.#header(vids[i]);
      }
    };
    await Promise.all(Array.from({ length: LIST_WINDOW }, worker));
    const out: NbdExportEntry[] = [];
    for (const h of headers) {
      if (h === null || h.name === "") continue;
      if (isSnapshot(h)) {
        out.push({
          name: `${h.name}:${h.snapId}`,
          description: h.tag ? `snapshot '${h.tag}' of ${h.name}` : `snapshot of ${h.name}`,
        });
      } else {
        out.push({ name: h.name, description: `VDI ${h.name}, ${h.vdiSize} bytes` });
      }
    }
    return out;
  }

  async open(exportName: string): Promise<NbdExport | null> {
    for (const reading of exportNameReadings(exportName)) {
      let vid: number;
      try {
        vid = await lookupVdiId(this.#request, reading.name, reading.snap);
      } catch (e) {
        if (e instanceof SdError && (e.result === Res.NO_VDI || e.result === Res.NO_TAG)) continue;
        throw e;
      }
      const working = reading.snap.id === 0 && reading.snap.tag === "";
      const key = working ? `working:${reading.name}` : `snapshot:${vid}`;
      const shared = await this.#acquire(key, vid, reading);
      const volume = await shared.volume;
      return new VdiExport(exportName, volume, () => this.#drop(key, shared), this.#opts);
    }
    return null;
  }

  async #acquire(key: string, vid: number, reading: ExportNameReading): Promise<SharedVolume> {
    for (;;) {
      let shared = this.#volumes.get(key);
      if (shared === undefined) {
        const working = reading.snap.id === 0 && reading.snap.tag === "";
        const volume = loadVdi(this.#request, vid).then((vdi) =>
          VdiVolume.fromLoaded(this.#request, vdi, { name: working ? reading.name : undefined })
        );
        shared = { volume, refs: 0 };
        this.#volumes.set(key, shared);
      }
      shared.refs++;
      let v: VdiVolume;
      try {
        v = await shared.volume;
        // The working VDI may have been snapshotted since the volume last wrote.
        if (v.vid !== vid) await v.follow();
      } catch (e) {
        this.#drop(key, shared);
        throw e;
      }
      if (v.vid === vid) return shared;
      // The name now leads to another VDI (deleted and created again): a volume of its own.
      this.#drop(key, shared);
      if (this.#volumes.get(key) === shared) this.#volumes.delete(key);
    }
  }

  #drop(key: string, shared: SharedVolume): void {
    shared.refs--;
    if (shared.refs === 0 && this.#volumes.get(key) === shared) this.#volumes.delete(key);
  }

  async #bitmap(opcode: number, protoVer: number): Promise<Uint8Array> {
    const req = SdReq.of(opcode, protoVer, { dataLength: SD_VDI_BITMAP_SIZE });
    const { rsp, data } = await this.#request(req);
    if (rsp.result !== Res.SUCCESS) {
      throw new SdError(rsp.result, `cannot read the VDI bitmap: ${resultText(rsp.result)}`);
    }
    const out = new Uint8Array(SD_VDI_BITMAP_SIZE);
    out.set(data.subarray(0, SD_VDI_BITMAP_SIZE));
    return out;
  }

  /** The header of `vid`'s inode, or null when it cannot be read (listed VDIs skip it). */
  async #header(vid: number): Promise<InodeHeader | null> {
    const req = SdReq.of(Op.READ_OBJ, SD_PROTO_VER, { dataLength: LIST_HEADER_READ });
    req.obj.oid = vidToVdiOid(vid);
    const { rsp, data } = await this.#request(req);
    if (rsp.result !== Res.SUCCESS || data.length < LIST_HEADER_READ) return null;
    return decodeInodeHeader(data);
  }
}

/** One connection's view of a shared volume. */
class VdiExport implements NbdExport {
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  readonly preferredBlockSize = 4096;
  readonly #name: string;
  readonly #volume: VdiVolume;
  readonly #release: () => void;
  readonly #opts: VdiExportsOptions;
  #closed = false;

  constructor(name: string, volume: VdiVolume, release: () => void, opts: VdiExportsOptions) {
    this.#name = name;
    this.#volume = volume;
    this.#release = release;
    this.#opts = opts;
    this.size = volume.size;
    this.readOnly = volume.readOnly;
    const h = volume.header;
    this.description = isSnapshot(h)
      ? `snapshot ${h.snapId}${h.tag ? ` '${h.tag}'` : ""} of VDI ${h.name}`
      : `VDI ${h.name}`;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.#run(() => this.#volume.read(offset, length));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#run(() => this.#volume.write(offset, data));
  }

  zero(offset: number, length: number, unmap: boolean): Promise<void> {
    return this.#run(() => this.#volume.zero(offset, length, { unmap }));
  }

  flush(): Promise<void> {
    return this.#run(() => this.#volume.flush());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (!(e instanceof SdError)) throw e;
      this.#opts.onIoError?.(this.#name, e);
      throw new NbdCommandError(errnoOfResult(e.result), e.message, { cause: e });
    }
  }
}
