import { startLocalExec } from "../../engine/runtime/local/exec";
import { runCommand } from "../../engine/runtime/shared/commands";

/**
 * The engine's side of a shell (engine/runtime/local/exec.ts) or of a build command
 * (engine/runtime/shared/commands.ts) as a process of its own, which the tests SIGKILL while it
 * runs, as the OOM killer or a crash would the engine. Runs `sh -c $1` (in a pseudo-terminal when
 * $2 is "tty", as a build command when it is "command") with the environment variables in
 * SLIPWAY_EXEC_KILL_ENV (JSON), and passes its output on.
 */
const [script, mode] = process.argv.slice(2);
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...(JSON.parse(process.env.SLIPWAY_EXEC_KILL_ENV ?? "{}") as Record<string, string>) };
const argv = ["sh", "-c", script ?? "true"];
if (mode === "command") {
  void runCommand({ argv, cwd: "/tmp", env, timeoutMs: 600_000, onLine: (_fd, line) => process.stdout.write(`${line}\n`) });
} else {
  const session = startLocalExec(argv, { tty: mode === "tty", cwd: "/tmp", env });
  session.on("data", (chunk: Buffer | string) => process.stdout.write(chunk));
}
