import assert from "node:assert/strict";
import { NBD_MAX_PAYLOAD } from "../limits.ts";
import { BufferPool } from "../buffer_pool.ts";
import {
  AllocationState,
  BASE_ALLOCATION,
  type BlockExtent,
  ClientFlag,
  Cmd,
  CmdFlag,
  encodeMetaContextRequest,
  encodeOptionHeader,
  encodeRequest,
  Errno,
  EXPORT_NAME_PADDING,
  HandshakeFlag,
  Info,
  Opt,
  Rep,
  ReplyFlag,
  ReplyType,
  TxFlag,
} from "./protocol.ts";
import {
  clipExtents,
  NbdCommandError,
  type NbdExport,
  type NbdExportEntry,
  type NbdExportProvider,
  NbdServer,
  type NbdServerOptions,
} from "./server.ts";
import { RawNbdClient, u32 } from "./testdata/raw_nbd_client.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An export over a byte array, recording what the server asked of it. */
class MemoryExport implements NbdExport {
  readonly bytes: Uint8Array;
  /** When set: extents() reports each 64 KiB block that is all zeros as a hole. */
  reportsHoles = false;
  readonly readOnly: boolean;
  readonly description = "a test disk";
  readonly calls: string[] = [];
  /** Reads at these offsets wait this long (ms). */
  readonly readDelays = new Map<number, number>();
  closed = 0;

  constructor(size: number, readOnly = false) {
    this.bytes = new Uint8Array(size);
    this.readOnly = readOnly;
  }

  get size(): number {
    return this.bytes.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.calls.push(`read ${offset} ${length}`);
    const delay = this.readDelays.get(offset);
    if (delay) await sleep(delay);
    if (offset === 666) throw new NbdCommandError(Errno.ENOSPC, "test failure");
    return this.bytes.slice(offset, offset + length);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push(`write ${offset} ${data.length}`);
    this.bytes.set(data, offset);
    return Promise.resolve();
  }

  zero(offset: number, length: number, unmap: boolean): Promise<void> {
    this.calls.push(`zero ${offset} ${length} ${unmap ? "unmap" : "alloc"}`);
    this.bytes.fill(0, offset, offset + length);
    return Promise.resolve();
  }

  flush(): Promise<void> {
    this.calls.push("flush");
    return Promise.resolve();
  }

  extents(offset: number, length: number): Promise<BlockExtent[]> {
    this.calls.push(`extents ${offset} ${length}`);
    if (!this.reportsHoles) return Promise.resolve([{ length, flags: 0 }]);
    const out: BlockExtent[] = [];
    for (let at = offset; at < offset + length;) {
      const next = Math.min((Math.floor(at / 65536) + 1) * 65536, offset + length);
      const zero = this.bytes.subarray(at, next).every((b) => b === 0);
      out.push({ length: next - at, flags: zero ? 3 : 0 });
      at = next;
    }
    return Promise.resolve(out);
  }

  close(): void {
    this.closed++;
  }
}

class MemoryProvider implements NbdExportProvider {
  readonly exports = new Map<string, MemoryExport>();
  failOpen = false;

  list(): Promise<NbdExportEntry[]> {
    return Promise.resolve([...this.exports.entries()].map(([name, e]) => ({
      name,
      description: e.description,
    })));
  }

  open(name: string): Promise<NbdExport | null> {
    if (this.failOpen) return Promise.reject(new Error("cluster is not ready"));
    return Promise.resolve(this.exports.get(name) ?? null);
  }
}

async function withServer(
  fn: (port: number, provider: MemoryProvider, server: NbdServer) => Promise<void>,
  options: NbdServerOptions = {},
): Promise<{ protocolErrors: string[] }> {
  const provider = new MemoryProvider();
  provider.exports.set("disk", new MemoryExport(1 << 20));
  provider.exports.set("ro", new MemoryExport(1 << 16, true));
  const protocolErrors: string[] = [];
  const server = NbdServer.listen({ hostname: "127.0.0.1", port: 0 }, provider, {
    onProtocolError: (_remote, message) => protocolErrors.push(message),
  }, options);
  try {
    await fn(server.port, provider, server);
  } finally {
    await server.close(2000);
  }
  return { protocolErrors };
}

function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

