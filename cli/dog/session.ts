/**
 * dog's connections to the cluster: one pipelined client per sheep (v1.0's sockfd cache), the node
 * list fetched before each command, and object reads and writes with v1.0's error lines
 * (dog_exec_req, update_node_list, dog_read_object, dog_write_object).
 *
 * @module
 */

import { type Reply, SheepClient } from "../../core/net/client.ts";
import {
  Flag,
  Op,
  Res,
  resultText,
  SD_MAX_NODES,
  SD_NODE_SIZE,
  SD_PROTO_VER,
  SD_SHEEP_PROTO_VER,
} from "../../core/proto/constants.ts";
import { SdReq } from "../../core/proto/header.ts";
import { addrToString, decodeNodes, type SdNode, sortNodes } from "../../core/proto/node.ts";
import { SdError } from "../../core/proto/sd_error.ts";
import { DogError, Exit, ReportedError } from "./dog_error.ts";
import type { DogOutput } from "./io.ts";

/** Where dog sends its requests. */
export interface DogTarget {
  host: string;
  port: number;
}

/** Opens a client connection; injectable for tests. */
export type Connector = (addr: DogTarget) => Promise<SheepClient>;

/** A request header with the protocol version its opcode needs (0x02 public, 0x0a internal). */
export function dogReq(
  opcode: number,
  fields: { flags?: number; dataLength?: number } = {},
): SdReq {
  return SdReq.of(opcode, opcode >= 0x80 ? SD_SHEEP_PROTO_VER : SD_PROTO_VER, fields);
}

/** How many times dog tries to connect before giving up (v1.0 shows two failures). */
const CONNECT_ATTEMPTS = 2;

/** The errno text v1.0 prints (%m) for a failed connect. */
export function connectErrorText(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "Connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "Connection reset by peer";
  if (err instanceof Deno.errors.TimedOut) return "Connection timed out";
  if (err instanceof Deno.errors.AddrNotAvailable) return "Cannot assign requested address";
  if (err instanceof Deno.errors.PermissionDenied) return "Permission denied";
  if (err instanceof SdError && err.result === Res.NETWORK_ERROR) return "Connection timed out";
  return err instanceof Error ? err.message : String(err);
}

/** Options of an object write (dog_write_object's parameters). */
export interface WriteObjectOptions {
  /** CREATE_AND_WRITE_OBJ instead of WRITE_OBJ. */
  create?: boolean;
  /** Source object of a copy-on-write create (sets CMD_COW). */
  cowOid?: bigint;
  /** Extra request flags (CMD_CACHE for writeback). */
  flags?: number;
  copies?: number;
  copyPolicy?: number;
  /** Sets CMD_DIRECT. */
  direct?: boolean;
}

/** One dog invocation's view of the cluster. */
export class DogSession {
  /** The sheep dog talks to. */
  readonly target: DogTarget;
  /** Members, sorted as v1.0 keeps them (address bytes, then port). */
  nodes: SdNode[] = [];
  /** The epoch of the GET_NODE_LIST reply. */
  epoch = 0;
  /** Where the session prints v1.0's error lines. */
  readonly out: DogOutput;
  readonly #connect: Connector;
  readonly #clients = new Map<string, Promise<SheepClient>>();

  constructor(target: DogTarget, out: DogOutput, connect?: Connector) {
    this.target = target;
    this.out = out;
    this.#connect = connect ?? ((a) => SheepClient.connect(a));
  }

  /** Sends a request to the target sheep. */
  exec(req: SdReq, data?: Uint8Array): Promise<Reply> {
    return this.execAt(this.target, req, data);
  }

  /** Sends a request to one member. */
  execOn(node: SdNode, req: SdReq, data?: Uint8Array): Promise<Reply> {
    return this.execAt({ host: addrToString(node.nid.addr), port: node.nid.port }, req, data);
  }

