/**
 * `sheepdog_vdi_attr` (66,320 bytes): the attribute object and the GET_VDI_ATTR payload.
 *
 * Layout (LE): name[256] @0, tag[256] @256, ctime u64 @512, snap_id u32 @520, value_len u32 @524,
 * key[256] @528, value[65536] @784.
 *
 * What decodeVdiAttr accepts: at least the 784-byte header and at most the full 66,320 bytes.
 * - A buffer of exactly 784 bytes is a header-only payload (what dog sends when it has no
 *   value): `value` is empty whatever value_len says, and `valueLen` keeps the sent value.
 * - A longer buffer must hold the value_len bytes of value after the header.
 * value_len above 65,536 is refused. Anything refused is SdError(INVALID_PARMS).
 *
 * @module
 */

import { assert } from "../assert.ts";
import {
  Res,
  SD_ATTR_OBJ_SIZE,
  SD_MAX_VDI_ATTR_KEY_LEN,
  SD_MAX_VDI_ATTR_VALUE_LEN,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
} from "./constants.ts";
import { SdError } from "./sd_error.ts";
import { decodeFixedString, writeFixedString } from "./strings.ts";

/** Size of the attribute without its value: 784. */
export const VDI_ATTR_HEADER_SIZE = SD_ATTR_OBJ_SIZE - SD_MAX_VDI_ATTR_VALUE_LEN;

/** A decoded `sheepdog_vdi_attr`. */
export interface VdiAttr {
  /** VDI name, at most 255 bytes. */
  name: string;
  /** Snapshot tag, at most 255 bytes. */
  tag: string;
  /** Overwritten by sheep with the VDI's create_time. */
  ctime: bigint;
  snapId: number;
  /** value_len as on the wire. */
  valueLen: number;
  /** Attribute key, at most 255 bytes. */
  key: string;
  /** The value bytes (empty for a header-only payload). */
  value: Uint8Array;
}

/**
 * Encodes `a`: the full 66,320 bytes, or only the 784-byte header when `headerOnly`. value_len is
 * written from `a.valueLen`; `a.value` (at most 65,536 bytes) is copied at 784 unless
 * `headerOnly`. SdError(INVALID_PARMS) on a name, tag or key longer than 255 bytes or a value or
 * value_len above 65,536.
 */
export function encodeVdiAttr(a: VdiAttr, headerOnly = false): Uint8Array {
  if (a.value.length > SD_MAX_VDI_ATTR_VALUE_LEN || a.valueLen > SD_MAX_VDI_ATTR_VALUE_LEN) {
    throw new SdError(Res.INVALID_PARMS, "attribute value is longer than 65536 bytes");
  }
  assert(Number.isInteger(a.valueLen) && a.valueLen >= 0, `bad value_len ${a.valueLen}`);
  const out = new Uint8Array(headerOnly ? VDI_ATTR_HEADER_SIZE : SD_ATTR_OBJ_SIZE);
  writeFixedString(a.name, out, 0, SD_MAX_VDI_LEN);
  writeFixedString(a.tag, out, 256, SD_MAX_VDI_TAG_LEN);
  writeFixedString(a.key, out, 528, SD_MAX_VDI_ATTR_KEY_LEN);
  const v = new DataView(out.buffer, out.byteOffset, VDI_ATTR_HEADER_SIZE);
  v.setBigUint64(512, BigInt.asUintN(64, a.ctime), true);
  v.setUint32(520, a.snapId >>> 0, true);
  v.setUint32(524, a.valueLen, true);
  if (!headerOnly) out.set(a.value, VDI_ATTR_HEADER_SIZE);
  return out;
}

/** Decodes an attribute or GET_VDI_ATTR payload; see the module doc for what is accepted. */
export function decodeVdiAttr(buf: Uint8Array): VdiAttr {
  if (buf.length < VDI_ATTR_HEADER_SIZE || buf.length > SD_ATTR_OBJ_SIZE) {
    throw new SdError(
      Res.INVALID_PARMS,
      `a vdi attribute has ${VDI_ATTR_HEADER_SIZE} to ${SD_ATTR_OBJ_SIZE} bytes, got ${buf.length}`,
    );
  }
  const v = new DataView(buf.buffer, buf.byteOffset, VDI_ATTR_HEADER_SIZE);
  const valueLen = v.getUint32(524, true);
  if (valueLen > SD_MAX_VDI_ATTR_VALUE_LEN) {
    throw new SdError(Res.INVALID_PARMS, `attribute value_len ${valueLen} exceeds 65536`);
  }
  const headerOnly = buf.length === VDI_ATTR_HEADER_SIZE;
  if (!headerOnly && buf.length < VDI_ATTR_HEADER_SIZE + valueLen) {
    throw new SdError(
      Res.INVALID_PARMS,
      `attribute of ${buf.length} bytes cannot hold a ${valueLen}-byte value`,
    );
  }
  return {
    name: decodeFixedString(buf, 0, SD_MAX_VDI_LEN),
    tag: decodeFixedString(buf, 256, SD_MAX_VDI_TAG_LEN),
    ctime: v.getBigUint64(512, true),
    snapId: v.getUint32(520, true),
    valueLen,
    key: decodeFixedString(buf, 528, SD_MAX_VDI_ATTR_KEY_LEN),
    value: headerOnly
      ? new Uint8Array(0)
      : buf.slice(VDI_ATTR_HEADER_SIZE, VDI_ATTR_HEADER_SIZE + valueLen),
  };
}
