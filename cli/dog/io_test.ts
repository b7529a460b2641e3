import assert from "node:assert/strict";
import { DogOutput, StreamReader } from "./io.ts";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(new TextEncoder().encode(s));
      c.close();
    },
  });
}

Deno.test("StreamReader.read() fills across chunks and is short only at the end", async () => {
  const r = new StreamReader(streamOf("ab", "", "cde", "f"));
  assert.equal(new TextDecoder().decode(await r.read(4)), "abcd");
  assert.equal(new TextDecoder().decode(await r.read(4)), "ef");
  assert.equal((await r.read(4)).length, 0);
});

Deno.test("StreamReader.readLine() reads like fgets and leaves the rest", async () => {
  const r = new StreamReader(streamOf("yes\nno", "pe\n"));
  assert.equal(await r.readLine(8), "yes\n");
  assert.equal(await r.readLine(4), "nop");
  assert.equal(await r.readLine(8), "e\n");
  assert.equal(await r.readLine(8), undefined);
});

Deno.test("DogOutput writes text to stdout and lines to stderr", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const o = new DogOutput({
    stdout: { write: (b: Uint8Array) => out.push(new TextDecoder().decode(b)) },
    stderr: { write: (b: Uint8Array) => err.push(new TextDecoder().decode(b)) },
    stdin: streamOf(),
    env: () => undefined,
    now: () => new Date(0),
  });
  await o.print("a");
  await o.lines("b", "c");
  await o.error("x", "y");
  await o.print("");
  assert.deepEqual(out, ["a", "b\nc\n"]);
  assert.deepEqual(err, ["x\ny\n"]);
});
