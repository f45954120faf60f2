import { execFile, spawn } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Commits made by tests carry a fixed identity; no global git config is needed or touched. */
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "Slipway Test",
  GIT_AUTHOR_EMAIL: "test@slipway.invalid",
  GIT_COMMITTER_NAME: "Slipway Test",
  GIT_COMMITTER_EMAIL: "test@slipway.invalid",
  GIT_TERMINAL_PROMPT: "0",
};

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: gitEnv });
  return stdout.trim();
}

export type GitServer = {
  /** http://127.0.0.1:<port>/<name>.git */
  url(name: string): string;
  /** The bare repository on disk (to install hooks in). */
  repoPath(name: string): string;
  /** Creates a bare repository served over HTTP and pushes the files of `dir` (plus `extra`) as its first commit on `branch`. */
  createRepo(name: string, dir: string, extra?: Record<string, string>, branch?: string): Promise<string>;
  /** Replaces the repository's tree with `dir` (plus `extra`), commits, pushes over HTTP; returns the new commit. */
  pushDirectory(name: string, dir: string, extra?: Record<string, string>, branch?: string): Promise<string>;
  close(): Promise<void>;
};

export type GitServerOptions = {
  /** Answer fetches (clone, fetch) only with these HTTP basic credentials, as a private repository does. */
  basicAuth?: { username: string; password: string };
};

/**
 * A real git server on 127.0.0.1: `git http-backend` run as a CGI program per request
 * (https://git-scm.com/docs/git-http-backend), serving clone, fetch and push of the bare
 * repositories under a temporary root.
 */
export async function startGitServer(options: GitServerOptions = {}): Promise<GitServer> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-git-"));
  const projects = path.join(root, "repos");
  const worktrees = path.join(root, "worktrees");
  await fs.mkdir(projects);
  await fs.mkdir(worktrees);
  const expectedAuthorization = options.basicAuth
    ? `Basic ${Buffer.from(`${options.basicAuth.username}:${options.basicAuth.password}`).toString("base64")}`
    : null;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://git.local");
    // Fetches need the credentials (as a private repository's do); the test's own pushes do not.
    const fetching = url.pathname.endsWith("/git-upload-pack") || url.searchParams.get("service") === "git-upload-pack";
    if (expectedAuthorization && fetching && req.headers.authorization !== expectedAuthorization) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="slipway test"' });
      res.end("authentication required\n");
      return;
    }
    const backend = spawn("git", ["http-backend"], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: projects,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method ?? "GET",
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
        GIT_PROTOCOL: String(req.headers["git-protocol"] ?? ""),
        REMOTE_ADDR: "127.0.0.1",
        REMOTE_USER: "test",
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    req.pipe(backend.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    backend.stdout.on("data", (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    backend.on("close", () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = (name: string) => `http://127.0.0.1:${port}/${name}.git`;

  const replaceTree = async (worktree: string, dir: string, extra: Record<string, string>) => {
    for (const entry of await fs.readdir(worktree)) if (entry !== ".git") await fs.rm(path.join(worktree, entry), { recursive: true, force: true });
    await fs.cp(dir, worktree, { recursive: true });
    for (const [file, content] of Object.entries(extra)) {
      await fs.mkdir(path.dirname(path.join(worktree, file)), { recursive: true });
      await fs.writeFile(path.join(worktree, file), content);
    }
  };

  const gitServer: GitServer = {
    url,
    repoPath: (name) => path.join(projects, `${name}.git`),
    async createRepo(name, dir, extra = {}, branch = "main") {
      const bare = path.join(projects, `${name}.git`);
      await run("git", ["init", "--quiet", "--bare", "--initial-branch", branch, bare]);
      // Pushing over smart HTTP is refused unless enabled (or a REMOTE_USER is set): be explicit.
      await git(bare, "config", "http.receivepack", "true");
      const worktree = path.join(worktrees, name);
      await run("git", ["init", "--quiet", "--initial-branch", branch, worktree]);
      await git(worktree, "remote", "add", "origin", url(name));
      return gitServer.pushDirectory(name, dir, extra, branch);
    },
    async pushDirectory(name, dir, extra = {}, branch = "main") {
      const worktree = path.join(worktrees, name);
      await replaceTree(worktree, dir, extra);
      await git(worktree, "add", "--all");
      await git(worktree, "commit", "--quiet", "--allow-empty", "-m", `update from ${path.basename(dir)}`);
      await git(worktree, "push", "--quiet", "origin", `HEAD:refs/heads/${branch}`);
      return git(worktree, "rev-parse", "HEAD");
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(root, { recursive: true, force: true });
    },
  };
  return gitServer;
}
