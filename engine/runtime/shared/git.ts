import fs from "node:fs/promises";
import { COMMIT_SUBJECT_MAX, type CommitInfo, shortenText } from "../../protocol/events";
import path from "node:path";
import {
  branchProblem,
  credentialsProblem,
  type GitCredentials,
  type GitSource,
  type GitTransport,
  isDeployKey,
  parseGitUrl,
  repositoryPathProblem,
  sshKeyProblem,
} from "../../protocol";
import { type GitAuth, gitConfigArgs, gitEnv, withGitAuth } from "../../protocol/git-command";
import { StepError } from "../runtime";
import { runCommand } from "./commands";
import { proxyWithoutCredentials } from "./processes-env";

export type GitOutput = (fd: "stdout" | "stderr" | "system", text: string) => void;

/** The engine's own rules for git sources: its configuration, never the control plane's word. */
export type GitPolicy = {
  /** Clone `file://` URLs and absolute paths on this host (SLIPWAY_ENGINE_ALLOW_LOCAL_REPOSITORIES). */
  allowLocalRepositories: boolean;
  /** Where ssh remembers the host keys of repositories cloned with a deploy key (the engine's own, under its home). */
  sshKnownHostsFile?: string;
};

function allowedTransports(policy: GitPolicy): GitTransport[] {
  return ["https", "http", "ssh", "git", ...(policy.allowLocalRepositories ? (["file"] as const) : [])];
}

/** git's configuration for every command the engine runs (protocol/git-command.ts), with the transports the policy allows. */
export function hardenedGitConfig(policy: GitPolicy): string[] {
  return gitConfigArgs(allowedTransports(policy));
}

/** git's environment for every command the engine runs (protocol/git-command.ts), with a repository's credentials when it has some. */
export function hardenedGitEnv(base: Record<string, string>, policy: GitPolicy, auth: GitAuth | null): Record<string, string> {
  return gitEnv(base, allowedTransports(policy), auth);
}

/**
 * The proxy variable git's libcurl takes for an http(s) repository: `http_proxy` in lower case
 * only for http:// (https://curl.se/libcurl/c/CURLOPT_PROXY.html, "Environment variables"),
 * either case for https://, lower case first. ssh and git:// go direct.
 */
function gitProxyOf(url: string, env: Record<string, string>): { variable: string; proxy: string } | null {
  const scheme = /^(https?):\/\//i.exec(url)?.[1]?.toLowerCase();
  const variables = scheme === "http" ? ["http_proxy"] : scheme === "https" ? ["https_proxy", "HTTPS_PROXY"] : [];
  const variable = variables.find((name) => env[name]);
  return variable ? { variable, proxy: env[variable]! } : null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * What to add to a failed clone's message when git could not connect to the proxy it went
 * through: libcurl names the proxy's host and port as it was given ("Failed to connect to
 * 127.0.0.1 port 3128", "Could not resolve proxy: host"), which reads as the repository's
 * (curl's default port for a proxy that names none is 1080). NO_PROXY needs no reading here:
 * a repository it names fails with the repository's host instead.
 */
export function gitProxyProblem(url: string, env: Record<string, string>, lastError: string): string | null {
  const through = gitProxyOf(url, env);
  if (!through) return null;
  // Its host and port as given: URL would drop a port that is its scheme's default, which curl's is not.
  const given = /^[^:/]+:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^:/]+)(?::(\d+))?/.exec(through.proxy.includes("://") ? through.proxy : `http://${through.proxy}`);
  if (!given?.[1]) return null;
  const host = given[1].replace(/^\[(.*)\]$/, "$1");
  const port = given[2] ?? "\\d+";
  const said = (failure: string) =>
    `: the request went through the proxy ${proxyWithoutCredentials(through.proxy)} (the engine's ${through.variable}), ${failure}`;
  if (lastError.includes(`Could not resolve proxy: ${host}`)) return said("whose host could not be resolved");
  if (new RegExp(`Failed to connect to ${escapeRegExp(host)} port ${port}\\b`).test(lastError))
    return said("which refused the connection or could not be reached");
  return null;
}

