import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { createFakeSsh, type FakeSsh, generateDeployKey } from "../../../test/support/fake-ssh";
import { startConnectProxy } from "../../../test/support/connect-proxy";
import { testPort } from "../../../test/support/ports";
import type { GitSource } from "../../protocol";
import { StepError } from "../runtime";
import { childEnv } from "./processes-env";
import { appDirectory, cloneRepository, gitCredentialSecrets, type GitPolicy, hardenedGitConfig, hardenedGitEnv } from "./git";

const run = promisify(execFile);
const USER = "deploy-bot";
const TOKEN = "glpat-s3cr3t-t0ken-4417";

let dir: string;
let open: GitServer;
let privateServer: GitServer;
let app: string;
let bare: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-git-test-"));
  app = path.join(dir, "app");
  await fs.mkdir(app);
  await fs.writeFile(path.join(app, "index.html"), "hello\n");
  await fs.mkdir(path.join(app, "web"));
  await fs.writeFile(path.join(app, "web", "page.html"), "page\n");
  // A symlink out of the repository: a root directory through it must be refused.
  await fs.symlink("/etc", path.join(app, "escape"));
  open = await startGitServer();
  await open.createRepo("site", app);
  privateServer = await startGitServer({ basicAuth: { username: USER, password: TOKEN } });
  await privateServer.createRepo("private", app);
  bare = open.repoPath("site");
});

afterAll(async () => {
  await open?.close();
  await privateServer?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const remoteOnly: GitPolicy = { allowLocalRepositories: false };
const localToo: GitPolicy = { allowLocalRepositories: true };
let checkouts = 0;

/** Clones into a fresh directory, with only PATH and HOME as the engine passes them; what git printed is kept. */
async function clone(git: Partial<GitSource> & { url: string }, policy = remoteOnly, env: Record<string, string> = {}) {
  const target = path.join(dir, "checkouts", String(checkouts++));
  const lines: string[] = [];
  const source: GitSource = { ref: { branch: "main" }, rootDirectory: "", ...git };
  const run = cloneRepository({
    git: source,
    policy,
    dir: target,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...env },
    timeoutMs: 20_000,
    signal: new AbortController().signal,
    output: (_fd, text) => lines.push(text),
  });
  return { target, lines, run };
}

async function refusal(git: Partial<GitSource> & { url: string }, policy = remoteOnly): Promise<string> {
  const { run, target } = await clone(git, policy);
  const error = await run.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StepError);
  // Refused before git ran: nothing was cloned.
  await expect(fs.stat(target)).rejects.toMatchObject({ code: "ENOENT" });
  return (error as Error).message;
}

const exists = (file: string) =>
  fs.stat(file).then(
    () => true,
    () => false,
  );

