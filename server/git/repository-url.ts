/**
 * One key per repository, whatever form its URL takes: `https://github.com/Acme/App.git`,
 * `git@github.com:acme/app`, `ssh://git@github.com:22/acme/app.git` and
 * `http://user:token@github.com/acme/app/` all become `github.com/acme/app`. Ports and
 * credentials are dropped (a host serves HTTPS and SSH on different ports), the host and path
 * are compared without case (GitHub, GitLab and Bitbucket treat them so), `.git` and trailing
 * slashes are optional. `file://` URLs keep their path. Never throws, whatever the string.
 */
export function repositoryKey(url: string): string | null {
  const trimmed = url.trim();
  if (trimmed === "") return null;
  // scp-like syntax: [user@]host:path, no scheme (https://git-scm.com/docs/git-clone#_git_urls).
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(trimmed);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return join(scp[1]!, scp[2]!);
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return null;
  }
  if (parsed.protocol === "file:") return `file://${stripSuffix(decodePath(parsed.pathname))}`;
  if (!parsed.hostname) return null;
  return join(parsed.hostname, decodePath(parsed.pathname));
}

/**
 * The path with its percent-escapes decoded, each run on its own; a `%` that starts no valid
 * escape (`app%`, `a%zzb`) or a run that is not UTF-8 is kept as written. decodeURIComponent
 * throws on those, and a key is derived from every URL a service can hold: one throw broke its
 * organization's webhook intake and stalled the worker for every organization.
 */
function decodePath(path: string): string {
  return path.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

function join(host: string, path: string): string | null {
  const cleaned = stripSuffix(path.replace(/^\/+/, "").replace(/^~/, ""));
  if (!cleaned) return null;
  return `${host.toLowerCase()}/${cleaned.toLowerCase()}`;
}

function stripSuffix(path: string): string {
  return path
    .replace(/\/+$/, "")
    .replace(/\.git$/i, "")
    .replace(/\/+$/, "");
}

/** Whether two URLs name the same repository. */
export function sameRepository(a: string, b: string): boolean {
  const left = repositoryKey(a);
  return left !== null && left === repositoryKey(b);
}