Deno.test("NBD handshake: fixed newstyle greeting, NBD_OPT_LIST names every export", async () => {
  await withServer(async (port) => {
    const c = await RawNbdClient.open(port);
    assert.equal(c.handshakeFlags, HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES);
    await c.option(Opt.LIST);
    const names: string[] = [];
    for (;;) {
      const r = await c.readOptionReply();
      assert.equal(r.option, Opt.LIST);
      if (r.type === Rep.ACK) break;
      assert.equal(r.type, Rep.SERVER);
      const len = new DataView(r.data.buffer).getUint32(0);
      names.push(text(r.data.subarray(4, 4 + len)));
      assert.equal(text(r.data.subarray(4 + len)), "a test disk");
    }
    assert.deepEqual(names, ["disk", "ro"]);
    // NBD_OPT_LIST takes no data.
    await c.option(Opt.LIST, new Uint8Array(3));
    assert.equal((await c.readOptionReply()).type, Rep.ERR_INVALID);
    c.close();
  });
});

Deno.test("NBD_OPT_INFO describes an export and releases it; NBD_OPT_GO serves it", async () => {
  await withServer(async (port, provider) => {
    const c = await RawNbdClient.open(port);
    const info = await c.goOrInfo(Opt.INFO, "disk", [Info.NAME, Info.DESCRIPTION, Info.BLOCK_SIZE]);
    assert.ok(!("error" in info));
    assert.equal(info.size, 1n << 20n);
    const want = TxFlag.HAS_FLAGS | TxFlag.SEND_FLUSH | TxFlag.SEND_FUA | TxFlag.SEND_TRIM |
      TxFlag.SEND_WRITE_ZEROES | TxFlag.CAN_MULTI_CONN;
    assert.equal(info.flags, want);
    assert.equal(text(info.infos.get(Info.NAME)!.subarray(2)), "disk");
    assert.equal(text(info.infos.get(Info.DESCRIPTION)!.subarray(2)), "a test disk");
    const bs = new DataView(info.infos.get(Info.BLOCK_SIZE)!.buffer);
    assert.deepEqual([bs.getUint32(2), bs.getUint32(6), bs.getUint32(10)], [
      1,
      4096,
      NBD_MAX_PAYLOAD,
    ]);
    assert.equal(provider.exports.get("disk")!.closed, 1, "INFO releases the export");
    const ro = await c.goOrInfo(Opt.INFO, "ro");
    assert.ok(!("error" in ro));
    assert.equal(
      ro.flags,
      TxFlag.HAS_FLAGS | TxFlag.READ_ONLY | TxFlag.SEND_FLUSH | TxFlag.CAN_MULTI_CONN,
    );
    const go = await c.goOrInfo(Opt.GO, "disk");
    assert.ok(!("error" in go));
    const payload = new Uint8Array(5000).map((_, i) => i & 0xff);
    assert.equal((await c.call(Cmd.WRITE, 1000, payload.length, { payload })).error, 0);
    const r = await c.call(Cmd.READ, 1000, payload.length);
    assert.equal(r.error, 0);
    assert.deepEqual(r.data, payload);
    await c.request(Cmd.DISC, 0n, 0, 0);
    assert.ok(await c.closedByServer());
    c.close();
    await sleep(50);
    assert.equal(provider.exports.get("disk")!.closed, 2, "the session released the export");
  });
});

