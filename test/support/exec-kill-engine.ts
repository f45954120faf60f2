import { startLocalExec } from "../../engine/runtime/local/exec";

/**
 * The engine's side of a shell (engine/runtime/local/exec.ts) as a process of its own, which
 * engine/runtime/local/exec.test.ts SIGKILLs while the session runs, as the OOM killer or a crash
 * would the engine. Runs `sh -c $1` (a pseudo-terminal when $2 is "tty") with the environment
 * variables in SLIPWAY_EXEC_KILL_ENV (JSON), and passes the session's output on.
 */
const [script, mode] = process.argv.slice(2);
const env = JSON.parse(process.env.SLIPWAY_EXEC_KILL_ENV ?? "{}") as Record<string, string>;
const session = startLocalExec(["sh", "-c", script ?? "true"], {
  tty: mode === "tty",
  cwd: "/tmp",
  env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
});
session.on("data", (chunk: Buffer | string) => process.stdout.write(chunk));
