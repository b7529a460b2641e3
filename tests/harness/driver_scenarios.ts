/**
 * Scenarios every real cluster driver must pass the same way (tests/corosync_sheep_test.ts and
 * tests/zookeeper_sheep_test.ts run them on their driver): three sheep, cluster ops and I/O, a
 * SIGKILLed sheep that leaves and rejoins.
 *
 * @module
 */

import { newVdi, waitEpoch } from "./cluster_ops.ts";
import { assertSameBytes, randomBytes } from "./proto.ts";
import { type Cluster, runDogOk, type SheepProcess, startSheep } from "./sheep.ts";
import { medianOf, reportTiming } from "./timing.ts";

const MIB = 1024 * 1024;

/** Starts sheep `i` of `c` again on its store, port and zone (a restart by its service manager). */
export function restartSheep(c: Cluster, i: number): SheepProcess {
  const old = c.sheep[i];
  return startSheep({
    dir: old.dir,
    port: c.ports[i],
    zone: i,
    cluster: c.clusterSpec,
    logFile: `${old.dir}.again.log`,
  });
}

/** Options of {@linkcode killAndRejoin}. */
export interface KillAndRejoinOptions {
  /** Driver name for the timing lines. */
  driver: string;
  /** Deadline for the survivors to reach the epoch after the kill (a session timeout and more). */
  leaveDeadlineMs: number;
  /** Checks on the NEW_VDI latencies (ms), e.g. that watches rather than polls drive them. */
  checkLatencies?: (ms: number[]) => void;
  /** Appended to the timing line of the membership change. */
  leaveNote?: string;
}

/**
 * On a formatted 3-sheep cluster `c` at epoch 1 (copies 2): twelve NEW_VDI through the three
 * sheep in turn (latencies reported with SD_TIMING), a VDI written through sheep 1 and read back
 * through sheep 0; sheep 2 SIGKILLed: the others move to epoch 2 and still read the data; sheep 2
 * restarted: epoch 3 everywhere, and the data reads back through it.
 */
export async function killAndRejoin(c: Cluster, o: KillAndRejoinOptions): Promise<void> {
  const lat: number[] = [];
  for (let i = 0; i < 12; i++) {
    lat.push((await newVdi(c.ports[i % 3], `lat${i}`, 4n * BigInt(MIB))).ms);
  }
  o.checkLatencies?.(lat);
  reportTiming(`${o.driver}: NEW_VDI (cluster op), median / max ms`, [
    +medianOf(lat).toFixed(2),
    +Math.max(...lat).toFixed(2),
  ]);
  await runDogOk(["vdi", "create", "v", "64M"], { port: c.ports[0] });
  const data = randomBytes(8 * MIB);
  await runDogOk(["vdi", "write", "v", "0", String(data.length)], {
    port: c.ports[1],
    stdin: data,
  });
  const readVia = async (i: number, what: string) => {
    const r = await runDogOk(["vdi", "read", "v", "0", String(data.length)], { port: c.ports[i] });
    assertSameBytes(r.stdout, data, what);
  };
  await readVia(0, "read through another sheep");

  const t0 = performance.now();
  await c.sheep[2].kill();
  const seen = await waitEpoch([c.ports[0], c.ports[1]], 2, o.leaveDeadlineMs, t0);
  reportTiming(
    `${o.driver}: SIGKILL → new epoch on every other sheep ms${o.leaveNote ?? ""}`,
    Math.round(Math.max(...seen)),
  );
  await readVia(0, "read after the death");

  const again = restartSheep(c, 2);
  try {
    await again.waitReady();
    await waitEpoch(c.ports, 3, 20_000);
    await readVia(2, "read through the restarted sheep");
  } finally {
    await again.stop();
  }
}