Deno.test("NBD handshake errors are replies, and the handshake goes on", async () => {
  await withServer(async (port, provider) => {
    const c = await RawNbdClient.open(port);
    const unknown = await c.goOrInfo(Opt.GO, "nosuch");
    assert.ok("error" in unknown);
    assert.equal(unknown.error, Rep.ERR_UNKNOWN);
    assert.match(unknown.message, /nosuch/);
    for (const opt of [Opt.STARTTLS, Opt.EXTENDED_HEADERS, 12345]) {
      await c.option(opt, new Uint8Array(4));
      const r = await c.readOptionReply();
      assert.equal(r.option, opt);
      assert.equal(r.type, Rep.ERR_UNSUP);
    }
    // Supported options with malformed data.
    for (const opt of [Opt.STRUCTURED_REPLY, Opt.LIST_META_CONTEXT]) {
      await c.option(opt, new Uint8Array(4));
      const r = await c.readOptionReply();
      assert.equal(r.option, opt);
      assert.equal(r.type, Rep.ERR_INVALID);
    }
    // SET_META_CONTEXT before structured replies are agreed.
    await c.option(Opt.SET_META_CONTEXT, encodeMetaContextRequest("disk", [BASE_ALLOCATION]));
    assert.equal((await c.readOptionReply()).type, Rep.ERR_INVALID);
    await c.option(Opt.GO, new Uint8Array([0, 0, 0, 9, 1]));
    assert.equal((await c.readOptionReply()).type, Rep.ERR_INVALID);
    await c.option(Opt.INFO, new Uint8Array(100_000));
    assert.equal((await c.readOptionReply()).type, Rep.ERR_TOO_BIG);
    provider.failOpen = true;
    const failing = await c.goOrInfo(Opt.GO, "disk");
    assert.ok("error" in failing);
    assert.equal(failing.error, Rep.ERR_SHUTDOWN);
    assert.match(failing.message, /cluster is not ready/);
    provider.failOpen = false;
    const ok = await c.goOrInfo(Opt.GO, "disk");
    assert.ok(!("error" in ok));
    assert.equal((await c.call(Cmd.FLUSH, 0, 0)).error, 0);
    c.close();
  });
});

Deno.test("NBD_OPT_EXPORT_NAME: size and flags (with padding unless NO_ZEROES); unknown closes", async () => {
  await withServer(async (port) => {
    const padded = await RawNbdClient.connect(port);
    await padded.send(u32(ClientFlag.FIXED_NEWSTYLE));
    await padded.option(Opt.EXPORT_NAME, new TextEncoder().encode("ro"));
    const reply = await padded.readExact(10 + EXPORT_NAME_PADDING);
    const v = new DataView(reply.buffer);
    assert.equal(v.getBigUint64(0), 1n << 16n);
    assert.ok(v.getUint16(8) & TxFlag.READ_ONLY);
    assert.ok(reply.subarray(10).every((b) => b === 0));
    const r = await padded.call(Cmd.WRITE, 0, 1, { payload: new Uint8Array(1) });
    assert.equal(r.error, Errno.EPERM);
    assert.equal((await padded.call(Cmd.TRIM, 0, 1)).error, Errno.EPERM);
    assert.equal((await padded.call(Cmd.READ, 0, 16)).error, 0);
    padded.close();

    const bare = await RawNbdClient.open(port);
    await bare.option(Opt.EXPORT_NAME, new TextEncoder().encode("disk"));
    assert.equal((await bare.readExact(10))[7], 0);
    assert.equal((await bare.call(Cmd.READ, 0, 1)).error, 0);
    bare.close();

    const unknown = await RawNbdClient.open(port);
    await unknown.option(Opt.EXPORT_NAME, new TextEncoder().encode("nosuch"));
    assert.ok(await unknown.closedByServer());
    unknown.close();
  });
});

Deno.test("NBD_OPT_ABORT is acknowledged; bad magic and unknown client flags close", async () => {
  const { protocolErrors } = await withServer(async (port) => {
    const a = await RawNbdClient.open(port);
    await a.option(Opt.ABORT);
    assert.equal((await a.readOptionReply()).type, Rep.ACK);
    assert.ok(await a.closedByServer());
    a.close();

    const m = await RawNbdClient.open(port);
    const bad = encodeOptionHeader(Opt.LIST, 0);
    bad[0] ^= 0xff;
    await m.send(bad);
    assert.ok(await m.closedByServer());
    m.close();

    const f = await RawNbdClient.connect(port);
    await f.send(u32(0x80));
    assert.ok(await f.closedByServer());
    f.close();

    // The server still serves.
    const ok = await RawNbdClient.go(port, "disk");
    assert.equal(ok.size, 1n << 20n);
    ok.client.close();
  });
  assert.ok(protocolErrors.some((m) => /option magic/.test(m)), protocolErrors.join("; "));
  assert.ok(protocolErrors.some((m) => /client flags/.test(m)), protocolErrors.join("; "));
});

