/**
 * The 48-byte request (`sd_req`) and response (`sd_rsp`) headers. Like the C structs they wrap one
 * buffer and expose the union variants as views over the same bytes, so a header read off the wire
 * can be interpreted as whichever variant its opcode implies without copying. Everything is
 * little-endian (the protocol is host order and every deployment is x86).
 *
 * @module
 */

import { SD_REQ_SIZE, SD_RSP_SIZE } from "./constants.ts";
import { assert } from "../assert.ts";

/** Common fields at offsets 0-15 of both headers. */
class Common {
  protected readonly view: DataView;
  /** The raw 48 header bytes. */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    assert(bytes.length === 48, `header must be 48 bytes, got ${bytes.length}`);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, 48);
  }

  get protoVer(): number {
    return this.view.getUint8(0);
  }
  set protoVer(v: number) {
    this.view.setUint8(0, v);
  }
  get opcode(): number {
    return this.view.getUint8(1);
  }
  set opcode(v: number) {
    this.view.setUint8(1, v);
  }
  get flags(): number {
    return this.view.getUint16(2, true);
  }
  set flags(v: number) {
    this.view.setUint16(2, v, true);
  }
  get epoch(): number {
    return this.view.getUint32(4, true);
  }
  set epoch(v: number) {
    this.view.setUint32(4, v >>> 0, true);
  }
  get id(): number {
    return this.view.getUint32(8, true);
  }
  set id(v: number) {
    this.view.setUint32(8, v >>> 0, true);
  }
  get dataLength(): number {
    return this.view.getUint32(12, true);
  }
  set dataLength(v: number) {
    this.view.setUint32(12, v >>> 0, true);
  }
}

/** Field accessors over a DataView at fixed absolute offsets; the base of every union view. */
class Fields {
  constructor(protected readonly view: DataView) {}
  protected u8(off: number): number {
    return this.view.getUint8(off);
  }
  protected setU8(off: number, v: number): void {
    this.view.setUint8(off, v);
  }
  protected u16(off: number): number {
    return this.view.getUint16(off, true);
  }
  protected setU16(off: number, v: number): void {
    this.view.setUint16(off, v, true);
  }
  protected u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  protected setU32(off: number, v: number): void {
    this.view.setUint32(off, v >>> 0, true);
  }
  protected u64(off: number): bigint {
    return this.view.getBigUint64(off, true);
  }
  protected setU64(off: number, v: bigint): void {
    this.view.setBigUint64(off, BigInt.asUintN(64, v), true);
  }
}

/** `obj` variant: object I/O and peer ops. */
export class ObjArgs extends Fields {
  get oid(): bigint {
    return this.u64(16);
  }
  set oid(v: bigint) {
    this.setU64(16, v);
  }
  get cowOid(): bigint {
    return this.u64(24);
  }
  set cowOid(v: bigint) {
    this.setU64(24, v);
  }
  get copies(): number {
    return this.u8(32);
  }
  set copies(v: number) {
    this.setU8(32, v);
  }
  get copyPolicy(): number {
    return this.u8(33);
  }
  set copyPolicy(v: number) {
    this.setU8(33, v);
  }
  get ecIndex(): number {
    return this.u8(34);
  }
  set ecIndex(v: number) {
    this.setU8(34, v);
  }
  get tgtEpoch(): number {
    return this.u32(36);
  }
  set tgtEpoch(v: number) {
    this.setU32(36, v);
  }
  /** Byte offset inside the object (32-bit on the wire). */
  get offset(): number {
    return this.u32(40);
  }
  set offset(v: number) {
    this.setU32(40, v);
  }
}

/** `vdi` variant: NEW_VDI, LOCK/RELEASE/GET_VDI_INFO, DEL_VDI, GET_VDI_ATTR. */
export class VdiArgs extends Fields {
  get vdiSize(): bigint {
    return this.u64(16);
  }
  set vdiSize(v: bigint) {
    this.setU64(16, v);
  }
  get baseVdiId(): number {
    return this.u32(24);
  }
  set baseVdiId(v: number) {
    this.setU32(24, v);
  }
  get copies(): number {
    return this.u8(28);
  }
  set copies(v: number) {
    this.setU8(28, v);
  }
  get copyPolicy(): number {
    return this.u8(29);
  }
  set copyPolicy(v: number) {
    this.setU8(29, v);
  }
  get storePolicy(): number {
    return this.u8(30);
  }
  set storePolicy(v: number) {
    this.setU8(30, v);
  }
  get blockSizeShift(): number {
    return this.u8(31);
  }
  set blockSizeShift(v: number) {
    this.setU8(31, v);
  }
  get snapid(): number {
    return this.u32(32);
  }
  set snapid(v: number) {
    this.setU32(32, v);
  }
  get type(): number {
    return this.u32(36);
  }
  set type(v: number) {
    this.setU32(36, v);
  }
}