/** What a git source's credentials look like in any line: masked wherever they appear (the token alone, or encoded for the header; a deploy key whole and line by line). */
export function gitCredentialSecrets(git: Pick<GitSource, "url" | "credentials">): string[] {
  const parsed = parseGitUrl(git.url);
  const credentials = git.credentials ?? (parsed.ok ? parsed.value.credentials : null);
  if (!credentials) return [];
  if (isDeployKey(credentials)) {
    const key = credentials.sshPrivateKey;
    return [key, key.trim(), ...key.split(/\r?\n/).filter((line) => line.length >= 16 && !line.startsWith("-----"))];
  }
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
 * (credentials taken out), and the credentials with where they may go.
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
  if (git.ref && "branch" in git.ref) {
    const problem = branchProblem(git.ref.branch);
    if (problem) throw new StepError(`branch refused: ${problem}`);
  } else if (git.ref && !/^[0-9a-f]{7,40}$/.test(git.ref.commit)) {
    throw new StepError("commit refused: expected a commit hash (7 to 40 hex digits)");
  }
  const rootProblem = repositoryPathProblem(git.rootDirectory);
  if (rootProblem) throw new StepError(`root directory refused: ${rootProblem}`);
  const credentials: GitCredentials | null = git.credentials ?? parsed.value.credentials;
  if (credentials) {
    const deployKey = isDeployKey(credentials);
    const problem = credentialsProblem(parsed.value, deployKey ? "deploy key" : "token");
    if (problem) throw new StepError(`git credentials refused: ${problem}`);
    const keyProblem = deployKey ? sshKeyProblem(credentials.sshPrivateKey) : null;
    if (keyProblem) throw new StepError(`deploy key refused: ${keyProblem}`);
  }
  return { url, local, origin, credentials };
}

/** What a clone checked out: the full commit, and the branch when the repository's default branch was cloned (the service named none). */
export type ClonedSource = { commit: string; defaultBranch: string | null; info: CommitInfo | null };

/**
 * Clones the service's repository at its branch, its default branch (no ref) or an exact commit
 * into `dir`. The source is checked first (checkGitSource); git runs with argv arrays, the
 * hardened configuration and environment above, and `--` between its options and the URL (a
 * branch is attached to its option, a commit is hex digits, checked).
 */
export async function cloneRepository(options: {
  git: GitSource;
  policy: GitPolicy;
  dir: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  output: GitOutput;
}): Promise<ClonedSource> {
  const { url, local, origin, credentials } = checkGitSource(options.git, options.policy);
  return withGitAuth(credentials, origin, options.policy.sshKnownHostsFile, (auth) =>
    cloneWith({ ...options, url, local, env: hardenedGitEnv(options.env, options.policy, auth) }),
  );
}