Deno.test("NBD replies leave in completion order, matched by handle", async () => {
  await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    disk.bytes.set([1, 2, 3], 0);
    disk.bytes.set([9, 8, 7], 4096);
    disk.readDelays.set(0, 300);
    const { client } = await RawNbdClient.go(port, "disk");
    await client.request(Cmd.READ, 111n, 0, 3);
    await client.request(Cmd.READ, 222n, 4096, 3);
    await client.request(Cmd.FLUSH, 333n, 0, 0);
    const first = await client.readReply();
    const second = await client.readReply();
    const third = await client.readReply();
    assert.deepEqual([first.handle, second.handle].sort(), [222n, 333n]);
    assert.equal(third.handle, 111n);
    assert.deepEqual([...third.data], [1, 2, 3]);
    assert.deepEqual([...(first.handle === 222n ? first : second).data], [9, 8, 7]);
    client.close();
  });
});

Deno.test("NBD requests past the end, oversize reads, unknown commands and flags get EINVAL", async () => {
  await withServer(async (port, provider) => {
    const { client, size } = await RawNbdClient.go(port, "disk");
    const disk = provider.exports.get("disk")!;
    assert.equal((await client.call(Cmd.READ, size - 1n, 2)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.READ, 1n << 62n, 1)).error, Errno.EINVAL);
    const over = await client.call(Cmd.WRITE, size, 1, { payload: new Uint8Array([5]) });
    assert.equal(over.error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.TRIM, size - 10n, 11)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.WRITE_ZEROES, size, 1)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.READ, 0, NBD_MAX_PAYLOAD + 1)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.CACHE, 0, 10)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.BLOCK_STATUS, 0, 10)).error, Errno.EINVAL);
    assert.equal((await client.call(99, 0, 10)).error, Errno.EINVAL);
    assert.equal((await client.call(Cmd.READ, 0, 10, { flags: CmdFlag.FUA })).error, Errno.EINVAL);
    const fast = await client.call(Cmd.WRITE_ZEROES, 0, 10, { flags: CmdFlag.FAST_ZERO });
    assert.equal(fast.error, Errno.EINVAL);
    // An export's own errno goes through.
    assert.equal((await client.call(Cmd.READ, 666, 1)).error, Errno.ENOSPC);
    assert.ok(!disk.calls.some((c) => c.startsWith("write") || c.startsWith("zero")));
    // The connection is still usable.
    const ok = await client.call(Cmd.WRITE, size - 1n, 1, { payload: new Uint8Array([5]) });
    assert.equal(ok.error, 0);
    assert.equal(disk.bytes[disk.bytes.length - 1], 5);
    client.close();
  });
});

Deno.test("NBD FUA, FLUSH, TRIM and WRITE_ZEROES reach the export as flush and zero", async () => {
  await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    const { client } = await RawNbdClient.go(port, "disk");
    const payload = new Uint8Array(100).fill(7);
    assert.equal((await client.call(Cmd.WRITE, 0, 100, { payload, flags: CmdFlag.FUA })).error, 0);
    assert.equal((await client.call(Cmd.TRIM, 10, 20)).error, 0);
    assert.equal(
      (await client.call(Cmd.WRITE_ZEROES, 40, 10, { flags: CmdFlag.NO_HOLE })).error,
      0,
    );
    assert.equal((await client.call(Cmd.WRITE_ZEROES, 60, 5, { flags: CmdFlag.FUA })).error, 0);
    assert.equal((await client.call(Cmd.FLUSH, 0, 0)).error, 0);
    assert.deepEqual(disk.calls, [
      "write 0 100",
      "flush",
      "zero 10 20 unmap",
      "zero 40 10 alloc",
      "zero 60 5 unmap",
      "flush",
      "flush",
    ]);
    const r = await client.call(Cmd.READ, 0, 100);
    const want = new Uint8Array(100).fill(7);
    want.fill(0, 10, 30);
    want.fill(0, 40, 50);
    want.fill(0, 60, 65);
    assert.deepEqual(r.data, want);
    client.close();
  });
});

Deno.test("NBD closes on an oversize write or a bad request magic, and keeps serving others", async () => {
  const { protocolErrors } = await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    const a = (await RawNbdClient.go(port, "disk")).client;
    await a.request(Cmd.WRITE, 1n, 0, NBD_MAX_PAYLOAD + 1);
    assert.ok(await a.closedByServer());
    a.close();

    const b = (await RawNbdClient.go(port, "disk")).client;
    const bad = encodeRequest(Cmd.READ, 2n, 0n, 1);
    bad[0] = 0;
    await b.send(bad);
    assert.ok(await b.closedByServer());
    b.close();

    const c = (await RawNbdClient.go(port, "disk")).client;
    assert.equal((await c.call(Cmd.READ, 0, 1)).error, 0);
    c.close();
    assert.ok(!disk.calls.some((x) => x.startsWith("write")));
  });
  assert.ok(protocolErrors.some((m) => /write of/.test(m)), protocolErrors.join("; "));
  assert.ok(protocolErrors.some((m) => /request magic/.test(m)), protocolErrors.join("; "));
});