describe("git input the engine refuses before git runs, with the message the deployment shows", () => {
  it("refuses ext:: and every other transport git would run a command for", async () => {
    const marker = path.join(dir, "ext-ran");
    expect(await refusal({ url: `ext::sh -c touch% ${marker}` })).toBe(
      'git URL refused: "ext::" URLs are refused: git runs a command for them; use an https, ssh or git URL',
    );
    expect(await refusal({ url: "fd::17" })).toBe('git URL refused: "fd::" URLs are refused: git runs a command for them; use an https, ssh or git URL');
    expect(await refusal({ url: "persistent-https://example.com/app.git" })).toBe(
      'git URL refused: "persistent-https://" URLs are refused: use an https, ssh or git URL (file:// only on a cluster whose ADMIN allowed local repositories)',
    );
    expect(await exists(marker)).toBe(false);
  });

  it("refuses URLs git would read as options", async () => {
    expect(await refusal({ url: "--upload-pack=touch /tmp/pwned" })).toBe("git URL refused: must not start with '-': git would read it as an option");
    expect(await refusal({ url: "ssh://-oProxyCommand=touch%20pwned/app.git" })).toBe(
      "git URL refused: the host must not start with '-': git would read it as an option",
    );
    expect(await refusal({ url: "git@-oProxyCommand=pwned:app.git" })).toBe(
      "git URL refused: the host must not start with '-': git would read it as an option",
    );
    expect(await refusal({ url: "git@github.com:-x.git" })).toBe("git URL refused: the repository path after ':' must not be empty or start with '-'");
  });

  it("refuses file:// URLs and paths on this host unless the engine allows local repositories", async () => {
    const local =
      "git URL refused: %s is a repository on the engine's host, and this engine does not clone local repositories (start it with --allow-local-repositories to allow them)";
    expect(await refusal({ url: `file://${bare}` })).toBe(local.replace("%s", `file://${bare}`));
    expect(await refusal({ url: bare })).toBe(local.replace("%s", bare));
    expect(await refusal({ url: "../other-service/src" }, localToo)).toBe(
      "git URL refused: expected an https, ssh or git URL (file:// only on a cluster whose ADMIN allowed local repositories)",
    );
  });

  it("refuses branches, commits and root directories that start with -, contain .. or leave the repository", async () => {
    const url = open.url("site");
    expect(await refusal({ url, ref: { branch: "--upload-pack=touch pwned" } })).toBe(
      "branch refused: must not start with '-': git would read it as an option",
    );
    expect(await refusal({ url, ref: { branch: "main/../../HEAD" } })).toBe("branch refused: must not contain '..'");
    expect(await refusal({ url, ref: { commit: "--orphan" } })).toBe("commit refused: expected a commit hash (7 to 40 hex digits)");
    expect(await refusal({ url, rootDirectory: "-x" })).toBe("root directory refused: must not start with '-'");
    expect(await refusal({ url, rootDirectory: "web/../../other" })).toBe(
      "root directory refused: must not contain '..': the path must stay inside the repository",
    );
    expect(await refusal({ url, rootDirectory: "/etc" })).toBe("root directory refused: must be a path inside the repository, relative to its root");
  });

  it("refuses credentials that would cross the network in clear, or that git cannot use", async () => {
    expect(await refusal({ url: "http://git.example.com/app.git", credentials: { username: USER, password: TOKEN } })).toBe(
      "git credentials refused: credentials are sent only over https: use an https URL",
    );
    expect(await refusal({ url: "ssh://git@example.com/app.git", credentials: { username: USER, password: TOKEN } })).toBe(
      "git credentials refused: a token is for https URLs; an ssh URL takes a deploy key (sshPrivateKey), or the engine's own ssh keys are used",
    );
    expect(await refusal({ url: `ssh://git:${TOKEN}@example.com/app.git` })).toBe(
      "git URL refused: ssh URLs take no password: give a deploy key (sshPrivateKey), or the engine's own ssh keys are used",
    );
  });
});

