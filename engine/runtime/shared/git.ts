import fs from "node:fs/promises";
import path from "node:path";
import { branchProblem, credentialsProblem, type GitCredentials, parseGitUrl, repositoryPathProblem, type GitSource } from "../../protocol";
import { StepError } from "../runtime";
import { runCommand } from "./commands";

export type GitOutput = (fd: "stdout" | "stderr" | "system", text: string) => void;

/** The engine's own rules for git sources: its configuration, never the control plane's word. */
export type GitPolicy = {
  /** Clone `file://` URLs and absolute paths on this host (SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES). */
  allowLocalRepositories: boolean;
};

function allowedTransports(policy: GitPolicy): string[] {
  return ["https", "http", "ssh", "git", ...(policy.allowLocalRepositories ? ["file"] : [])];
}

/**
 * git's configuration for every command the engine runs, on the command line so that nothing
 * else decides it: no hooks, no credential helpers, no fsmonitor (each would run a program), and
 * only the transports that run none beyond git's own (https, http, ssh, git; file where local
 * repositories are allowed). `ext::` and other remote helpers are refused by the allow-list.
 * https://git-scm.com/docs/git-config#Documentation/git-config.txt-protocolallow
 */
export function hardenedGitConfig(policy: GitPolicy): string[] {
  return [
    "core.hooksPath=/dev/null",
    "credential.helper=",
    "core.fsmonitor=false",
    "core.askPass=",
    "protocol.allow=never",
    ...allowedTransports(policy).map((transport) => `protocol.${transport}.allow=always`),
    "protocol.ext.allow=never",
    `protocol.file.allow=${policy.allowLocalRepositories ? "always" : "never"}`,
  ].flatMap((setting) => ["-c", setting]);
}

/**
 * git's environment: no system or user configuration (`url.*.insteadOf` could point a URL
 * elsewhere, `core.sshCommand` run anything), never a prompt, ssh in batch mode, and the same
 * transport allow-list as the configuration (git's `GIT_ALLOW_PROTOCOL` wins over both).
 * Credentials go in as configuration from the environment, scoped to the repository's origin:
 * never in argv (which `ps` shows) or the URL (which git writes to the checkout's config).
 */
export function hardenedGitEnv(base: Record<string, string>, policy: GitPolicy, auth: { origin: string; credentials: GitCredentials } | null) {
  const env: Record<string, string> = {
    ...base,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
    GIT_ALLOW_PROTOCOL: allowedTransports(policy).join(":"),
  };
  if (auth) {
    const basic = Buffer.from(`${auth.credentials.username}:${auth.credentials.password}`).toString("base64");
    Object.assign(env, {
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: `http.${auth.origin}/.extraHeader`,
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    });
  }
  return env;
}

/** What a git source's credentials look like in any line: masked wherever they appear (the token alone, or encoded for the header). */
export function gitCredentialSecrets(git: Pick<GitSource, "url" | "credentials">): string[] {
  const parsed = parseGitUrl(git.url);
  const credentials = git.credentials ?? (parsed.ok ? parsed.value.credentials : null);
  if (!credentials) return [];
  const secrets = [
    credentials.password,
    encodeURIComponent(credentials.password),
    Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64"),
  ];
  // A username is a secret only when it is the token itself (no password beside it).
  if (credentials.password === "") secrets.push(credentials.username, encodeURIComponent(credentials.username));
  return secrets.filter((secret) => secret.length > 0);
}

/**
 * Checks a git source against the protocol's rules and the engine's policy, again: the engine
 * does not trust the control plane with what runs on its host. Returns the URL to give git
 * (credentials taken out) and the credentials for its origin.
 */
export function checkGitSource(git: GitSource, policy: GitPolicy) {
  const parsed = parseGitUrl(git.url);
  if (!parsed.ok) throw new StepError(`git URL refused: ${parsed.message}`);
  const { url, local, origin } = parsed.value;
  if (local && !policy.allowLocalRepositories) {
    throw new StepError(
      `git URL refused: ${url} is a repository on the engine's host, and this engine does not clone local repositories (start it with --allow-local-repositories to allow them)`,
    );
  }
  if ("branch" in git.ref) {
    const problem = branchProblem(git.ref.branch);
    if (problem) throw new StepError(`branch refused: ${problem}`);
  } else if (!/^[0-9a-f]{7,40}$/.test(git.ref.commit)) {
    throw new StepError("commit refused: expected a commit hash (7 to 40 hex digits)");
  }
  const rootProblem = repositoryPathProblem(git.rootDirectory);
  if (rootProblem) throw new StepError(`root directory refused: ${rootProblem}`);
  const credentials = git.credentials ?? parsed.value.credentials;
  if (credentials) {
    const problem = credentialsProblem(parsed.value);
    if (problem) throw new StepError(`git credentials refused: ${problem}`);
  }
  return { url, local, auth: credentials && origin ? { origin, credentials } : null };
}

/**
 * Clones the service's repository at its branch or exact commit into `dir` and returns the
 * resolved full commit. The source is checked first (checkGitSource); git runs with argv arrays,
 * the hardened configuration and environment above, and `--` between its options and the URL
 * (a branch is attached to its option, a commit is hex digits, checked).
 */
export async function cloneRepository(options: {
  git: GitSource;
  policy: GitPolicy;
  dir: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  output: GitOutput;
}): Promise<string> {
  const { url, local, auth } = checkGitSource(options.git, options.policy);
  const env = hardenedGitEnv(options.env, options.policy, auth);
  const config = hardenedGitConfig(options.policy);
  const git = async (args: string[], cwd: string, quiet = false): Promise<{ ok: boolean; stdout: string; detail: string }> => {
    let stdout = "";
    let lastError = "";
    const result = await runCommand({
      argv: ["git", ...config, ...args],
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
  const { ref } = options.git;
  // A local path is copied by git directly (hard links included); through the file transport it is fetched like any remote.
  const noLocal = local ? ["--no-local"] : [];
  await fs.mkdir(path.dirname(options.dir), { recursive: true });

  if ("branch" in ref) {
    options.output("system", `Cloning ${url} at ${ref.branch}`);
    const clone = await git(
      ["clone", ...noLocal, "--depth", "1", "--single-branch", `--branch=${ref.branch}`, "--", url, options.dir],
      path.dirname(options.dir),
    );
    if (!clone.ok) throw new StepError(`git clone of ${url} at ${ref.branch} ${clone.detail}`);
  } else {
    options.output("system", `Cloning ${url} at commit ${ref.commit}`);
    await fs.mkdir(options.dir, { recursive: true });
    const steps = [
      ["init", "--quiet"],
      ["remote", "add", "--", "origin", url],
      ["fetch", "--depth", "1", "--", "origin", ref.commit],
      ["checkout", "--quiet", "--detach", "FETCH_HEAD", "--"],
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
      const clone = await git(["clone", ...noLocal, "--no-checkout", "--", url, options.dir], path.dirname(options.dir));
      if (!clone.ok) throw new StepError(`git clone of ${url} ${clone.detail}`);
      const checkout = await git(["checkout", "--quiet", "--detach", ref.commit, "--"], options.dir);
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
  const problem = repositoryPathProblem(rootDirectory);
  if (problem) throw new StepError(`root directory "${rootDirectory}" refused: ${problem}`);
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
