import assert from "node:assert/strict";
import { MessageWriter } from "./message_writer.ts";

/** A sink that records every write and completes it after a macrotask (like a socket). */
class SlowSink {
  writes: Uint8Array[] = [];
  failAfter = Infinity;
  maxChunk = Infinity;
  async write(p: Uint8Array): Promise<number> {
    await new Promise((r) => setTimeout(r, 1));
    if (this.writes.length >= this.failAfter) throw new Error("broken pipe");
    const n = Math.min(p.length, this.maxChunk);
    this.writes.push(p.slice(0, n));
    return n;
  }
  get bytes(): number[] {
    return this.writes.flatMap((w) => [...w]);
  }
}

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

Deno.test("MessageWriter writes messages in order and coalesces small ones", async () => {
  const sink = new SlowSink();
  const w = new MessageWriter(sink, () => assert.fail("no error expected"));
  w.send(bytes(48, 1), bytes(4096, 2));
  w.send(bytes(48, 3));
  w.send(bytes(48, 4), bytes(10, 5));
  await w.drain();
  assert.equal(sink.writes.length, 1, "one write for three small messages");
  assert.deepEqual(sink.bytes, [
    ...bytes(48, 1),
    ...bytes(4096, 2),
    ...bytes(48, 3),
    ...bytes(48, 4),
    ...bytes(10, 5),
  ]);
});

Deno.test("MessageWriter sends large payloads from their own buffer, in order", async () => {
  const sink = new SlowSink();
  const w = new MessageWriter(sink, () => assert.fail("no error expected"));
  const big = bytes(1 << 20, 7);
  w.send(bytes(48, 1), big);
  w.send(bytes(48, 2));
  await w.drain();
  assert.equal(sink.writes.length, 3);
  assert.equal(sink.writes[1].length, big.length);
  assert.deepEqual(sink.bytes, [...bytes(48, 1), ...big, ...bytes(48, 2)]);
});

Deno.test("MessageWriter loops over short writes", async () => {
  const sink = new SlowSink();
  sink.maxChunk = 1000;
  const w = new MessageWriter(sink, () => assert.fail("no error expected"));
  w.send(bytes(48, 1), bytes(5000, 2));
  await w.drain();
  assert.deepEqual(sink.bytes, [...bytes(48, 1), ...bytes(5000, 2)]);
});

Deno.test("MessageWriter keeps writing what is queued during a write", async () => {
  const sink = new SlowSink();
  const w = new MessageWriter(sink, () => assert.fail("no error expected"));
  const first = w.sendAndWait(bytes(48, 1));
  await new Promise((r) => setTimeout(r, 0));
  const second = w.sendAndWait(bytes(48, 2));
  const third = w.sendAndWait(bytes(48, 3));
  await first;
  await Promise.all([second, third]);
  assert.equal(sink.writes.length, 2, "the two queued during the first write share one");
  assert.deepEqual(sink.bytes, [...bytes(48, 1), ...bytes(48, 2), ...bytes(48, 3)]);
});

Deno.test("MessageWriter reports the first failure once and wakes every waiter", async () => {
  const sink = new SlowSink();
  sink.failAfter = 1;
  const errors: unknown[] = [];
  const w = new MessageWriter(sink, (e) => errors.push(e));
  const a = w.sendAndWait(bytes(48, 1), bytes(1 << 20, 2));
  const b = w.sendAndWait(bytes(48, 3));
  await Promise.all([a, b]);
  await w.drain();
  assert.equal(errors.length, 1);
  assert.equal(w.failed, true);
  await w.sendAndWait(bytes(48, 4)); // resolves at once, writes nothing
  assert.equal(sink.writes.length, 1);
});

Deno.test("MessageWriter.stop drops the queue and wakes waiters", async () => {
  const sink = new SlowSink();
  const w = new MessageWriter(sink, () => assert.fail("no error expected"));
  const a = w.sendAndWait(bytes(48, 1));
  w.stop();
  await a;
  await w.drain();
  assert.equal(sink.writes.length, 0);
});
