/**
 * Test double for dog's unit tests: a tiny in-process cluster that speaks the wire protocol on one
 * loopback listener per member and keeps just enough state (format, VDIs, sparse objects, replica
 * holders, attributes) for dog's commands to behave as against v1.0. Not a sheep: no epochs
 * beyond the first, no recovery, no reference counting.
 *
 * @module
 */

import { ExactReader, writeAll } from "../../core/net/exact_reader.ts";
import { SheepClient } from "../../core/net/client.ts";
import {
  ClusterFlag,
  ClusterStatus,
  Flag,
  LockState,
  LockType,
  Op,
  Res,
  SD_ATTR_OBJ_SIZE,
  SD_INODE_HEADER_SIZE,
  SD_MAX_VDI_LEN,
  SD_NR_VDIS,
  SD_REQ_SIZE,
  SD_VDI_BITMAP_SIZE,
  SD_VDI_STATE_SIZE,
} from "../../core/proto/constants.ts";
import { encodeVdiState } from "../../core/proto/vdi_state.ts";
import { SdReq, SdRsp } from "../../core/proto/header.ts";
import { encodeNodes, makeNode, type SdNode } from "../../core/proto/node.ts";
import { decodeFixedString } from "../../core/proto/strings.ts";
import { decodeInodeHeader, encodeInodeHeader, type InodeHeader } from "../../core/proto/inode.ts";
import { encodeClusterInfo } from "../../core/proto/cluster_info.ts";
import { type DegradedNode, encodeDegradedNodes } from "../../core/proto/degraded.ts";
import { encodeEpochLogRecord, epochLogRecordSize } from "../../core/proto/epoch_log.ts";
import { decodeVdiAttr } from "../../core/proto/vdi_attr.ts";
import { attrId, vidOfName, vidToAttrOid, vidToVdiOid } from "../../core/hash/oid.ts";
import { buildRing } from "../../core/placement/ring.ts";
import type { Connector, DogTarget } from "./session.ts";

/** A reply of the fake. */
interface FakeReply {
  result: number;
  data?: Uint8Array;
  fill?: (rsp: SdRsp) => void;
}

/** One request as the fake received it. */
export interface SeenRequest {
  node: number;
  opcode: number;
  req: SdReq;
  data: Uint8Array;
}

/** The fake cluster: members on 127.0.0.1:7000+i as dog sees them. */
export class FakeCluster {
  /** Members in node-list order. */
  readonly nodes: SdNode[];
  /** Every request received, in arrival order. */
  readonly seen: SeenRequest[] = [];
  /** Unix seconds used as "now" for VDI creation times. */
  clock: number;
  /** Node capacity reported by STAT_SHEEP. */
  storeSize = 78640807936n;
  logLevel = 6;
  /** Epochs STAT_CLUSTER returns (the newest with `nodes`). */
  epochCount = 1;
  /** Members of the older epochs beyond `nodes` (nodes that left since): 127.0.0.1:7100+i. */
  formerNodes = 0;
  /** The epoch put in reply headers once formatted. */
  headerEpoch = 1;
  formatted = false;
  ctime = 0n;
  copies = 3;
  copyPolicy = 0;
  flags: number = ClusterFlag.AUTO_VNODES;
  blockSizeShift = 22;
  store = "plain";
  readonly inuse = new Set<number>();
  readonly deleted = new Set<number>();
  readonly objects = new Map<bigint, Uint8Array>();
  readonly holders = new Map<bigint, Set<number>>();
  /**
   * STAT_DEGRADED's answer: null for a sheep that does not know the op (v1.0: INVALID_PARMS),
   * else the members whose recovery does not go on.
   */
  degraded: DegradedNode[] | null = null;
  /** VDI locks (USE_LOCK clusters): the lock state and the member indexes holding it. */
  readonly locks = new Map<number, { state: number; holders: number[] }>();
  /** Opcodes answered with this result instead of being handled. */
  readonly failures = new Map<number, number>();
  readonly #listeners: Deno.Listener[] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks: Promise<void>[] = [];

