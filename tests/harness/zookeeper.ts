/**
 * Private ZooKeeper servers for tests (Debian `zookeeper`, OpenJDK): a standalone server or an
 * ensemble of three (QuorumPeerMain), each with its own data directory and free ports on
 * 127.0.0.1, -Xmx256m, stopped by pid. Java starts slowly (a second or two): share one server per
 * test file.
 *
 * tickTime is 500 ms, so sessions may be 1 to 10 s long (2 and 20 ticks): short session timeouts
 * keep expiry tests quick.
 *
 * @module
 */

import { freePort } from "./ports.ts";
import { ManagedProcess, sleep } from "./process.ts";
import { type TempDir, tempDir } from "./tempdir.ts";

const CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const READY_DEADLINE_MS = 60_000;
export const ZK_TICK_MS = 500;

/** One server of a ZooKeeper ensemble (or the standalone one). */
export interface ZkServer {
  readonly index: number;
  readonly clientPort: number;
  readonly cfg: string;
  process: ManagedProcess | null;
}

/** True when the ZooKeeper jars and java are installed. */
export function zookeeperInstalled(): boolean {
  try {
    Deno.statSync("/usr/share/java/zookeeper.jar");
    Deno.statSync("/usr/share/java/slf4j-simple.jar");
    return true;
  } catch {
    return false;
  }
}

/** Sends a four-letter command and returns the answer ("" when the server does not answer). */
export async function fourLetter(port: number, cmd: string, deadlineMs = 3000): Promise<string> {
  let conn: Deno.TcpConn | null = null;
  const timer = setTimeout(() => conn?.close(), deadlineMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(cmd));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } catch {
    return "";
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // closed by the timer or the peer
    }
  }
}

/** A private ZooKeeper (standalone or ensemble). */
export class ZooKeeper {
  readonly servers: ZkServer[];
  readonly dir: TempDir;
  readonly standalone: boolean;
  #stopped = false;

  private constructor(servers: ZkServer[], dir: TempDir, standalone: boolean) {
    this.servers = servers;
    this.dir = dir;
    this.standalone = standalone;
  }

  /** "127.0.0.1:P1,127.0.0.1:P2,…" for the clients. */
  get connectString(): string {
    return this.servers.map((s) => `127.0.0.1:${s.clientPort}`).join(",");
  }

  /** Starts a standalone server (n = 1) or an n-server ensemble, and waits until it serves. */
  static async start(n = 1): Promise<ZooKeeper> {
    const dir = await tempDir("zk");
    const servers: ZkServer[] = [];
    const zk = new ZooKeeper(servers, dir, n === 1);
    try {
      const ports = Array.from({ length: n }, () => ({
        client: freePort(),
        peer: freePort(),
        election: freePort(),
      }));
      for (let i = 0; i < n; i++) {
        const data = `${dir.path}/data${i + 1}`;
        await Deno.mkdir(data, { recursive: true });
        const lines = [
          `tickTime=${ZK_TICK_MS}`,
          `dataDir=${data}`,
          `clientPort=${ports[i].client}`,
          "clientPortAddress=127.0.0.1",
          "admin.enableServer=false",
          "4lw.commands.whitelist=ruok,stat,srvr,mntr",
          "maxClientCnxns=0",
        ];
        if (n > 1) {
          await Deno.writeTextFile(`${data}/myid`, `${i + 1}\n`);
          lines.push("initLimit=20", "syncLimit=4");
          for (let j = 0; j < n; j++) {
            lines.push(`server.${j + 1}=127.0.0.1:${ports[j].peer}:${ports[j].election}`);
          }
        }
        const cfg = `${dir.path}/zoo${i + 1}.cfg`;
        await Deno.writeTextFile(cfg, lines.join("\n") + "\n");
        servers.push({ index: i, clientPort: ports[i].client, cfg, process: null });
      }
      for (let i = 0; i < n; i++) zk.startServer(i);
      await zk.waitServing();
      return zk;
    } catch (e) {
      await zk.stop();
      throw e;
    }
  }

  /** Starts server i (again, with its data). Does not wait: see waitServing(). */
  startServer(i: number): void {
    const s = this.servers[i];
    if (s.process?.running) throw new Error(`ZooKeeper server ${i + 1} is running`);
    const main = this.standalone
      ? "org.apache.zookeeper.server.ZooKeeperServerMain"
      : "org.apache.zookeeper.server.quorum.QuorumPeerMain";
    s.process = new ManagedProcess(
      ["java", "-Xmx256m", "-Dzookeeper.jmx.log4j.disable=true", "-cp", CLASSPATH, main, s.cfg],
      { logFile: `${this.dir.path}/zk${i + 1}.log` },
    );
  }

  /** "leader", "follower", "standalone", or null when server i does not serve. */
  async mode(i: number): Promise<string | null> {
    const out = await fourLetter(this.servers[i].clientPort, "srvr");
    return /^Mode: (\w+)/m.exec(out)?.[1] ?? null;
  }

  /** The index of the leader (ensemble), or null. */
  async leader(): Promise<number | null> {
    for (const s of this.servers) if (await this.mode(s.index) === "leader") return s.index;
    return null;
  }

  /** Waits until every running server serves requests. */
  async waitServing(deadlineMs = READY_DEADLINE_MS): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (const s of this.servers) {
      if (!s.process?.running) continue;
      while ((await this.mode(s.index)) === null) {
        if (!s.process.running) {
          throw new Error(`ZooKeeper server ${s.index + 1} exited:\n${s.process.logTail()}`);
        }
        if (Date.now() > end) {
          throw new Error(
            `ZooKeeper server ${s.index + 1} not serving after ${deadlineMs} ms:\n` +
              s.process.logTail(),
          );
        }
        await sleep(100);
      }
    }
  }

  /** SIGKILL server i. */
  async killServer(i: number): Promise<void> {
    await this.servers[i].process?.kill();
  }

  /** Stops server i (SIGTERM, then SIGKILL). */
  async stopServer(i: number): Promise<void> {
    await this.servers[i].process?.stop(10_000);
  }

  /** Stops every server and removes the data. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.servers.map((s) => s.process?.stop(10_000)));
    await this.dir.cleanup();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Starts a private standalone server (n = 1) or an n-server ensemble. */
export function startZooKeeper(n = 1): Promise<ZooKeeper> {
  return ZooKeeper.start(n);
}
