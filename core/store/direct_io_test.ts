import assert from "node:assert/strict";
import { alignedBuffer, isDirectIoAligned } from "../buffer_pool.ts";
import { DirectIo } from "./direct_io.ts";

Deno.test("writeNewFileDirect creates a file from an aligned buffer and refuses the rest", async () => {
  const direct = new DirectIo();
  assert.ok(direct.available(), "tests run with --allow-ffi on Linux");
  const dir = await Deno.makeTempDir({ prefix: "sheepdog-direct-io-" });
  try {
    const buf = alignedBuffer(1 << 20);
    assert.ok(isDirectIoAligned(buf));
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7) & 0xff;
    assert.equal(await direct.writeNewFile(`${dir}/a`, buf, true), "done");
    assert.deepEqual(await Deno.readFile(`${dir}/a`), buf);
    // O_EXCL: an existing file is left alone.
    assert.equal(await direct.writeNewFile(`${dir}/a`, alignedBuffer(4096), false), "unsupported");
    assert.deepEqual(await Deno.readFile(`${dir}/a`), buf);
    // Unaligned address or length: nothing is created.
    assert.equal(await direct.writeNewFile(`${dir}/b`, buf.subarray(1, 4097), true), "unsupported");
    assert.equal(await direct.writeNewFile(`${dir}/c`, buf.subarray(0, 100), true), "unsupported");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a"]);
    // A missing directory: the open fails.
    assert.equal(await direct.writeNewFile(`${dir}/no/d`, buf, true), "unsupported");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