Deno.test("NBD never applies a write whose payload was cut short by a disconnect", async () => {
  await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    const { client } = await RawNbdClient.go(port, "disk");
    const hdr = encodeRequest(Cmd.WRITE, 5n, 0n, 65536);
    const partial = new Uint8Array(hdr.length + 30000).fill(0xee);
    partial.set(hdr);
    await client.send(partial);
    client.close();
    await sleep(100);
    assert.ok(!disk.calls.some((x) => x.startsWith("write")));
    assert.ok(disk.bytes.every((b) => b === 0));
    assert.equal(disk.closed, 1, "the export was released");
  });
});

Deno.test("NBD runs many connections and requests at once; close() ends them", async () => {
  await withServer(async (port, provider, server) => {
    const disk = provider.exports.get("disk")!;
    const clients = await Promise.all(
      Array.from({ length: 4 }, () => RawNbdClient.go(port, "disk").then((g) => g.client)),
    );
    await Promise.all(clients.map(async (c, ci) => {
      for (let i = 0; i < 32; i++) {
        const payload = new Uint8Array(1024).fill(ci * 32 + i);
        await c.request(Cmd.WRITE, BigInt(i), (ci * 32 + i) * 1024, 1024, { payload });
      }
      const handles = new Set<bigint>();
      for (let i = 0; i < 32; i++) {
        const r = await c.readReply();
        assert.equal(r.error, 0);
        handles.add(r.handle);
      }
      assert.equal(handles.size, 32);
    }));
    for (let k = 0; k < 128; k++) assert.equal(disk.bytes[k * 1024 + 512], k);
    assert.equal(server.connectionCount, 4);
    await server.close(2000);
    for (const c of clients) {
      assert.ok(await c.closedByServer());
      c.close();
    }
    assert.equal(disk.closed, 4);
  });
});

Deno.test("NBD gives a read's pooled object buffer back to the pool once the reply is sent", async () => {
  const pool = new BufferPool();
  await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    disk.bytes.fill(5, 0, 256 * 1024);
    const lent: Uint8Array[] = [];
    disk.read = (offset, length) => {
      const buf = pool.take(length);
      buf.set(disk.bytes.subarray(offset, offset + length));
      lent.push(buf);
      return Promise.resolve(buf);
    };
    const { client } = await RawNbdClient.go(port, "disk");
    const reply = await client.call(Cmd.READ, 0, 256 * 1024);
    assert.equal(reply.error, 0);
    assert.ok(reply.data.every((b) => b === 5));
    assert.ok(pool.owns(lent[0]));
    const deadline = Date.now() + 2000;
    // take() hands out the last buffer given back: the one the reply carried.
    let again = pool.take(256 * 1024);
    while (again.buffer !== lent[0].buffer && Date.now() < deadline) {
      pool.give(again);
      await sleep(10);
      again = pool.take(256 * 1024);
    }
    assert.equal(again.buffer, lent[0].buffer, "the reply's buffer came back to the pool");
    pool.give(again);
    client.close();
  }, { buffers: pool });
});

