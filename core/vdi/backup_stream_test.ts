import assert from "node:assert/strict";
import {
  BACKUP_HEADER_SIZE,
  BackupFormatError,
  decodeRecordHeader,
  encodeBackupHeader,
  encodeEndRecord,
  encodeRecordHeader,
  END_IDX,
  isBackupHeader,
  readBackupStream,
  trimDiff,
} from "./backup_stream.ts";

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function readerOf(bytes: Uint8Array) {
  let at = 0;
  return (n: number) => {
    const out = bytes.subarray(at, Math.min(at + n, bytes.length));
    at += out.length;
    return Promise.resolve(out);
  };
}

Deno.test("backup: header and records are v1.0's bytes", () => {
  assert.equal(hex(encodeBackupHeader()), "0100000092119211");
  assert.equal(isBackupHeader(encodeBackupHeader()), true);
  assert.equal(isBackupHeader(new Uint8Array(BACKUP_HEADER_SIZE)), false);
  assert.equal(
    hex(encodeRecordHeader({ idx: 3, offset: 512, length: 1024 })),
    "03000000" + "00020000" + "00040000" + "00000000",
  );
  assert.equal(hex(encodeEndRecord()), "ffffffff" + "00".repeat(12));
  assert.deepEqual(decodeRecordHeader(encodeRecordHeader({ idx: 7, offset: 1, length: 2 })), {
    idx: 7,
    offset: 1,
    length: 2,
  });
});

Deno.test("backup: trimDiff drops equal 512-byte blocks at both ends", () => {
  const size = 8192;
  const from = new Uint8Array(size).fill(1);
  const to = from.slice();
  assert.deepEqual(trimDiff(to, from), { offset: size, length: 0 });
  to[1000] = 9; // block 1
  assert.deepEqual(trimDiff(to, from), { offset: 512, length: 512 });
  to[5000] = 9; // block 9
  assert.deepEqual(trimDiff(to, from), { offset: 512, length: 5120 - 512 });
  // Against zeros (no FROM object).
  const z = new Uint8Array(size);
  z[0] = 1;
  z[size - 1] = 1;
  assert.deepEqual(trimDiff(z, null), { offset: 0, length: size });
  assert.deepEqual(trimDiff(new Uint8Array(size), null), { offset: size, length: 0 });
  const mid = new Uint8Array(size);
  mid[2048] = 5;
  assert.deepEqual(trimDiff(mid, null), { offset: 2048, length: 512 });
});

Deno.test("backup: a stream round-trips; bad headers and truncation are reported", async () => {
  const parts = [
    encodeBackupHeader(),
    encodeRecordHeader({ idx: 0, offset: 512, length: 3 }),
    Uint8Array.of(1, 2, 3),
    encodeRecordHeader({ idx: 5, offset: 0, length: 2 }),
    Uint8Array.of(4, 5),
    encodeEndRecord(),
  ];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const got = [];
  for await (const r of readBackupStream(readerOf(all), 4096)) got.push(r);
  assert.deepEqual(got.map((r) => [r.idx, r.offset, r.length, [...r.data]]), [
    [0, 512, 3, [1, 2, 3]],
    [5, 0, 2, [4, 5]],
  ]);
  const bad = all.slice();
  bad[4] = 0;
  await assert.rejects(
    async () => {
      for await (const _ of readBackupStream(readerOf(bad), 4096)) { /* drain */ }
    },
    (e: unknown) => e instanceof BackupFormatError && e.message === "corrupted",
  );
  await assert.rejects(
    async () => {
      for await (const _ of readBackupStream(readerOf(all.subarray(0, 30)), 4096)) { /* drain */ }
    },
    (e: unknown) => e instanceof BackupFormatError && e.message === "truncated",
  );
  assert.equal(END_IDX, 0xffffffff);
});