describe("git as the engine runs it", () => {
  it("clones a branch and a commit of an https-style remote, and a local repository only where allowed", async () => {
    const branch = await clone({ url: open.url("site") });
    const { commit } = await branch.run;
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await fs.readFile(path.join(branch.target, "index.html"), "utf8")).toBe("hello\n");
    expect(branch.lines).toContain(`Cloning ${open.url("site")} at main`);

    const exact = await clone({ url: open.url("site"), ref: { commit: commit.slice(0, 12) } });
    // With what the commit says of itself, for the deployment's history.
    expect(await exact.run).toEqual({
      commit,
      defaultBranch: null,
      info: { subject: expect.any(String), author: "Slipway Test", authoredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    });

    for (const url of [`file://${bare}`, bare]) {
      const local = await clone({ url }, localToo);
      expect((await local.run).commit).toBe(commit);
    }
  });

  it("leaves no .git in the checkout, whichever way the commit was fetched: an app serving its directory would serve the history", async () => {
    const branch = await clone({ url: open.url("site") });
    const { commit } = await branch.run;
    const exact = await clone({ url: open.url("site"), ref: { commit } });
    await exact.run;
    // A short sha the server will not fetch directly: the full clone, then the checkout.
    const full = await clone({ url: `file://${bare}`, ref: { commit: commit.slice(0, 8) } }, localToo);
    await full.run;
    for (const checkout of [branch, exact, full]) {
      expect(await fs.readdir(checkout.target)).toEqual(expect.arrayContaining(["index.html", "web"]));
      expect(await exists(path.join(checkout.target, ".git"))).toBe(false);
      expect(checkout.lines).toContain(
        `Removed .git from the checkout: the release holds the source of ${commit.slice(0, 7)}, not its history (SLIPWAY_GIT_COMMIT and SOURCE_VERSION name the commit)`,
      );
    }
  });

  it("leaves git no transport that runs a command, even when handed one", async () => {
    // The engine's configuration on its own, without the URL check: git refuses the transports itself.
    const marker = path.join(dir, "ext-git-ran");
    const env = hardenedGitEnv({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, remoteOnly, null);
    const attempt = (url: string, policy: GitPolicy) =>
      run("git", [...hardenedGitConfig(policy), "clone", "--", url, path.join(dir, "checkouts", String(checkouts++))], {
        env: childEnv(policy === remoteOnly ? env : hardenedGitEnv({ PATH: env.PATH!, HOME: dir }, policy, null)),
      }).then(
        () => "cloned",
        (error: { stderr: string }) => error.stderr.trim(),
      );
    expect(await attempt(`ext::sh -c touch% ${marker}`, remoteOnly)).toMatch(/transport 'ext' not allowed/);
    expect(await attempt(`ext::sh -c touch% ${marker}`, localToo)).toMatch(/transport 'ext' not allowed/);
    expect(await exists(marker)).toBe(false);
    expect(await attempt(`file://${bare}`, remoteOnly)).toMatch(/transport 'file' not allowed/);
    expect(await attempt(`file://${bare}`, localToo)).toBe("cloned");
  });

  it("runs no hook, credential helper or URL rewrite of the host's git configuration", async () => {
    const home = path.join(dir, "home");
    const hooks = path.join(home, "hooks");
    await fs.mkdir(hooks, { recursive: true });
    const hookRan = path.join(dir, "hook-ran");
    const helperRan = path.join(dir, "helper-ran");
    await fs.writeFile(path.join(hooks, "post-checkout"), `#!/bin/sh\ntouch ${hookRan}\n`, { mode: 0o755 });
    await fs.writeFile(
      path.join(home, ".gitconfig"),
      [
        "[core]",
        `\thooksPath = ${hooks}`,
        "[credential]",
        `\thelper = "!f() { touch ${helperRan}; }; f"`,
        `[url "${open.url("site")}"]`,
        `\tinsteadOf = https://rewritten.example/app.git`,
      ].join("\n"),
    );
    // The same configuration does run them for git as a user runs it: the test can fail.
    const plain = async (url: string) =>
      run("git", ["clone", "--", url, path.join(dir, "checkouts", String(checkouts++))], {
        env: childEnv({ PATH: process.env.PATH ?? "", HOME: home, GIT_TERMINAL_PROMPT: "0" }),
      }).then(
        () => "cloned",
        () => "failed",
      );
    expect(await plain("https://rewritten.example/app.git")).toBe("cloned");
    expect(await plain(privateServer.url("private"))).toBe("failed");
    expect([await exists(hookRan), await exists(helperRan)]).toEqual([true, true]);
    await fs.rm(hookRan);
    await fs.rm(helperRan);

    const withHooks = await clone({ url: open.url("site") }, remoteOnly, { HOME: home });
    await withHooks.run;
    const withHelper = await clone({ url: privateServer.url("private") }, remoteOnly, { HOME: home });
    await expect(withHelper.run).rejects.toThrow(/git clone of http:\/\/127\.0\.0\.1:\d+\/private\.git at main exited with code 128/);
    const rewritten = await clone({ url: "https://rewritten.example/app.git" }, remoteOnly, { HOME: home });
    await expect(rewritten.run).rejects.toThrow(/git clone of https:\/\/rewritten\.example\/app\.git at main exited with code 128: fatal: unable to access/);
    expect([await exists(hookRan), await exists(helperRan)]).toEqual([false, false]);
  });

  it("gives a repository's credentials to git at clone time only, never in its URL, argv, checkout or output", async () => {
    const url = privateServer.url("private");
    // A git in front of the real one records every argv the engine runs git with.
    const wrapper = path.join(dir, "wrapper");
    const argvLog = path.join(dir, "argv.log");
    await fs.mkdir(wrapper, { recursive: true });
    const { stdout: realGit } = await run("sh", ["-c", "command -v git"]);
    await fs.writeFile(path.join(wrapper, "git"), `#!/bin/sh\necho "$@" >> ${argvLog}\nexec ${realGit.trim()} "$@"\n`, { mode: 0o755 });
    const given = await clone({ url, credentials: { username: USER, password: TOKEN } }, remoteOnly, { PATH: `${wrapper}:${process.env.PATH}` });
    const { commit } = await given.run;
    expect(await fs.readFile(argvLog, "utf8")).toMatch(/core\.hooksPath=\/dev\/null .* clone --depth 1 --single-branch --branch=main -- http:/);
    expect(await fs.readFile(argvLog, "utf8")).not.toContain(TOKEN);
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
    // A URL with the credentials inside works too (as older services stored it), and shows without them.
    const inUrl = await clone({ url: url.replace("http://", `http://${USER}:${encodeURIComponent(TOKEN)}@`) });
    expect((await inUrl.run).commit).toBe(commit);
    expect(inUrl.lines).toContain(`Cloning ${url} at main`);
    for (const checkout of [given, inUrl]) {
      expect(checkout.lines.join("\n")).not.toContain(TOKEN);
      // The repository's configuration (its remote URL among it) does not stay in the checkout at all.
      expect(await exists(path.join(checkout.target, ".git"))).toBe(false);
    }
    const env = hardenedGitEnv({}, remoteOnly, { kind: "token", origin: "http://127.0.0.1:1234", credentials: { username: USER, password: TOKEN } });
    expect(hardenedGitConfig(remoteOnly).join(" ")).not.toContain(TOKEN);
    expect(env.GIT_CONFIG_KEY_0).toBe("http.http://127.0.0.1:1234/.extraHeader");

    const wrong = await clone({ url, credentials: { username: USER, password: "not-the-token" } });
    const failure = await wrong.run.then(
      () => "cloned",
      (error: Error) => error.message,
    );
    expect(failure).toMatch(/^git clone of http:\/\/127\.0\.0\.1:\d+\/private\.git at main exited with code 128/);
    expect(failure).not.toContain("not-the-token");
    const anonymous = await clone({ url });
    await expect(anonymous.run).rejects.toThrow(/exited with code 128/);
  });
});

describe("a repository's default branch", () => {
  beforeAll(async () => {
    const other = path.join(dir, "other");
    await fs.mkdir(other, { recursive: true });
    await fs.writeFile(path.join(other, "index.html"), "not the default branch\n");
    await open.createRepo("legacy", app, { "branch.txt": "master\n" }, "master");
    // trunk is the default; a main branch beside it must not be the one cloned.
    await open.createRepo("trunk", app, { "branch.txt": "trunk\n" }, "trunk");
    await open.pushDirectory("trunk", other, {}, "main");
    await run("git", ["init", "--quiet", "--bare", "--initial-branch", "main", open.repoPath("empty")]);
  });

  it("is cloned when the service names no branch, and said", async () => {
    for (const [repo, branch] of [
      ["legacy", "master"],
      ["trunk", "trunk"],
    ] as const) {
      const checkout = await clone({ url: open.url(repo), ref: undefined });
      const cloned = await checkout.run;
      expect(cloned).toMatchObject({ commit: expect.stringMatching(/^[0-9a-f]{40}$/), defaultBranch: branch });
      expect(await fs.readFile(path.join(checkout.target, "branch.txt"), "utf8")).toBe(`${branch}\n`);
      expect(checkout.lines).toContain(`Cloning ${open.url(repo)} at its default branch`);
      expect(checkout.lines).toContain(`The repository's default branch is ${branch}`);
    }
    // A branch named explicitly is the one cloned, and no default branch is reported.
    const main = await clone({ url: open.url("trunk"), ref: { branch: "main" } });
    expect((await main.run).defaultBranch).toBeNull();
    expect(await fs.readFile(path.join(main.target, "index.html"), "utf8")).toBe("not the default branch\n");
  });

  it("of an empty repository is a clear failure, not a build of nothing", async () => {
    const checkout = await clone({ url: open.url("empty"), ref: undefined });
    await expect(checkout.run).rejects.toThrow(`${open.url("empty")} has no commit on its default branch main: push to it, or set the service's branch`);
  });
});

describe("deploy keys", () => {
  let ssh: FakeSsh;
  let key: string;
  let knownHosts: string;
  let policy: GitPolicy;
  let sshPath: string;
  beforeAll(async () => {
    ssh = await createFakeSsh(dir);
    key = await generateDeployKey(dir, "deploy_key");
    knownHosts = path.join(dir, "engine-home", "ssh", "known_hosts");
    policy = { allowLocalRepositories: false, sshKnownHostsFile: knownHosts };
    sshPath = `${ssh.dir}:${process.env.PATH}`;
  });

  it("reach git's ssh in a 0600 file of a private directory, only while git runs, with the engine's known_hosts", async () => {
    const url = `ssh://git@fake-host${bare}`;
    const checkout = await clone({ url, credentials: { sshPrivateKey: key } }, policy, { PATH: sshPath });
    const cloned = await checkout.run;
    expect(cloned.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await fs.readFile(path.join(checkout.target, "index.html"), "utf8")).toBe("hello\n");

    const [first] = await ssh.runs();
    expect(first!.args).toEqual(
      expect.arrayContaining([
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=accept-new",
        `UserKnownHostsFile="${knownHosts}"`,
        `IdentityFile="${first!.identityFile}"`,
        "git@fake-host",
      ]),
    );
    expect(first!.args.at(-1)).toBe(`git-upload-pack '${bare}'`);
    expect({ key: first!.keyMode, dir: first!.keyDirMode, line: first!.keyFirstLine }).toEqual({
      key: "600",
      dir: "700",
      line: "-----BEGIN OPENSSH PRIVATE KEY-----",
    });
    // Gone once git is done; the known_hosts directory is the engine's, kept.
    expect(await exists(first!.identityFile!)).toBe(false);
    expect(await exists(path.dirname(first!.identityFile!))).toBe(false);
    expect(await exists(path.dirname(knownHosts))).toBe(true);
    // The key is nowhere in what git printed, nor in the checkout.
    expect(checkout.lines.join("\n")).not.toContain(key.split("\n")[1]);
    expect(await exists(path.join(checkout.target, ".git"))).toBe(false);
  });

  it("is removed after a clone that fails too", async () => {
    const before = (await ssh.runs()).length;
    const checkout = await clone({ url: `ssh://git@fake-host${dir}/no-such-repo.git`, credentials: { sshPrivateKey: key } }, policy, { PATH: sshPath });
    await expect(checkout.run).rejects.toThrow(/git clone of ssh:\/\/git@fake-host.*no-such-repo\.git at main exited with code 128/);
    const failed = (await ssh.runs())[before]!;
    expect(failed.keyMode).toBe("600");
    expect(await exists(path.dirname(failed.identityFile!))).toBe(false);
  });

  it("are refused before git runs when they cannot work: a passphrase, a public key, an https URL", async () => {
    const url = `ssh://git@fake-host${bare}`;
    const withPassphrase = await generateDeployKey(dir, "protected_key", "a passphrase");
    expect(await refusal({ url, credentials: { sshPrivateKey: withPassphrase } }, policy)).toBe(
      "deploy key refused: the key has a passphrase, which nobody can type at deploy time: remove it (ssh-keygen -p -N '' -f <file>) or make a key without one",
    );
    const publicKey = await fs.readFile(path.join(dir, "deploy_key.pub"), "utf8");
    expect(await refusal({ url, credentials: { sshPrivateKey: publicKey } }, policy)).toBe(
      "deploy key refused: this is a public key: give the private key (the file without .pub) and add the public one to the repository",
    );
    expect(await refusal({ url: open.url("site"), credentials: { sshPrivateKey: key } }, policy)).toBe(
      "git credentials refused: a deploy key is for ssh URLs (ssh://… or git@host:path); an https URL takes a token",
    );
  });

  it("are masked whole and line by line", () => {
    const secrets = gitCredentialSecrets({ url: "git@example.com:acme/app.git", credentials: { sshPrivateKey: key } });
    expect(secrets).toContain(key);
    for (const line of key.trim().split("\n").slice(1, -1)) expect(secrets).toContain(line);
  });
});

/** A proxy that is down reads, in git's words, like the repository's host: the engine says it was the proxy. */
describe("a clone through the engine's proxy when nothing listens at its port", () => {
  async function failure(url: string, env: Record<string, string>): Promise<string> {
    const error = await (
      await clone({ url }, remoteOnly, env)
    ).run.then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(StepError);
    return (error as Error).message;
  }

  it("names the proxy without its credentials, for an http:// (http_proxy) and an https:// (HTTPS_PROXY) repository", async () => {
    const port = await testPort();
    const http = await failure(open.url("site"), { http_proxy: `http://corp:s3cret@127.0.0.1:${port}` });
    expect(http).toContain(
      `: the request went through the proxy http://127.0.0.1:${port} (the engine's http_proxy), which refused the connection or could not be reached`,
    );
    expect(http).toContain(`Failed to connect to 127.0.0.1 port ${port}`);
    expect(http).not.toContain("s3cret");
    const https = await failure("https://git.example:8443/site.git", { HTTPS_PROXY: `127.0.0.1:${port}` });
    expect(https).toContain(`the request went through the proxy http://127.0.0.1:${port} (the engine's HTTPS_PROXY), which refused the connection`);
  });

  it("leaves the proxy out of a clone that did not go through it (NO_PROXY, HTTP_PROXY for http://), or that failed past it", async () => {
    const port = await testPort();
    const direct = await failure(`http://127.0.0.1:${await testPort()}/site.git`, { http_proxy: `http://127.0.0.1:${port}`, no_proxy: "127.0.0.1" });
    expect(direct).toContain("Failed to connect to 127.0.0.1");
    expect(direct).not.toContain("proxy");
    // git reads HTTP_PROXY in lower case only: an upper-case one is not used for an http:// repository.
    expect(await failure(`http://127.0.0.1:${await testPort()}/site.git`, { HTTP_PROXY: `http://127.0.0.1:${port}` })).not.toContain("proxy");
    const proxy = await startConnectProxy();
    try {
      const missing = await failure(open.url("no-such-repository"), { http_proxy: proxy.url });
      expect(proxy.forwarded.length).toBeGreaterThan(0);
      expect(missing).not.toContain("went through the proxy");
    } finally {
      await proxy.close();
    }
  });
});

describe("appDirectory", () => {
  it("refuses a root directory that leaves the checkout through a symlink", async () => {
    const checkout = await clone({ url: open.url("site") });
    await checkout.run;
    expect(await appDirectory(checkout.target, "web")).toBe(path.join(await fs.realpath(checkout.target), "web"));
    await expect(appDirectory(checkout.target, "escape")).rejects.toThrow('root directory "escape" points outside the repository');
    await expect(appDirectory(checkout.target, "../..")).rejects.toThrow(`root directory "../.." refused: must not contain '..'`);
  });
});