  constructor(nrNodes: number, clock: number) {
    this.nodes = [...Array(nrNodes).keys()].map((i) =>
      makeNode("127.0.0.1", 7000 + i, { zone: i, nrVnodes: 128, space: this.storeSize })
    );
    this.clock = clock;
  }

  /** Opens one listener per member. */
  start(): void {
    for (let i = 0; i < this.nodes.length; i++) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      this.#listeners.push(listener);
      this.#tasks.push(this.#accept(listener, i));
    }
  }

  /** Connects dog to member 127.0.0.1:7000+i; other addresses are refused. */
  readonly connect: Connector = (addr: DogTarget) => {
    const i = addr.port - 7000;
    const listener = this.#listeners[i];
    if (addr.host !== "127.0.0.1" || listener === undefined) {
      return Promise.reject(new Deno.errors.ConnectionRefused("Connection refused"));
    }
    return SheepClient.connect({
      host: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
  };

  /** Closes listeners and connections and waits for their tasks. */
  async stop(): Promise<void> {
    for (const l of this.#listeners) l.close();
    for (const c of this.#conns) c.close();
    await Promise.allSettled(this.#tasks);
  }

  async #accept(listener: Deno.Listener, node: number): Promise<void> {
    try {
      for await (const conn of listener) {
        this.#conns.add(conn);
        this.#tasks.push(this.#serve(conn, node).finally(() => this.#conns.delete(conn)));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  async #serve(conn: Deno.Conn, node: number): Promise<void> {
    const reader = new ExactReader(conn);
    try {
      while (true) {
        const hdr = new Uint8Array(SD_REQ_SIZE);
        if (!(await reader.readFull(hdr))) break;
        const req = new SdReq(hdr);
        const data = new Uint8Array(req.flags & Flag.CMD_WRITE ? req.dataLength : 0);
        if (data.length > 0 && !(await reader.readFull(data))) break;
        this.seen.push({ node, opcode: req.opcode, req, data });
        const forced = this.failures.get(req.opcode);
        const reply = forced !== undefined ? { result: forced } : this.handle(node, req, data);
        const out = reply.data ?? new Uint8Array(0);
        const rsp = SdRsp.replyTo(
          req,
          this.formatted ? this.headerEpoch : 0,
          reply.result,
          out.length,
        );
        reply.fill?.(rsp);
        await writeAll(conn, rsp.bytes);
        if (out.length > 0) await writeAll(conn, out);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource || e instanceof Deno.errors.ConnectionReset)) {
        throw e;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // objects

  /** Bytes [off, off+len) of an object, zeros past what was written. */
  readObj(oid: bigint, off: number, len: number): Uint8Array {
    const obj = this.objects.get(oid) ?? new Uint8Array(0);
    const out = new Uint8Array(len);
    if (off < obj.length) out.set(obj.subarray(off, Math.min(obj.length, off + len)));
    return out;
  }

  /** Writes into an object, growing it. */
  writeObj(oid: bigint, off: number, data: Uint8Array): void {
    let obj = this.objects.get(oid) ?? new Uint8Array(0);
    if (obj.length < off + data.length) {
      const grown = new Uint8Array(off + data.length);
      grown.set(obj);
      obj = grown;
    }
    obj.set(data, off);
    this.objects.set(oid, obj);
  }

  #create(oid: bigint, copies: number): void {
    const ring = buildRing(this.nodes);
    const placed = ring.placeIndexes(oid, Math.min(copies || this.copies, ring.nrZones));
    this.holders.set(oid, new Set(placed));
    if (!this.objects.has(oid)) this.objects.set(oid, new Uint8Array(0));
  }

  /** The header of the inode of `vid`. */
  header(vid: number): InodeHeader {
    return decodeInodeHeader(this.readObj(vidToVdiOid(vid), 0, SD_INODE_HEADER_SIZE));
  }

  #putHeader(h: InodeHeader): void {
    this.writeObj(vidToVdiOid(h.vdiId), 0, encodeInodeHeader(h));
  }

  /** data_vdi_id[0 … n) of `vid`. */
  entries(vid: number, n: number): Uint32Array {
    const bytes = this.readObj(vidToVdiOid(vid), SD_INODE_HEADER_SIZE, 4 * n);
    return new Uint32Array(bytes.buffer.slice(0));
  }

  #freeSlot(name: string): number {
    let vid = vidOfName(name) || 1;
    while (this.inuse.has(vid)) vid = (vid + 1) % SD_NR_VDIS || 1;
    return vid;
  }

  #lookup(name: string, tag: string, snapid: number): { result: number; vid: number } {
    const found = [...this.inuse].filter((v) => !this.deleted.has(v))
      .map((v) => this.header(v)).filter((h) => h.name === name);
    if (found.length === 0) return { result: Res.NO_VDI, vid: 0 };
    const hit = snapid === 0 && tag === ""
      ? found.find((h) => h.snapCtime === 0n)
      : found.find((h) => h.snapCtime !== 0n && (tag !== "" ? h.tag === tag : h.snapId === snapid));
    if (hit === undefined) {
      return { result: tag === "" && snapid === 0 ? Res.NO_VDI : Res.NO_TAG, vid: 0 };
    }
    return { result: Res.SUCCESS, vid: hit.vdiId };
  }

  /** Registers a VDI with a fresh inode (what NEW_VDI does). */
  newVdi(h: InodeHeader, entries?: Uint32Array): void {
    this.inuse.add(h.vdiId);
    this.#putHeader(h);
    if (entries !== undefined && entries.length > 0) {
      this.writeObj(vidToVdiOid(h.vdiId), SD_INODE_HEADER_SIZE, new Uint8Array(entries.buffer));
    }
    this.#create(vidToVdiOid(h.vdiId), h.nrCopies);
  }

  // -------------------------------------------------------------------------------------------
  // requests

  /** Answers one request. */
  handle(node: number, req: SdReq, data: Uint8Array): FakeReply {
    switch (req.opcode) {
      case Op.GET_NODE_LIST:
        return {
          result: Res.SUCCESS,
          data: encodeNodes(this.nodes),
          fill: (rsp) => rsp.node.nrNodes = this.nodes.length,
        };
      case Op.STAT_CLUSTER:
        return this.#statCluster(req);
      case Op.STAT_DEGRADED:
        if (this.degraded === null) return { result: Res.INVALID_PARMS };
        return {
          result: Res.SUCCESS,
          data: encodeDegradedNodes(this.degraded, req.dataLength),
        };
      case Op.MAKE_FS:
        this.formatted = true;
        this.ctime = req.cluster.ctime;
        this.copies = req.cluster.copies;
        this.copyPolicy = req.cluster.copyPolicy;
        this.flags = req.cluster.flags;
        this.blockSizeShift = req.cluster.blockSizeShift;
        this.store = decodeFixedString(data, 0, data.length);
        this.inuse.clear();
        this.deleted.clear();
        this.objects.clear();
        this.holders.clear();
        return { result: Res.SUCCESS };
      case Op.CLUSTER_INFO:
        return {
          result: Res.SUCCESS,
          data: encodeClusterInfo({
            protoVer: 0x0a,
            disableRecovery: false,
            epoch: this.formatted ? 1 : 0,
            ctime: this.ctime,
            flags: this.flags,
            nrCopies: this.copies,
            copyPolicy: this.copyPolicy,
            status: this.formatted ? ClusterStatus.OK : ClusterStatus.WAIT,
            blockSizeShift: this.blockSizeShift,
            defaultStore: this.store,
            nodes: this.nodes,
          }, true),
        };
      case Op.READ_VDIS:
      case Op.READ_DEL_VDIS: {
        const bits = new Uint8Array(SD_VDI_BITMAP_SIZE);
        for (const v of req.opcode === Op.READ_VDIS ? this.inuse : this.deleted) {
          bits[v >> 3] |= 1 << (v & 7);
        }
        return { result: Res.SUCCESS, data: bits };
      }
      case Op.STAT_SHEEP:
        return {
          result: Res.SUCCESS,
          fill: (rsp) => {
            rsp.node.storeSize = this.storeSize;
            rsp.node.storeFree = this.storeSize;
          },
        };
      case Op.NEW_VDI:
        return this.#newVdiOp(req, data);
      case Op.GET_VDI_INFO: {
        const { result, vid } = this.#lookup(
          decodeFixedString(data, 0, SD_MAX_VDI_LEN),
          data.length > SD_MAX_VDI_LEN ? decodeFixedString(data, 256, SD_MAX_VDI_LEN) : "",
          req.vdi.snapid,
        );
        return { result, fill: (rsp) => rsp.vdi.vdiId = vid };
      }
      case Op.DEL_VDI: {
        const { result, vid } = this.#lookup(
          decodeFixedString(data, 0, SD_MAX_VDI_LEN),
          decodeFixedString(data, 256, SD_MAX_VDI_LEN),
          req.vdi.snapid,
        );
        if (result !== Res.SUCCESS) return { result };
        this.deleted.add(vid);
        const h = this.header(vid);
        const n = Math.ceil(Number(h.vdiSize) / 2 ** h.blockSizeShift);
        if (this.entries(vid, n).every((e) => e === 0)) {
          this.#putHeader({ ...h, name: "", vdiSize: 0n });
        }
        return { result, fill: (rsp) => rsp.vdi.vdiId = vid };
      }
      case Op.GET_VDI_ATTR:
        return this.#vdiAttr(req, data);
      case Op.LOCK_VDI:
        return this.#lockVdi(node, req, data);
      case Op.RELEASE_VDI:
        return this.#releaseVdi(node, req, data);
      case Op.GET_VDI_COPIES:
        return { result: Res.SUCCESS, data: this.#vdiStates() };
      case Op.READ_OBJ: {
        if (!this.objects.has(req.obj.oid)) return { result: Res.NO_OBJ };
        return {
          result: Res.SUCCESS,
          data: this.readObj(req.obj.oid, req.obj.offset, req.dataLength),
        };
      }
      case Op.WRITE_OBJ:
        if (!this.objects.has(req.obj.oid)) return { result: Res.NO_OBJ };
        this.writeObj(req.obj.oid, req.obj.offset, data);
        return { result: Res.SUCCESS };
      case Op.CREATE_AND_WRITE_OBJ: {
        const oid = req.obj.oid;
        if (req.flags & Flag.CMD_COW) {
          this.objects.set(oid, (this.objects.get(req.obj.cowOid) ?? new Uint8Array(0)).slice());
        } else {
          this.objects.set(oid, new Uint8Array(0));
        }
        this.writeObj(oid, req.obj.offset, data);
        this.#create(oid, req.obj.copies);
        return { result: Res.SUCCESS };
      }
      case Op.EXIST:
        return { result: this.holders.get(req.obj.oid)?.has(node) ? Res.SUCCESS : Res.NO_OBJ };
      case Op.GET_LOGLEVEL: {
        const out = new Uint8Array(4);
        new DataView(out.buffer).setInt32(0, this.logLevel, true);
        return { result: Res.SUCCESS, data: out };
      }
      case Op.SET_LOGLEVEL:
        this.logLevel = new DataView(data.buffer, data.byteOffset, 4).getInt32(0, true);
        return { result: Res.SUCCESS };
      case Op.SHUTDOWN:
      case Op.KILL_NODE:
        return { result: Res.SUCCESS };
      case Op.GET_STORE_LIST:
        return { result: Res.SUCCESS, data: new TextEncoder().encode("plain tree\0") };
      default:
        return { result: Res.INVALID_PARMS };
    }
  }

  /**
   * As v1.0's sheep: as many of the newest epochs as fit in data_length, each record with
   * `nodesNr` node slots; BUFFER_SMALL when an epoch has more nodes than that.
   */
  #statCluster(req: SdReq): FakeReply {
    if (!this.formatted) return { result: Res.WAIT_FOR_FORMAT };
    const slots = req.cluster.nodesNr;
    const size = epochLogRecordSize(slots);
    const count = Math.min(Math.floor(req.dataLength / size), this.epochCount);
    const former = [...Array(this.formerNodes).keys()].map((i) =>
      makeNode("127.0.0.1", 7100 + i, { zone: 100 + i, nrVnodes: 128, space: this.storeSize })
    );
    const out = new Uint8Array(size * count);
    for (let i = 0; i < count; i++) {
      const epoch = this.epochCount - i;
      const nodes = i === 0 ? this.nodes : [...this.nodes, ...former];
      if (nodes.length > slots) return { result: Res.BUFFER_SMALL };
      out.set(
        encodeEpochLogRecord({
          ctime: this.ctime,
          time: (this.ctime >> 32n) + BigInt(epoch - 1),
          epoch,
          nrNodes: nodes.length,
          disableRecovery: false,
          nrCopies: this.copies,
          copyPolicy: this.copyPolicy,
          flags: this.flags,
          drvName: this.store,
          nodes,
        }, slots),
        i * size,
      );
    }
    return { result: Res.SUCCESS, data: out };
  }

  #newVdiOp(req: SdReq, data: Uint8Array): FakeReply {
    if (data.length !== SD_MAX_VDI_LEN) return { result: Res.INVALID_PARMS };
    const name = decodeFixedString(data, 0, SD_MAX_VDI_LEN);
    const now = BigInt(this.clock) << 32n;
    const base = req.vdi.baseVdiId;
    let h: InodeHeader;
    let entries: Uint32Array | undefined;
    if (req.vdi.snapid !== 0) {
      const b = this.header(base);
      this.#putHeader({ ...b, snapCtime: now });
      const vid = this.#freeSlot(name);
      entries = this.entries(base, Math.ceil(Number(b.vdiSize) / 2 ** b.blockSizeShift));
      h = {
        ...b,
        tag: "",
        snapCtime: 0n,
        createTime: now,
        snapId: b.snapId + 1,
        vdiId: vid,
        parentVdiId: base,
      };
    } else {
      if (this.#lookup(name, "", 0).result === Res.SUCCESS) return { result: Res.VDI_EXIST };
      const vid = this.#freeSlot(name);
      h = {
        name,
        tag: "",
        createTime: now,
        snapCtime: 0n,
        vmClockNsec: 0n,
        vdiSize: req.vdi.vdiSize,
        vmStateSize: 0n,
        copyPolicy: req.vdi.copyPolicy,
        storePolicy: req.vdi.storePolicy,
        nrCopies: req.vdi.copies || this.copies,
        blockSizeShift: req.vdi.blockSizeShift || this.blockSizeShift,
        snapId: 1,
        vdiId: vid,
        parentVdiId: base,
        btreeCounter: 0,
      };
      if (base !== 0) {
        const b = this.header(base);
        entries = this.entries(base, Math.ceil(Number(b.vdiSize) / 2 ** b.blockSizeShift));
      }
    }
    this.newVdi(h, entries);
    return {
      result: Res.SUCCESS,
      fill: (rsp) => {
        rsp.vdi.vdiId = h.vdiId;
        rsp.vdi.copies = h.nrCopies;
      },
    };
  }

  /** As our sheep: a normal lock is exclusive, a shared one collects members. */
  #lockVdi(node: number, req: SdReq, data: Uint8Array): FakeReply {
    const { result, vid } = this.#lookup(
      decodeFixedString(data, 0, SD_MAX_VDI_LEN),
      data.length > SD_MAX_VDI_LEN ? decodeFixedString(data, 256, SD_MAX_VDI_LEN) : "",
      req.vdi.snapid,
    );
    if (result !== Res.SUCCESS) return { result };
    const fill = (rsp: SdRsp) => rsp.vdi.vdiId = vid;
    if (!(this.flags & ClusterFlag.USE_LOCK)) return { result, fill };
    const have = this.locks.get(vid);
    if (req.vdi.type === LockType.SHARED) {
      if (have?.state === LockState.LOCKED) return { result: Res.VDI_LOCKED };
      const holders = have?.holders ?? [];
      if (!holders.includes(node)) holders.push(node);
      this.locks.set(vid, { state: LockState.SHARED, holders });
      return { result, fill };
    }
    if (have) return { result: Res.VDI_LOCKED };
    this.locks.set(vid, { state: LockState.LOCKED, holders: [node] });
    return { result, fill };
  }

  /** As our sheep: a release without a payload is forced; otherwise only the holder's goes. */
  #releaseVdi(node: number, req: SdReq, data: Uint8Array): FakeReply {
    if (!(this.flags & ClusterFlag.USE_LOCK)) return { result: Res.SUCCESS };
    const vid = req.vdi.baseVdiId;
    const have = this.locks.get(vid);
    if (!have) return { result: Res.VDI_NOT_LOCKED };
    if (data.length === 0 && req.vdi.type === LockType.NORMAL) {
      this.locks.delete(vid);
      return { result: Res.SUCCESS };
    }
    if (!have.holders.includes(node)) return { result: Res.VDI_NOT_LOCKED };
    have.holders = have.holders.filter((h) => h !== node);
    if (have.holders.length === 0) this.locks.delete(vid);
    return { result: Res.SUCCESS };
  }

  /** GET_VDI_COPIES: one vdi_state per VDI in use. */
  #vdiStates(): Uint8Array {
    const vids = [...this.inuse].sort((a, b) => a - b);
    const out = new Uint8Array(vids.length * SD_VDI_STATE_SIZE);
    vids.forEach((vid, i) => {
      const h = this.header(vid);
      const lock = this.locks.get(vid);
      const nid = (n: number) => this.nodes[n].nid;
      encodeVdiState(
        {
          vid,
          nrCopies: h.nrCopies,
          snapshot: h.snapCtime !== 0n,
          deleted: this.deleted.has(vid),
          copyPolicy: h.copyPolicy,
          blockSizeShift: h.blockSizeShift,
          parentVid: h.parentVdiId,
          lockState: lock?.state ?? LockState.UNLOCKED,
          lockOwner: lock?.state === LockState.LOCKED ? nid(lock.holders[0]) : null,
          participants: lock?.state === LockState.SHARED
            ? lock.holders.map((n) => ({ state: 0, nid: nid(n) }))
            : [],
        },
        out,
        i * SD_VDI_STATE_SIZE,
      );
    });
    return out;
  }

  #vdiAttr(req: SdReq, data: Uint8Array): FakeReply {
    const a = decodeVdiAttr(data);
    if (this.#lookup(a.name, a.tag, a.snapId).result !== Res.SUCCESS) return { result: Res.NO_VDI };
    const nameVid = vidOfName(a.name);
    let id = attrId(a.name, a.tag, a.snapId, a.key);
    while (true) {
      const oid = vidToAttrOid(nameVid, id);
      const obj = this.objects.get(oid);
      const fill = (rsp: SdRsp) => {
        rsp.vdi.vdiId = nameVid;
        rsp.vdi.attrId = id;
        rsp.vdi.copies = this.copies;
      };
      if (obj === undefined || obj[0] === 0) {
        if (!(req.flags & Flag.CMD_CREAT)) return { result: Res.NO_OBJ };
        this.objects.set(oid, data.slice(0, SD_ATTR_OBJ_SIZE));
        this.#create(oid, this.copies);
        return { result: Res.SUCCESS, fill };
      }
      const have = decodeVdiAttr(this.readObj(oid, 0, SD_ATTR_OBJ_SIZE));
      if (
        have.name === a.name && have.tag === a.tag && have.snapId === a.snapId && have.key === a.key
      ) {
        if (req.flags & Flag.CMD_EXCL) return { result: Res.VDI_EXIST };
        if (req.flags & Flag.CMD_DEL) this.writeObj(oid, 0, new Uint8Array(1));
        else if (req.flags & Flag.CMD_CREAT) this.objects.set(oid, data.slice());
        return { result: Res.SUCCESS, fill };
      }
      id = (id + 1) >>> 0;
    }
  }
}
