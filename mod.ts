/**
 * sheepdog as a library: the Sheepdog v1.0 wire protocol (headers, opcodes, flags, result codes,
 * struct codecs), object ids and placement, and a pipelined client, for programs that talk to a
 * sheep directly.
 *
 * @example
 * ```ts
 * import { Op, SD_SHEEP_PROTO_VER, SdReq, SheepClient } from "./mod.ts";
 * const c = await SheepClient.connect({ host: "127.0.0.1", port: 7000 });
 * const { rsp } = await c.request(SdReq.of(Op.GET_NODE_LIST, SD_SHEEP_PROTO_VER, { dataLength: 8000 }));
 * console.log(rsp.node.nrNodes);
 * c.close();
 * ```
 *
 * @module
 */

export * from "./core/proto/constants.ts";
export * from "./core/proto/header.ts";
export * from "./core/proto/sd_error.ts";
export * from "./core/proto/node.ts";
export * from "./core/proto/inode.ts";
export * from "./core/proto/cluster_info.ts";
export * from "./core/proto/epoch_log.ts";
export * from "./core/proto/vdi_attr.ts";
export * from "./core/proto/config.ts";
export * from "./core/proto/vdi_state.ts";
export * from "./core/proto/stat.ts";
export * from "./core/proto/strings.ts";
export * from "./core/hash/fnv.ts";
export * from "./core/hash/oid.ts";
export { buildRing, Ring } from "./core/placement/ring.ts";
export { autoVnodes } from "./core/placement/vnodes.ts";
export { type Reply, type SheepAddress, SheepClient } from "./core/net/client.ts";
