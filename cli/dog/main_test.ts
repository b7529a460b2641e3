/**
 * Unit tests of runDog() (in process; a fake cluster stands in for sheep where one is needed).
 */
import assert from "node:assert/strict";
import { Op } from "../../core/proto/constants.ts";
import { runDogCaptured, startFake, TRANSCRIPT_DATE } from "./test_harness.ts";

/** A loopback port nobody listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("dog without a reachable sheep fails twice to connect and exits 2", async () => {
  const port = closedPort();
  const run = await runDogCaptured(["node", "list"], { env: { SHEEPDOG_DOG_PORT: String(port) } });
  assert.equal(
    run.stderr,
    `failed to connect to 127.0.0.1:${port}: Connection refused\n`.repeat(2) +
      "Failed to get node list\n",
  );
  assert.equal(run.stdout, "");
  assert.equal(run.code, 2);
});

Deno.test("dog -a/-p override SHEEPDOG_DOG_ADDR/SHEEPDOG_DOG_PORT", async () => {
  const port = closedPort();
  const run = await runDogCaptured(["vdi", "list", "-a", "localhost", "-p", String(port)], {
    env: { SHEEPDOG_DOG_ADDR: "10.1.1.1", SHEEPDOG_DOG_PORT: "1" },
  });
  assert.ok(run.stderr.startsWith(`failed to connect to 127.0.0.1:${port}: `));
  assert.equal(run.code, 2);
});

Deno.test("dog with no command prints the command list and exits 0", async () => {
  const run = await runDogCaptured([]);
  assert.equal(run.code, 0);
  assert.ok(run.stdout.startsWith("Sheepdog administrator utility"));
  assert.ok(run.stdout.includes("\n  vdi create              create an image\n"));
  assert.ok(run.stdout.includes("\n  cluster format          create a Sheepdog store\n"));
});

Deno.test("dog rejects an unknown command with exit 64", async () => {
  const run = await runDogCaptured(["frob"]);
  assert.equal(run.stderr, "Invalid command 'frob'\nTry 'dog --help' for more information.\n");
  assert.equal(run.code, 64);
});

Deno.test("dog lists a group's subcommands when the subcommand is missing or unknown", async () => {
  const missing = await runDogCaptured(["cluster"]);
  assert.equal(
    missing.stderr,
    "Available cluster commands:\n  cluster info\n  cluster format\n  cluster shutdown\n" +
      "  cluster recover\n  cluster check\n",
  );
  assert.equal(missing.code, 64);
  const unknown = await runDogCaptured(["cluster", "frob"]);
  assert.ok(unknown.stderr.startsWith("Invalid command 'cluster frob'\nAvailable cluster"));
  assert.equal(unknown.code, 64);
});

Deno.test("dog reports bad options as getopt does and exits 64", async () => {
  const short = await runDogCaptured(["vdi", "list", "-Q"]);
  assert.equal(
    short.stderr,
    "dog: invalid option -- 'Q'\nTry 'dog --help' for more information.\n",
  );
  assert.equal(short.code, 64);
  const long = await runDogCaptured(["vdi", "list", "--bogus"]);
  assert.equal(
    long.stderr,
    "dog: unrecognized option '--bogus'\nTry 'dog --help' for more information.\n",
  );
  const missing = await runDogCaptured(["vdi", "create", "x", "1M", "-c"]);
  assert.equal(
    missing.stderr,
    "dog: option requires an argument -- 'c'\nTry 'dog --help' for more information.\n",
  );
  assert.equal(missing.code, 64);
});

Deno.test("dog -h prints the subcommand usage on stdout and exits 0", async () => {
  const run = await runDogCaptured(["vdi", "create", "-h"]);
  assert.equal(run.code, 0);
  const lines = run.stdout.split("\n");
  assert.equal(
    lines[0],
    "Usage: dog vdi create [-P] [-y] [-c copies] [-a address] [-p port] [-h] [-r] [-v] " +
      "[-z block_size_shift] [-T] <vdiname> <size>",
  );
  assert.equal(lines[1], "Options:");
  assert.equal(lines[2], "  -P, --prealloc          preallocate all the data objects");
});

Deno.test("dog rejects a bad port with exit 64 and a bad address with exit 1", async () => {
  const port = await runDogCaptured(["node", "list", "-p", "0"]);
  assert.equal(port.stderr, "Invalid port number '0'\n");
  assert.equal(port.code, 64);
  const addr = await runDogCaptured(["node", "list", "-a", "1.2.3.999"]);
  assert.equal(addr.stderr, "Invalid ip address 1.2.3.999\n");
  assert.equal(addr.code, 1);
});

Deno.test("dog talks to the sheep named by SHEEPDOG_DOG_PORT", async () => {
  const fake = startFake(3);
  try {
    const run = await runDogCaptured(["node", "list", "-r"], {
      fake,
      env: { SHEEPDOG_DOG_PORT: "7002" },
    });
    assert.equal(run.code, 0);
    assert.deepEqual(fake.seen.map((s) => [s.node, s.opcode]), [[2, Op.GET_NODE_LIST]]);
  } finally {
    await fake.stop();
  }
});

Deno.test("dog prints the usage and exits 64 when a required argument is missing", async () => {
  const fake = startFake(1);
  try {
    const run = await runDogCaptured(["vdi", "delete"], { fake });
    assert.ok(run.stderr.startsWith("Usage: dog vdi delete [-s snapshot] "));
    assert.equal(run.code, 64);
  } finally {
    await fake.stop();
  }
});

Deno.test("dog rejects an unknown nested subcommand with its usage and exit 1", async () => {
  const fake = startFake(1);
  try {
    const run = await runDogCaptured(["vdi", "object", "frob", "test"], { fake });
    assert.ok(run.stderr.startsWith("Usage: dog vdi object [-i index] "));
    assert.ok(run.stderr.includes("Available subcommands:\n  location <vdiname>"));
    assert.equal(run.code, 1);
  } finally {
    await fake.stop();
  }
});

Deno.test("dog -T prints the elapsed time after the output", async () => {
  const fake = startFake(1);
  let t = TRANSCRIPT_DATE.getTime();
  try {
    const run = await runDogCaptured(["node", "list", "-r", "-T"], {
      fake,
      now: () => new Date(t += 1250),
    });
    assert.equal(run.stdout, "0 127.0.0.1:7000 128 0\n\nElapsed time: 1.250 seconds\n");
  } finally {
    await fake.stop();
  }
});
