import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseGitUrl, type GitCredentials } from "../../engine/protocol/git-source";
import { gitConfigArgs, gitEnv, withGitAuth } from "../../engine/protocol/git-command";
import type { GitSource } from "../../engine/protocol/snapshot";
import { gatherRepoFacts } from "../../engine/runtime/plans/repo-facts";
import type { RepoFacts } from "../../engine/runtime/build-plan";
import { AppError } from "../errors";
import { LOCAL_PATHS_NOT_READ, localPath, runGit, whyUnreachable, type RepositoryCheckSettings } from "./check-repository";

/**
 * The facts of the branch's last commit; `facts` null with the reason when its files cannot be
 * read as an app (a package.json that is not JSON); not ok, with the reason, when the repository
 * could not be read from here (then only the engine's build log says what it detects).
 */
export type RepositoryFacts =
  { ok: true; commit: string; facts: RepoFacts } | { ok: true; commit: string; facts: null; reason: string } | { ok: false; reason: string };

/** A file larger than this is not read for a plan (package.json and framework configs are a few KiB). */
const FILE_MAX = 1024 * 1024;

/**
 * What build detection reads of a service's repository, seen from the control plane (a plan shown
 * before deploying, issue 14): a shallow fetch of the branch's last commit into a temporary
 * repository (no checkout), read through git's objects, and removed after. The same transports,
 * credentials and timeout as the repository check (check-repository.ts), which this follows.
 */
export async function readRepositoryFacts(
  settings: RepositoryCheckSettings,
  git: Pick<GitSource, "url" | "ref" | "rootDirectory">,
  credentials: GitCredentials | null,
): Promise<RepositoryFacts> {
  if (!settings.enabled) {
    return { ok: false, reason: "this control plane does not read repositories (SLIPWAY_CHECK_REPOSITORIES=0)" };
  }
  const parsed = parseGitUrl(git.url);
  if (!parsed.ok) throw new AppError("INVALID", `config.git.url: ${parsed.message}`);
  const { url, transport } = parsed.value;
  if (parsed.value.local) {
    if (!settings.readsLocalPaths) return { ok: false, reason: LOCAL_PATHS_NOT_READ };
    const where = localPath(url);
    if (!(await fs.stat(where).catch(() => null))) return { ok: false, reason: `${where} is on the engine's host, which the control plane does not see` };
  }
  const ref = git.ref === undefined ? "HEAD" : "branch" in git.ref ? `refs/heads/${git.ref.branch}` : git.ref.commit;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-plan-"));
  try {
    const config = gitConfigArgs([transport]);
    const run = (argv: string[], env: Record<string, string> = gitEnv(settings.env, [transport], null)) => runGit(settings, [...config, ...argv], env, dir);
    await run(["init", "--quiet", "--bare"]);
    const fetched = await withGitAuth(credentials, parsed.value.origin, settings.sshKnownHostsFile, (auth) =>
      run(["fetch", "--quiet", "--depth=1", "--no-tags", "--", url, ref], gitEnv(settings.env, [transport], auth)),
    );
    if (fetched.spawnError) throw new AppError("UNAVAILABLE", `could not run git (${fetched.spawnError.message}): install git on the control plane's host`);
    if (fetched.timedOut) return { ok: false, reason: `${url} did not answer within ${settings.timeoutMs / 1000}s` };
    if (fetched.code !== 0) return { ok: false, reason: `could not fetch ${url} at ${ref}: ${whyUnreachable(fetched.stderr, parsed.value, credentials)}` };
    const commit = (await run(["rev-parse", "FETCH_HEAD^{commit}"])).stdout.trim();

    const gathered = await gatherRepoFacts(
      {
        list: async (where) => {
          const listed = await run(["ls-tree", "-z", "--name-only", `${commit}:${where}`]);
          return listed.code === 0 ? listed.stdout.split("\0").filter(Boolean) : [];
        },
        read: async (file) => {
          // Regular files only (mode 100644/100755): a symbolic link is not followed, as the engine does not.
          const entry = (await run(["ls-tree", "-z", "--long", commit, "--", file])).stdout.split("\0")[0] ?? "";
          const [mode, type, , size] = entry.split(/\s+/);
          if (type !== "blob" || !mode?.startsWith("100") || Number(size) > FILE_MAX) return null;
          const shown = await run(["cat-file", "blob", `${commit}:${file}`]);
          return shown.code === 0 ? shown.stdout : null;
        },
      },
      git.rootDirectory.replace(/^\.\/|\/+$/g, ""),
    );
    return gathered.ok ? { ok: true, commit, facts: gathered.facts } : { ok: true, commit, facts: null, reason: gathered.reason };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
