import assert from "node:assert/strict";
import { DogError } from "./dog_error.ts";
import {
  addressOption,
  atoi,
  blockSizeShiftOption,
  copiesOption,
  indexOption,
  invalidCopyLines,
  parseCopy,
  portOption,
  snapshotOption,
} from "./option_values.ts";

function exitOf(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    if (e instanceof DogError) return e.exitCode;
    throw e;
  }
  return -1;
}

Deno.test("parseCopy() takes a replica count from 1 to 31", () => {
  assert.deepEqual(parseCopy("1"), { copies: 1, copyPolicy: 0 });
  assert.deepEqual(parseCopy("2"), { copies: 2, copyPolicy: 0 });
  assert.deepEqual(parseCopy("31"), { copies: 31, copyPolicy: 0 });
  assert.equal(parseCopy("0"), undefined);
  assert.equal(parseCopy("32"), undefined);
  assert.equal(parseCopy("99999999999999999999"), undefined);
});

Deno.test("parseCopy() encodes D:P as ((D/2) << 4) | P with D+P copies", () => {
  assert.deepEqual(parseCopy("4:2"), { copies: 6, copyPolicy: 0x22 });
  assert.deepEqual(parseCopy("2:1"), { copies: 3, copyPolicy: 0x11 });
  assert.deepEqual(parseCopy("16:15"), { copies: 31, copyPolicy: 0x8f });
  assert.equal(parseCopy("3:1"), undefined);
  assert.equal(parseCopy("2:0"), undefined);
  assert.equal(parseCopy("2:16"), undefined);
});

Deno.test("parseCopy() splits like strtok and refuses non-digits", () => {
  assert.deepEqual(parseCopy("2::1"), { copies: 3, copyPolicy: 0x11 });
  assert.deepEqual(parseCopy(":2"), { copies: 2, copyPolicy: 0 });
  assert.deepEqual(parseCopy("2:1:5"), { copies: 3, copyPolicy: 0x11 });
  for (const bad of ["", ":", "abc", "2a", "-2", "+2", " 2", "2:x"]) {
    assert.equal(parseCopy(bad), undefined, bad);
  }
});

Deno.test("copiesOption() fails with v1.0's explanation and exit 1", () => {
  assert.equal(exitOf(() => copiesOption("0")), 1);
  assert.deepEqual(invalidCopyLines("0"), [
    "Invalid parameter 0",
    "To create replicated vdi, set -c x",
    "  x(1 to 31)   - number of replicated copies",
    "To create erasure coded vdi, set -c x:y",
    "  x(2,4,8,16)  - number of data strips",
    "  y(1 to 15)   - number of parity strips",
  ]);
});

Deno.test("atoi() reads a leading integer like C", () => {
  assert.equal(atoi("22"), 22);
  assert.equal(atoi("  -3x"), -3);
  assert.equal(atoi("x"), 0);
  assert.equal(atoi(""), 0);
  assert.equal(atoi("99999999999999999999"), -1);
});

Deno.test("blockSizeShiftOption() accepts 20 to 31 after v1.0's uint8_t cast", () => {
  assert.equal(blockSizeShiftOption("20"), 20);
  assert.equal(blockSizeShiftOption("31"), 31);
  assert.equal(blockSizeShiftOption("278"), 22);
  for (const bad of ["19", "32", "abc", "-22"]) {
    assert.equal(exitOf(() => blockSizeShiftOption(bad)), 1, bad);
  }
});

Deno.test("snapshotOption() reads a number as an id and anything else as a tag", () => {
  assert.deepEqual(snapshotOption("s1"), { id: 0, tag: "s1" });
  assert.deepEqual(snapshotOption("1a"), { id: 0, tag: "1a" });
  assert.deepEqual(snapshotOption("3"), { id: 3, tag: "" });
  assert.equal(exitOf(() => snapshotOption("0")), 1);
});

Deno.test("indexOption() takes a u32", () => {
  assert.equal(indexOption("0"), 0);
  assert.equal(indexOption("4294967295"), 4294967295);
  assert.equal(exitOf(() => indexOption("4294967296")), 1);
  assert.equal(exitOf(() => indexOption("-1")), 1);
});

Deno.test("addressOption() takes IP addresses and host names", () => {
  assert.equal(addressOption("localhost"), "127.0.0.1");
  assert.equal(addressOption("10.0.0.1"), "10.0.0.1");
  assert.equal(addressOption("::1"), "::1");
  assert.equal(addressOption("sheep-1.example"), "sheep-1.example");
  for (const bad of ["1.2.3.999", "a b", "bad_host!", "1.2.3", ":::x"]) {
    assert.equal(exitOf(() => addressOption(bad)), 1, bad);
  }
});

Deno.test("portOption() takes 1 to 65535 and exits 64 otherwise", () => {
  assert.equal(portOption("7000"), 7000);
  assert.equal(portOption(" 7001"), 7001);
  assert.equal(portOption("+7002"), 7002);
  for (const bad of ["0", "65536", "abc", "70x", ""]) {
    assert.equal(exitOf(() => portOption(bad)), 64, bad);
  }
});
