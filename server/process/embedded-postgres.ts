import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { AppError } from "../errors";
import { describeExit, type SupervisedChild, type Supervisor } from "./supervisor";

/**
 * The embedded PostgreSQL of `npm start` runs under a small child process of its own
 * (embedded-postgres-child.ts) rather than inside the supervisor:
 * - as a supervised child it is in its own process group, so Ctrl-C reaches the supervisor only
 *   and PostgreSQL stops last, after the processes that use it, instead of under them;
 * - the child stops PostgreSQL cleanly when its IPC channel closes, so even a supervisor killed
 *   with SIGKILL does not leave a server holding the data directory's lock.
 */
export const hostRequest = z.discriminatedUnion("type", [
  z.object({ type: z.literal("start"), dataDir: z.string(), port: z.number().int(), password: z.string(), logFile: z.string() }),
]);
export type HostRequest = z.infer<typeof hostRequest>;

export const hostReply = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready"), connectionString: z.string() }),
  z.object({ type: z.literal("failed"), message: z.string(), log: z.array(z.string()) }),
]);
export type HostReply = z.infer<typeof hostReply>;

const here = path.dirname(fileURLToPath(import.meta.url));
const childScript = path.join(here, "embedded-postgres-child.ts");
// `--import tsx` resolves from the working directory: the repository root has node_modules.
const repoRoot = path.resolve(here, "..", "..");

export type EmbeddedPostgresChild = { connectionString: string; child: SupervisedChild };

/**
 * Starts the host under the supervisor and waits until its server accepts connections. The host
 * exits when its server dies, and the supervisor then starts it again (with its data, on its
 * port): each new host is sent the same start request, and says when its server is up again.
 */
export async function startEmbeddedPostgresChild(
  supervisor: Supervisor,
  options: { dataDir: string; port: number; password: string; logFile: string; timeoutMs?: number },
): Promise<EmbeddedPostgresChild> {
  const request: HostRequest = { type: "start", dataDir: options.dataDir, port: options.port, password: options.password, logFile: options.logFile };
  let first = true;
  let resolveFirst: (reply: HostReply) => void = () => {};
  const firstReply = new Promise<HostReply>((resolve) => {
    resolveFirst = resolve;
  });
  const child = supervisor.start({
    name: "postgres",
    command: process.execPath,
    args: ["--import", "tsx", childScript],
    cwd: repoRoot,
    ipc: true,
    // A fast shutdown takes well under a second; a checkpoint on a busy server can take longer.
    stopTimeoutMs: 30_000,
    // Never SIGKILL the host: PostgreSQL would keep running, orphaned. SIGTERM again is safe.
    forceSignal: "SIGTERM",
    readyWhen: (message) => hostReply.safeParse(message).data?.type === "ready",
    onSpawn(host) {
      host.on("message", (message) => {
        const reply = hostReply.safeParse(message);
        if (!reply.success) return supervisor.print("postgres", "its host sent a message this process cannot read");
        if (first) {
          first = false;
          return resolveFirst(reply.data);
        }
        if (reply.data.type === "ready") supervisor.print("postgres", "PostgreSQL is up again");
      });
      host.send(request);
    },
  });
  const answer = await new Promise<HostReply>((resolve, reject) => {
    void firstReply.then(resolve);
    void child.exited.then((exit) => reject(new AppError("UNAVAILABLE", `The embedded PostgreSQL host exited (${describeExit(exit)})`)));
    setTimeout(() => reject(new AppError("UNAVAILABLE", "The embedded PostgreSQL did not start within its timeout")), options.timeoutMs ?? 120_000).unref();
  });
  if (answer.type === "failed") {
    const log = answer.log.length > 0 ? `\nLast lines of ${options.logFile}:\n${answer.log.join("\n")}` : "";
    throw new AppError("UNAVAILABLE", `The embedded PostgreSQL did not start: ${answer.message}${log}`);
  }
  return { connectionString: answer.connectionString, child };
}
