// A private Mosquitto for one test file: its own config, password file and ACL in a fresh temp
// dir, on a free port of 127.0.0.1, killed with the test process if the test forgets.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { mosquittoPasswordHash, mosquittoPasswordLine } from "../../src/devices/mosquitto";
import { freePort } from "./processes";

const MOSQUITTO = "/usr/sbin/mosquitto";

export interface MosquittoUser {
  username: string;
  /** Hashed here with mosquittoPasswordHash; or give `hash` to test a hash made elsewhere. */
  password?: string;
  hash?: string;
}

export interface MosquittoOptions {
  users: MosquittoUser[];
  /** ACL file text; without one every authenticated user may do anything. */
  acl?: string;
  /** Keep sessions and queued messages in a database that survives restart(). */
  persistence?: boolean;
  /** Log every packet (denied publishes and subscribes are only logged at debug level). */
  logAll?: boolean;
}

export interface Mosquitto {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops the broker and starts it again on the same port with the same files. */
  restart(): Promise<void>;
  /** Adds users to the password file and restarts the broker so it reads them. */
  addUsers(users: MosquittoUser[]): Promise<void>;
  /** The broker's log file plus anything it printed before the log file was open. */
  logText(): string;
}

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let reaperInstalled = false;

// A broker left behind would hold its port and keep the CI job alive, so kill every one we
// started when this process ends, however it ends short of SIGKILL.
function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  const killAll = () => {
    for (const child of running) child.kill("SIGKILL");
    running.clear();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  };
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll();
      // Our listener replaced the default action; if nobody else handles it, die as we would have.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export async function startMosquitto(opts: MosquittoOptions): Promise<Mosquitto> {
  installReaper();
  const dir = mkdtempSync(join(tmpdir(), "kincare-mosquitto-"));
  tempDirs.add(dir);
  const removeDir = () => {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };
  const files = {
    conf: join(dir, "mosquitto.conf"),
    passwords: join(dir, "passwords"),
    acl: join(dir, "acl"),
    log: join(dir, "mosquitto.log"),
  };
  const users = [...opts.users];
  const writePasswords = () =>
    writeFileSync(
      files.passwords,
      users
        .map((u) => {
          const hash =
            u.hash ?? (u.password !== undefined ? mosquittoPasswordHash(u.password) : "");
          if (!hash) throw new Error(`user ${u.username} needs a password or a hash`);
          return mosquittoPasswordLine(u.username, hash);
        })
        .join(""),
      { mode: 0o600 },
    );
  writePasswords();
  if (opts.acl !== undefined) writeFileSync(files.acl, opts.acl, { mode: 0o600 });

  let port = 0;
  const writeConf = () =>
    writeFileSync(
      files.conf,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous false",
        `password_file ${files.passwords}`,
        opts.acl !== undefined ? `acl_file ${files.acl}` : "",
        // As root, Mosquitto would otherwise switch to the `mosquitto` user, who cannot read
        // a private temp dir.
        userInfo().uid === 0 ? "user root" : "",
        opts.persistence ? `persistence true\npersistence_location ${dir}/` : "persistence false",
        // The default of 1000 drops QoS 1 messages for a slow subscriber: tests must see every one.
        "max_queued_messages 100000",
        `log_dest file ${files.log}`,
        opts.logAll ? "log_type all" : "log_type error\nlog_type warning\nlog_type notice",
        "log_type information",
        "connection_messages true",
        "",
      ]
        .filter((line) => line !== "")
        .join("\n"),
    );

  let child: ChildProcess | undefined;
  let output = "";

  const launch = async () => {
    writeConf();
    const proc = spawn(MOSQUITTO, ["-c", files.conf], { stdio: ["ignore", "pipe", "pipe"] });
    running.add(proc);
    child = proc;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.once("exit", () => running.delete(proc));
    proc.once("error", (err) => {
      output += `spawn error: ${err.message}\n`;
    });
    const logFrom = readLog().length;
    await waitForListening(port, exited, () => readLog().slice(logFrom), logText);
  };

  const readLog = () => {
    try {
      return readFileSync(files.log, "utf8");
    } catch {
      return "";
    }
  };
  const logText = () => output + readLog();

  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    // Mosquitto writes its persistence file on SIGTERM; give it time before forcing it.
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  // The free port can be taken between picking and binding: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await halt();
      if (attempt >= 3 || !/Address already in use/.test(logText())) {
        removeDir();
        throw err;
      }
    }
  }

  let stopped = false;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    logText,
    restart: async () => {
      await halt();
      await launch();
    },
    addUsers: async (more) => {
      users.push(...more);
      writePasswords();
      await halt();
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await halt();
      removeDir();
    },
  };
}

// Waits for this broker's own "listen socket on port" line as well as an accepted connection,
// so a stranger that took the port in the meantime is not mistaken for our broker.
async function waitForListening(
  port: number,
  exited: Promise<void>,
  newLog: () => string,
  logText: () => string,
): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 10_000;
  const opened = `listen socket on port ${port}.`;
  while (!(newLog().includes(opened) && (await accepts(port)))) {
    if (gone) throw new Error(`mosquitto exited before listening on ${port}:\n${logText()}`);
    if (Date.now() > deadline) throw new Error(`mosquitto not listening on ${port}:\n${logText()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