/** `cluster` variant: MAKE_FS, STAT_CLUSTER, ALTER_CLUSTER_COPY. */
export class ClusterArgs extends Fields {
  get ctime(): bigint {
    return this.u64(24);
  }
  set ctime(v: bigint) {
    this.setU64(24, v);
  }
  get copies(): number {
    return this.u8(32);
  }
  set copies(v: number) {
    this.setU8(32, v);
  }
  get copyPolicy(): number {
    return this.u8(33);
  }
  set copyPolicy(v: number) {
    this.setU8(33, v);
  }
  get flags(): number {
    return this.u16(34);
  }
  set flags(v: number) {
    this.setU16(34, v);
  }
  get tag(): number {
    return this.u32(36);
  }
  set tag(v: number) {
    this.setU32(36, v);
  }
  get nodesNr(): number {
    return this.u32(40);
  }
  set nodesNr(v: number) {
    this.setU32(40, v);
  }
  get blockSizeShift(): number {
    return this.u8(44);
  }
  set blockSizeShift(v: number) {
    this.setU8(44, v);
  }
}

/** `vdi_state` variant: NOTIFY_VDI_ADD, ALTER_VDI_COPY. */
export class VdiStateArgs extends Fields {
  get oldVid(): number {
    return this.u32(16);
  }
  set oldVid(v: number) {
    this.setU32(16, v);
  }
  get newVid(): number {
    return this.u32(20);
  }
  set newVid(v: number) {
    this.setU32(20, v);
  }
  get copies(): number {
    return this.u8(24);
  }
  set copies(v: number) {
    this.setU8(24, v);
  }
  get setBitmap(): number {
    return this.u8(25);
  }
  set setBitmap(v: number) {
    this.setU8(25, v);
  }
  get copyPolicy(): number {
    return this.u8(26);
  }
  set copyPolicy(v: number) {
    this.setU8(26, v);
  }
  get blockSizeShift(): number {
    return this.u8(27);
  }
  set blockSizeShift(v: number) {
    this.setU8(27, v);
  }
}

/** `ref` variant: DECREF_OBJ / DECREF_PEER. */
export class RefArgs extends Fields {
  get oid(): bigint {
    return this.u64(16);
  }
  set oid(v: bigint) {
    this.setU64(16, v);
  }
  get generation(): number {
    return this.u32(24);
  }
  set generation(v: number) {
    this.setU32(24, v);
  }
  get count(): number {
    return this.u32(28);
  }
  set count(v: number) {
    this.setU32(28, v);
  }
}

/** `forw` variant: REPAIR_REPLICA. */
export class ForwArgs extends Fields {
  get oid(): bigint {
    return this.u64(16);
  }
  set oid(v: bigint) {
    this.setU64(16, v);
  }
  /** The 16 address bytes (IPv4 as 12 zero bytes + 4). */
  get addr(): Uint8Array {
    return new Uint8Array(this.view.buffer, this.view.byteOffset + 24, 16);
  }
  set addr(v: Uint8Array) {
    assert(v.length === 16, "forw.addr must be 16 bytes");
    new Uint8Array(this.view.buffer, this.view.byteOffset + 24, 16).set(v);
  }
  get port(): number {
    return this.u16(40);
  }
  set port(v: number) {
    this.setU16(40, v);
  }
}

/** `vdi_state_checkpoint` variant. */
export class CheckpointArgs extends Fields {
  get get(): number {
    return this.u32(16);
  }
  set get(v: number) {
    this.setU32(16, v);
  }
  get tgtEpoch(): number {
    return this.u32(20);
  }
  set tgtEpoch(v: number) {
    this.setU32(20, v);
  }
  get vid(): number {
    return this.u32(24);
  }
  set vid(v: number) {
    this.setU32(24, v);
  }
}

/** `inode_coherence` variant. */
export class CoherenceArgs extends Fields {
  get vid(): number {
    return this.u32(16);
  }
  set vid(v: number) {
    this.setU32(16, v);
  }
  get validate(): number {
    return this.u32(20);
  }
  set validate(v: number) {
    this.setU32(20, v);
  }
}

/** Request header `sd_req`. */
export class SdReq extends Common {
  /** Object I/O view of the union. */
  readonly obj: ObjArgs;
  /** VDI view of the union. */
  readonly vdi: VdiArgs;
  /** Cluster view of the union. */
  readonly cluster: ClusterArgs;
  /** vdi_state view of the union. */
  readonly vdiState: VdiStateArgs;
  /** ref view of the union. */
  readonly ref: RefArgs;
  /** forw view of the union. */
  readonly forw: ForwArgs;
  /** vdi_state_checkpoint view of the union. */
  readonly checkpoint: CheckpointArgs;
  /** inode_coherence view of the union. */
  readonly coherence: CoherenceArgs;