  /**
   * Sends a request to `addr`. A connection that cannot be made prints v1.0's "failed to connect"
   * line per attempt and throws ReportedError; a connection that breaks throws SdError
   * (NETWORK_ERROR).
   */
  async execAt(addr: DogTarget, req: SdReq, data?: Uint8Array): Promise<Reply> {
    const key = `${addr.host}:${addr.port}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = this.#open(addr);
      this.#clients.set(key, client);
    }
    let c: SheepClient;
    try {
      c = await client;
    } catch (e) {
      this.#clients.delete(key);
      throw e;
    }
    try {
      return await c.request(req, data);
    } catch (e) {
      this.#clients.delete(key);
      c.close();
      const msg = e instanceof Error ? e.message : String(e);
      throw new SdError(Res.NETWORK_ERROR, `failed to communicate with ${key}: ${msg}`, {
        cause: e,
      });
    }
  }

  async #open(addr: DogTarget): Promise<SheepClient> {
    let last: unknown;
    for (let attempt = 0; attempt < CONNECT_ATTEMPTS; attempt++) {
      try {
        return await this.#connect(addr);
      } catch (e) {
        last = e;
        await this.out.error(
          `failed to connect to ${addr.host}:${addr.port}: ${connectErrorText(e)}`,
        );
      }
    }
    throw new ReportedError(Res.NETWORK_ERROR, `cannot connect to ${addr.host}:${addr.port}`, {
      cause: last,
    });
  }

  /**
   * GET_NODE_LIST (v1.0's update_node_list): fills `nodes` and `epoch`. Throws DogError with
   * "Failed to get node list" (exit 2) when the target cannot answer, and "There are no active
   * sheep daemons" (exit 1) for an empty list.
   */
  async updateNodeList(): Promise<void> {
    const req = dogReq(Op.GET_NODE_LIST, { dataLength: SD_NODE_SIZE * SD_MAX_NODES });
    let reply: Reply;
    try {
      reply = await this.exec(req);
    } catch (e) {
      const lines = e instanceof ReportedError ? [] : [e instanceof Error ? e.message : String(e)];
      throw new DogError(Exit.SYSFAIL, [...lines, "Failed to get node list"], { cause: e });
    }
    if (reply.rsp.result !== Res.SUCCESS) {
      throw new DogError(Exit.SYSFAIL, [
        `Failed to update node list: ${resultText(reply.rsp.result)}`,
        "Failed to get node list",
      ], { result: reply.rsp.result });
    }
    const count = Math.floor(reply.data.length / SD_NODE_SIZE);
    if (count === 0) throw new DogError(Exit.FAILURE, ["There are no active sheep daemons"]);
    this.nodes = sortNodes(decodeNodes(reply.data, count));
    this.epoch = reply.rsp.epoch;
  }

  /**
   * READ_OBJ of `length` bytes at `offset` (dog_read_object). On failure prints v1.0's "Failed to
   * read object" line and returns the result code with empty data. A reply shorter than asked
   * (zero-trimmed at rsp.obj.offset) is widened back with zeros.
   */
  async readObject(
    oid: bigint,
    length: number,
    offset: number,
    direct = true,
  ): Promise<{ result: number; data: Uint8Array }> {
    const req = dogReq(Op.READ_OBJ, {
      dataLength: length,
      flags: direct ? Flag.CMD_DIRECT : 0,
    });
    req.obj.oid = oid;
    req.obj.offset = offset;
    let reply: Reply;
    try {
      reply = await this.exec(req);
    } catch (e) {
      if (!(e instanceof ReportedError)) {
        await this.out.error(e instanceof Error ? e.message : String(e));
      }
      await this.out.error(`Failed to read object ${oid.toString(16)}`);
      return { result: Res.EIO, data: new Uint8Array(0) };
    }
    const result = reply.rsp.result;
    if (result !== Res.SUCCESS) {
      await this.out.error(`Failed to read object ${oid.toString(16)} ${resultText(result)}`);
      return { result: result === Res.NO_OBJ ? Res.NO_OBJ : Res.EIO, data: new Uint8Array(0) };
    }
    if (reply.data.length === length) return { result, data: reply.data };
    const data = new Uint8Array(length);
    const at = Math.min(Number(reply.rsp.obj.offset), length);
    data.set(reply.data.subarray(0, length - at), at);
    return { result, data };
  }

  /**
   * WRITE_OBJ or CREATE_AND_WRITE_OBJ (dog_write_object). On failure prints v1.0's "Failed to
   * write object" line and returns the result code.
   */
  async writeObject(
    oid: bigint,
    data: Uint8Array,
    offset: number,
    opts: WriteObjectOptions = {},
  ): Promise<number> {
    let flags = (opts.flags ?? 0) | Flag.CMD_WRITE;
    if (opts.cowOid) flags |= Flag.CMD_COW;
    if (opts.direct) flags |= Flag.CMD_DIRECT;
    const req = dogReq(opts.create ? Op.CREATE_AND_WRITE_OBJ : Op.WRITE_OBJ, {
      flags,
      dataLength: data.length,
    });
    req.obj.oid = oid;
    req.obj.cowOid = opts.cowOid ?? 0n;
    req.obj.copies = opts.copies ?? 0;
    req.obj.copyPolicy = opts.copyPolicy ?? 0;
    req.obj.offset = offset;
    let reply: Reply;
    try {
      reply = await this.exec(req, data);
    } catch (e) {
      if (!(e instanceof ReportedError)) {
        await this.out.error(e instanceof Error ? e.message : String(e));
      }
      await this.out.error(`Failed to write object ${oid.toString(16)}`);
      return Res.EIO;
    }
    const result = reply.rsp.result;
    if (result !== Res.SUCCESS) {
      await this.out.error(`Failed to write object ${oid.toString(16)}: ${resultText(result)}`);
    }
    return result;
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    for (const p of clients) {
      const settled = await p.then((c) => c, (e: unknown) => e);
      if (settled instanceof SheepClient) settled.close();
    }
  }
}
