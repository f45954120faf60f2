import fs from "node:fs/promises";
import path from "node:path";
import type { ApplicationConfig } from "../../protocol";
import { StepError } from "../runtime";
import { runCommand } from "./commands";

export type GitOutput = (fd: "stdout" | "stderr" | "system", text: string) => void;

/**
 * Clones the service's repository at its branch or exact commit into `dir` and returns the
 * resolved full commit. git always runs with argv arrays; the URL was validated by the snapshot
 * schema not to start with "-", and `--` ends options before it anyway.
 */
export async function cloneRepository(options: {
  git: ApplicationConfig["git"];
  dir: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  output: GitOutput;
}): Promise<string> {
  const env: Record<string, string> = {
    ...options.env,
    // Never wait on a password prompt; ssh fails instead of asking about host keys.
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
  };
  const git = async (args: string[], cwd: string, quiet = false): Promise<{ ok: boolean; stdout: string; detail: string }> => {
    let stdout = "";
    let lastError = "";
    const result = await runCommand({
      argv: ["git", ...args],
      cwd,
      env,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      onLine: (fd, line) => {
        if (fd === "stdout") stdout += `${line}\n`;
        else if (line.trim()) lastError = line.trim();
        if (!quiet) options.output(fd, line);
      },
    });
    const detail = result.timedOut ? "timed out" : result.aborted ? "canceled" : `exited with code ${String(result.code)}${lastError ? `: ${lastError}` : ""}`;
    return { ok: result.code === 0, stdout, detail };
  };
  const { url, ref } = options.git;
  await fs.mkdir(path.dirname(options.dir), { recursive: true });

  if ("branch" in ref) {
    options.output("system", `Cloning ${url} at ${ref.branch}`);
    const clone = await git(["clone", "--depth", "1", "--single-branch", "--branch", ref.branch, "--", url, options.dir], path.dirname(options.dir));
    if (!clone.ok) throw new StepError(`git clone of ${url} at ${ref.branch} ${clone.detail}`);
  } else {
    options.output("system", `Cloning ${url} at commit ${ref.commit}`);
    await fs.mkdir(options.dir, { recursive: true });
    const steps = [
      ["init", "--quiet"],
      ["remote", "add", "origin", url],
      ["fetch", "--depth", "1", "origin", ref.commit],
      ["checkout", "--quiet", "--detach", "FETCH_HEAD"],
    ];
    let shallow = true;
    for (const args of steps) {
      // Servers may refuse fetching a sha (or a short one): fall back to a full clone below.
      if (!(await git(args, options.dir, args[0] === "fetch")).ok) {
        shallow = false;
        break;
      }
    }
    if (options.signal.aborted) throw new StepError("clone canceled");
    if (!shallow) {
      options.output("system", "Fetching the commit directly failed; cloning the full history");
      await fs.rm(options.dir, { recursive: true, force: true });
      const clone = await git(["clone", "--no-checkout", "--", url, options.dir], path.dirname(options.dir));
      if (!clone.ok) throw new StepError(`git clone of ${url} ${clone.detail}`);
      const checkout = await git(["checkout", "--quiet", "--detach", ref.commit], options.dir);
      if (!checkout.ok) throw new StepError(`commit ${ref.commit} not found in ${url}: checkout ${checkout.detail}`);
    }
  }
  const head = await git(["rev-parse", "HEAD"], options.dir, true);
  const commit = head.stdout.trim();
  if (!head.ok || !/^[0-9a-f]{40}$/.test(commit)) throw new StepError(`could not resolve the cloned commit: git rev-parse ${head.detail}`);
  if ("commit" in ref && !commit.startsWith(ref.commit)) throw new StepError(`cloned ${commit}, not the requested ${ref.commit}`);
  options.output("system", `Checked out ${commit}`);
  return commit;
}

/** The app directory inside a checkout; refuses a rootDirectory that leaves it (through symlinks too). */
export async function appDirectory(checkout: string, rootDirectory: string): Promise<string> {
  const root = await fs.realpath(checkout);
  let dir: string;
  try {
    dir = await fs.realpath(path.join(checkout, rootDirectory));
  } catch {
    throw new StepError(`root directory "${rootDirectory}" does not exist in the repository`);
  }
  if (dir !== root && !dir.startsWith(`${root}${path.sep}`)) throw new StepError(`root directory "${rootDirectory}" points outside the repository`);
  if (!(await fs.stat(dir)).isDirectory()) throw new StepError(`root directory "${rootDirectory}" is not a directory`);
  return dir;
}