  constructor(bytes: Uint8Array = new Uint8Array(SD_REQ_SIZE)) {
    super(bytes);
    this.obj = new ObjArgs(this.view);
    this.vdi = new VdiArgs(this.view);
    this.cluster = new ClusterArgs(this.view);
    this.vdiState = new VdiStateArgs(this.view);
    this.ref = new RefArgs(this.view);
    this.forw = new ForwArgs(this.view);
    this.checkpoint = new CheckpointArgs(this.view);
    this.coherence = new CoherenceArgs(this.view);
  }

  /** A fresh request with opcode and protocol version set. */
  static of(opcode: number, protoVer: number, fields: Partial<ReqCommon> = {}): SdReq {
    const req = new SdReq();
    req.opcode = opcode;
    req.protoVer = protoVer;
    if (fields.flags !== undefined) req.flags = fields.flags;
    if (fields.epoch !== undefined) req.epoch = fields.epoch;
    if (fields.id !== undefined) req.id = fields.id;
    if (fields.dataLength !== undefined) req.dataLength = fields.dataLength;
    return req;
  }

  /** An independent copy of this header. */
  clone(): SdReq {
    return new SdReq(this.bytes.slice());
  }
}

/** The common fields that can be set when building a request. */
export interface ReqCommon {
  flags: number;
  epoch: number;
  id: number;
  dataLength: number;
}

/** `obj` variant of the response. */
export class ObjRsp extends Fields {
  get copies(): number {
    return this.u8(20);
  }
  set copies(v: number) {
    this.setU8(20, v);
  }
  get offset(): bigint {
    return this.u64(24);
  }
  set offset(v: bigint) {
    this.setU64(24, v);
  }
}

/** `vdi` variant of the response. */
export class VdiRsp extends Fields {
  get vdiId(): number {
    return this.u32(24);
  }
  set vdiId(v: number) {
    this.setU32(24, v);
  }
  get attrId(): number {
    return this.u32(28);
  }
  set attrId(v: number) {
    this.setU32(28, v);
  }
  get copies(): number {
    return this.u8(32);
  }
  set copies(v: number) {
    this.setU8(32, v);
  }
  get blockSizeShift(): number {
    return this.u8(33);
  }
  set blockSizeShift(v: number) {
    this.setU8(33, v);
  }
}

/** `node` variant of the response. */
export class NodeRsp extends Fields {
  get nrNodes(): number {
    return this.u32(20);
  }
  set nrNodes(v: number) {
    this.setU32(20, v);
  }
  get storeSize(): bigint {
    return this.u64(32);
  }
  set storeSize(v: bigint) {
    this.setU64(32, v);
  }
  get storeFree(): bigint {
    return this.u64(40);
  }
  set storeFree(v: bigint) {
    this.setU64(40, v);
  }
}

/** `hash` variant of the response. */
export class HashRsp extends Fields {
  /** The 20-byte SHA-1 digest at offset 24. */
  get digest(): Uint8Array {
    return new Uint8Array(this.view.buffer, this.view.byteOffset + 24, 20);
  }
  set digest(v: Uint8Array) {
    assert(v.length === 20, "hash digest must be 20 bytes");
    new Uint8Array(this.view.buffer, this.view.byteOffset + 24, 20).set(v);
  }
}

/** `cluster_default` variant of the response. */
export class ClusterDefaultRsp extends Fields {
  get nrCopies(): number {
    return this.u8(20);
  }
  set nrCopies(v: number) {
    this.setU8(20, v);
  }
  get copyPolicy(): number {
    return this.u8(21);
  }
  set copyPolicy(v: number) {
    this.setU8(21, v);
  }
  get blockSizeShift(): number {
    return this.u8(22);
  }
  set blockSizeShift(v: number) {
    this.setU8(22, v);
  }
}

/** Response header `sd_rsp`. */
export class SdRsp extends Common {
  readonly obj: ObjRsp;
  readonly vdi: VdiRsp;
  readonly node: NodeRsp;
  readonly hash: HashRsp;
  readonly clusterDefault: ClusterDefaultRsp;

  constructor(bytes: Uint8Array = new Uint8Array(SD_RSP_SIZE)) {
    super(bytes);
    this.obj = new ObjRsp(this.view);
    this.vdi = new VdiRsp(this.view);
    this.node = new NodeRsp(this.view);
    this.hash = new HashRsp(this.view);
    this.clusterDefault = new ClusterDefaultRsp(this.view);
  }

  get result(): number {
    return this.view.getUint32(16, true);
  }
  set result(v: number) {
    this.view.setUint32(16, v >>> 0, true);
  }

  /** A response to `req`: opcode and id echoed, proto_ver 0, flags 0. */
  static replyTo(req: SdReq, epoch: number, result: number, dataLength = 0): SdRsp {
    const rsp = new SdRsp();
    rsp.opcode = req.opcode;
    rsp.id = req.id;
    rsp.epoch = epoch;
    rsp.result = result;
    rsp.dataLength = dataLength;
    return rsp;
  }
}
