/**
 * Free TCP ports on 127.0.0.1 for the processes a test starts.
 *
 * Ports are drawn at random below the kernel's ephemeral range (so an outgoing connection cannot
 * take one between the check and the bind), checked by binding them, and never handed out twice by
 * one isolate. Another process can still bind the port before ours does; tests that start a
 * server on a free port should treat "address in use" as a reason to retry with another one.
 *
 * @module
 */

const issued = new Set<number>();

/**
 * 127.0.0.1:7000-7009 are the ports of the golden placement vectors
 * (testdata/placement-vectors.json); the placement test binds them itself, so the free-port
 * helpers never hand them out to another test running at the same time.
 */
export const VECTOR_PORTS = { min: 7000, max: 7010 } as const;

function reserved(port: number): boolean {
  return port >= VECTOR_PORTS.min && port < VECTOR_PORTS.max;
}

function ephemeralLow(): number {
  try {
    const [low] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(
      /\s+/,
    );
    const n = Number(low);
    if (Number.isInteger(n) && n > 1024) return n;
  } catch {
    // not Linux, or no /proc: use the IANA range's start
  }
  return 32768;
}

/** True when a listener can be bound to 127.0.0.1:port right now. */
export function canBind(port: number, hostname = "127.0.0.1"): boolean {
  try {
    const l = Deno.listen({ hostname, port });
    l.close();
    return true;
  } catch {
    return false;
  }
}

/** A free port in [min, max). */
export function freePortInRange(min: number, max: number): number {
  for (let i = 0; i < 500; i++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (issued.has(port) || reserved(port)) continue;
    if (canBind(port)) {
      issued.add(port);
      return port;
    }
  }
  throw new Error(`no free TCP port found on 127.0.0.1 in [${min}, ${max})`);
}

/** A free TCP port on 127.0.0.1 (10000 and up, below the ephemeral range). */
export function freePort(): number {
  const high = ephemeralLow();
  if (high > 10_000 + 1000) return freePortInRange(10_000, high);
  // Odd port range settings: let the kernel choose.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  issued.add(port);
  return port;
}

/**
 * A free TCP port below `limit` (and at least 2000). tgt cuts the port of a `tcp:` sheepdog
 * backing store to four digits, so a sheep that tgt talks to needs `freePortBelow(10000)`.
 */
export function freePortBelow(limit: number): number {
  return freePortInRange(2000, limit);
}

/** True when something accepts TCP connections on host:port. */
export async function isListening(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname, port });
    c.close();
    return true;
  } catch {
    return false;
  }
}
