import assert from "node:assert/strict";
import { decodeConfig, encodeConfig, type SheepConfig } from "./config.ts";
import { ClusterFlag, Res, SD_FORMAT_VERSION } from "./constants.ts";
import { SdError } from "./sd_error.ts";

function invalidParms(e: unknown): boolean {
  return e instanceof SdError && e.result === Res.INVALID_PARMS;
}

/** The live v1.0 file of the spec: flags 0x0004, copies 3, "plain", bss 22, version 6. */
const CONFIG: SheepConfig = {
  ctime: 0x655f1a2b1dcd6500n,
  flags: ClusterFlag.AUTO_VNODES,
  copies: 3,
  defaultStore: "plain",
  shutdown: true,
  copyPolicy: 0,
  blockSizeShift: 22,
  version: SD_FORMAT_VERSION,
  space: 0x0000003a35294400n, // 250 GB
};

// deno-fmt-ignore
const BYTES = new Uint8Array([
  0x00, 0x65, 0xcd, 0x1d, 0x2b, 0x1a, 0x5f, 0x65, // ctime @0
  0x04, 0x00, // flags @8
  0x03, // copies @10
  0x70, 0x6c, 0x61, 0x69, 0x6e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // default_store @11
  0x01, // shutdown @27
  0x00, // copy_policy @28
  0x16, // block_size_shift @29
  0x06, 0x00, // version @30
  0x00, 0x44, 0x29, 0x35, 0x3a, 0x00, 0x00, 0x00, // space @32
]);

Deno.test("encodeConfig() writes the 40-byte sheepdog_config at spec offsets", () => {
  assert.deepEqual(encodeConfig(CONFIG), BYTES);
});

Deno.test("decodeConfig() reads a hand-built config file", () => {
  assert.deepEqual(decodeConfig(BYTES), CONFIG);
});

Deno.test("decodeConfig() round trips an unformatted config and the tree store", () => {
  const c: SheepConfig = {
    ctime: 0n,
    flags: 0x3f,
    copies: 0,
    defaultStore: "tree",
    shutdown: false,
    copyPolicy: 0x42,
    blockSizeShift: 20,
    version: 6,
    space: 0n,
  };
  assert.deepEqual(decodeConfig(encodeConfig(c)), c);
});

Deno.test("decodeConfig() refuses a file that is not exactly 40 bytes", () => {
  assert.throws(() => decodeConfig(new Uint8Array(39)), invalidParms);
  assert.throws(() => decodeConfig(new Uint8Array(41)), invalidParms);
  assert.throws(() => decodeConfig(new Uint8Array(0)), invalidParms);
});

Deno.test("decodeConfig() reads a config at a non-zero byteOffset of a larger buffer", () => {
  const big = new Uint8Array(50);
  big.set(BYTES, 7);
  assert.deepEqual(decodeConfig(big.subarray(7, 47)), CONFIG);
});

Deno.test("encodeConfig() refuses a store name of 16 bytes", () => {
  assert.throws(() => encodeConfig({ ...CONFIG, defaultStore: "0123456789abcdef" }), invalidParms);
});