Deno.test("NBD structured replies: READ as OFFSET_DATA, errors as ERROR chunks, base:allocation block status", async () => {
  await withServer(async (port, provider) => {
    const disk = provider.exports.get("disk")!;
    disk.reportsHoles = true;
    disk.bytes.fill(9, 65536, 2 * 65536); // block 1 data, the rest zeros
    const c = await RawNbdClient.open(port);
    await c.option(Opt.STRUCTURED_REPLY);
    assert.equal((await c.readOptionReply()).type, Rep.ACK);
    // LIST with no query names every context; SET picks base:allocation and ignores the rest.
    await c.option(Opt.LIST_META_CONTEXT, encodeMetaContextRequest("disk", []));
    const listed = await c.readOptionReply();
    assert.equal(listed.type, Rep.META_CONTEXT);
    assert.equal(text(listed.data.subarray(4)), BASE_ALLOCATION);
    assert.equal((await c.readOptionReply()).type, Rep.ACK);
    await c.option(
      Opt.SET_META_CONTEXT,
      encodeMetaContextRequest("disk", ["qemu:dirty-bitmap:x", BASE_ALLOCATION]),
    );
    const chosen = await c.readOptionReply();
    assert.equal(chosen.type, Rep.META_CONTEXT);
    const contextId = new DataView(chosen.data.buffer).getUint32(0);
    assert.equal((await c.readOptionReply()).type, Rep.ACK);
    const go = await c.goOrInfo(Opt.GO, "disk");
    assert.ok(!("error" in go));

    await c.request(Cmd.READ, 7n, 65536 + 100, 300);
    const read = await c.readChunk();
    assert.equal(read.type, ReplyType.OFFSET_DATA);
    assert.equal(read.flags, ReplyFlag.DONE);
    assert.equal(read.handle, 7n);
    assert.equal(new DataView(read.payload.buffer).getBigUint64(0), BigInt(65536 + 100));
    assert.deepEqual(read.payload.subarray(8), new Uint8Array(300).fill(9));

    const hole = AllocationState.HOLE | AllocationState.ZERO;
    await c.request(Cmd.BLOCK_STATUS, 8n, 0, 4 * 65536);
    const bs = await c.readChunk();
    assert.equal(bs.type, ReplyType.BLOCK_STATUS);
    assert.equal(bs.flags, ReplyFlag.DONE);
    const v = new DataView(bs.payload.buffer);
    assert.equal(v.getUint32(0), contextId);
    const extents = [];
    for (let at = 4; at < bs.payload.length; at += 8) {
      extents.push([v.getUint32(at), v.getUint32(at + 4)]);
    }
    assert.deepEqual(extents, [[65536, hole], [65536, 0], [2 * 65536, hole]]);
    await c.request(Cmd.BLOCK_STATUS, 9n, 65536, 3 * 65536, { flags: CmdFlag.REQ_ONE });
    const one = await c.readChunk();
    assert.equal(one.payload.length, 4 + 8, "REQ_ONE: one extent");
    assert.equal(new DataView(one.payload.buffer).getUint32(4), 65536);

    // Errors of READ and BLOCK_STATUS come as ERROR chunks; the connection goes on.
    for (const [type, offset, length] of [[Cmd.READ, 666, 10], [Cmd.BLOCK_STATUS, 0, 0]]) {
      await c.request(type, 10n, offset, length);
      const e = await c.readChunk();
      assert.equal(e.type, ReplyType.ERROR);
      assert.equal(e.flags, ReplyFlag.DONE);
      assert.equal(e.handle, 10n);
      assert.equal(
        new DataView(e.payload.buffer).getUint32(0),
        type === Cmd.READ ? Errno.ENOSPC : Errno.EINVAL,
      );
    }
    await c.request(Cmd.BLOCK_STATUS, 11n, BigInt(disk.size), 1);
    assert.equal((await c.readChunk()).type, ReplyType.ERROR, "past the end");
    // Other commands still get simple replies.
    assert.equal((await c.call(Cmd.FLUSH, 0, 0)).error, 0);
    c.close();

    // Without a selected context, BLOCK_STATUS is EINVAL (a simple reply: nothing structured).
    const plain = await RawNbdClient.open(port);
    assert.ok(!("error" in await plain.goOrInfo(Opt.GO, "disk")));
    assert.equal((await plain.call(Cmd.BLOCK_STATUS, 0, 4096)).error, Errno.EINVAL);
    plain.close();
  });
});

Deno.test("clipExtents() cuts to the request, merges neighbours and bounds the count", () => {
  assert.deepEqual(clipExtents([{ length: 10, flags: 3 }, { length: 10, flags: 3 }], 15, 8), [
    { length: 15, flags: 3 },
  ]);
  assert.deepEqual(
    clipExtents([{ length: 5, flags: 0 }, { length: 0, flags: 3 }, { length: 5, flags: 3 }], 20, 8),
    [{ length: 5, flags: 0 }, { length: 5, flags: 3 }],
  );
  assert.deepEqual(clipExtents([{ length: 1, flags: 0 }, { length: 1, flags: 3 }], 2, 1), [
    { length: 1, flags: 0 },
  ]);
  assert.deepEqual(clipExtents([], 7, 4), [{ length: 7, flags: 0 }]);
});