async function cloneWith(options: {
  git: GitSource;
  policy: GitPolicy;
  url: string;
  local: boolean;
  dir: string;
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  output: GitOutput;
}): Promise<ClonedSource> {
  const { url, env } = options;
  const config = hardenedGitConfig(options.policy);
  const git = async (args: string[], cwd: string, quiet = false): Promise<{ ok: boolean; stdout: string; detail: string; lastError: string }> => {
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
    return { ok: result.code === 0, stdout, detail, lastError };
  };
  const { ref } = options.git;
  // A local path is copied by git directly (hard links included); through the file transport it is fetched like any remote.
  const noLocal = options.local ? ["--no-local"] : [];
  await fs.mkdir(path.dirname(options.dir), { recursive: true });
  let defaultBranch: string | null = null;

  if (!ref || "branch" in ref) {
    // Without a branch, git clones the one the remote's HEAD names: the repository's default branch.
    const at = ref ? ref.branch : "its default branch";
    options.output("system", `Cloning ${url} at ${at}`);
    const clone = await git(
      ["clone", ...noLocal, "--depth", "1", "--single-branch", ...(ref ? [`--branch=${ref.branch}`] : []), "--", url, options.dir],
      path.dirname(options.dir),
    );
    if (!clone.ok) throw new StepError(`git clone of ${url} at ${at} ${clone.detail}${gitProxyProblem(url, env, clone.lastError) ?? ""}`);
    if (!ref) {
      const head = await git(["symbolic-ref", "--quiet", "--short", "HEAD"], options.dir, true);
      defaultBranch = head.stdout.trim();
      if (!head.ok || defaultBranch === "") throw new StepError(`${url} names no default branch (its HEAD is not a branch): set the service's branch`);
      options.output("system", `The repository's default branch is ${defaultBranch}`);
    }
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
      if (!clone.ok) throw new StepError(`git clone of ${url} ${clone.detail}${gitProxyProblem(url, env, clone.lastError) ?? ""}`);
      const checkout = await git(["checkout", "--quiet", "--detach", ref.commit, "--"], options.dir);
      if (!checkout.ok) throw new StepError(`commit ${ref.commit} not found in ${url}: checkout ${checkout.detail}`);
    }
  }
  const head = await git(["rev-parse", "--verify", "--quiet", "HEAD"], options.dir, true);
  const commit = head.stdout.trim();
  if (defaultBranch !== null && !head.ok) {
    // git clones an empty repository, or one whose HEAD names a branch that does not exist, without a word of error.
    throw new StepError(`${url} has no commit on its default branch ${defaultBranch}: push to it, or set the service's branch`);
  }
  if (!head.ok || !/^[0-9a-f]{40}$/.test(commit)) throw new StepError(`could not resolve the cloned commit: git rev-parse ${head.detail}`);
  if (ref && "commit" in ref && !commit.startsWith(ref.commit)) throw new StepError(`cloned ${commit}, not the requested ${ref.commit}`);
  options.output("system", `Checked out ${commit}`);
  // Its subject and author, for the history: fields split by the unit separator, which a subject cannot hold.
  const described = await git(["log", "-1", "--format=%s%x1f%an%x1f%aI", commit, "--"], options.dir, true);
  const [subject, author, authoredAt] = described.ok ? described.stdout.trim().split("\x1f") : [];
  const info =
    subject !== undefined && author !== undefined
      ? { subject: shortenText(subject, COMMIT_SUBJECT_MAX), author: shortenText(author, 200), ...(authoredAt ? { authoredAt } : {}) }
      : null;
  await removeGitDirectory(options.dir);
  options.output(
    "system",
    `Removed .git from the checkout: the release holds the source of ${commit.slice(0, 7)}, not its history (SLIPWAY_GIT_COMMIT and SOURCE_VERSION name the commit)`,
  );
  return { commit, defaultBranch, info };
}

/**
 * Takes the repository out of a checkout once its commit is known, as Heroku's slug and a Docker
 * build context leave it out: an app that serves its working directory (Python's http.server,
 * `express.static(__dirname)`) would otherwise serve /.git/config and the whole history. Builds
 * and apps read the commit from SLIPWAY_GIT_COMMIT (or SOURCE_VERSION, Heroku's name for it).
 */
async function removeGitDirectory(checkout: string): Promise<void> {
  try {
    await fs.rm(path.join(checkout, ".git"), { recursive: true, force: true });
  } catch (error) {
    throw new StepError(`could not remove .git from the checkout: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The commit a release was built from, for builds and apps that would ask git (a build id, an
 * error tracker's release): the checkout has no .git. SOURCE_VERSION is Heroku's name for it
 * (https://devcenter.heroku.com/articles/buildpack-api#bin-compile), which tools already read.
 */
export function commitEnv(commit: string | undefined): Record<string, string> {
  return commit ? { SLIPWAY_GIT_COMMIT: commit, SOURCE_VERSION: commit } : {};
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
