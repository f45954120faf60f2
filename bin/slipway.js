#!/usr/bin/env node
/**
 * The `slipway` executable. It registers tsx so the TypeScript sources run without a build
 * step (`npx slipway …` from the repository), then runs the CLI. Ctrl-C ends `--follow` and
 * `--watch` cleanly through an AbortSignal; a second Ctrl-C exits at once.
 *
 * `slipway engine` is served here rather than in cli/: the CLI must not import engine code
 * (the engine is a separate program), so the CLI parses the options and calls back into this
 * file, which loads the engine.
 */
import { register } from "tsx/esm/api";

register();

const controller = new AbortController();
const onInterrupt = () => {
  if (controller.signal.aborted) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onInterrupt);

// `slipway logs --json | head`: the reader went away, which is not an error of ours. Quiet, and
// the status a shell pipeline expects of a writer whose reader closed (128 + SIGPIPE).
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(141);
  throw error;
});

async function startEngine(env) {
  // The engine handles SIGINT/SIGTERM itself (it stops its agent and exits).
  process.off("SIGINT", onInterrupt);
  Object.assign(process.env, env);
  const { runEngine } = await import("../engine/main.ts");
  await runEngine(process.env);
}

const { runCli } = await import("../cli/main.ts");
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  // A getter: process.stdin is only created (and read) by the commands that need it (`slipway shell`).
  get stdin() {
    return process.stdin;
  },
  signal: controller.signal,
  startEngine,
});
process.exitCode = code;
process.off("SIGINT", onInterrupt);
