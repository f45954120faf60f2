/**
 * The web page of a git provider that shows the commits and diff between two commits, built
 * from the repository's https URL alone (no provider API call). Known hosts only: github.com,
 * gitlab.com or a host named like a GitLab, bitbucket.org, codeberg.org or a host named like a
 * Gitea or Forgejo; any other host (or an ssh or local URL) has no link, since guessing one
 * would send users to pages that do not exist.
 */
type Style = "github" | "gitlab" | "bitbucket" | "gitea";

function styleOf(host: string): Style | null {
  if (host === "github.com") return "github";
  if (host === "bitbucket.org") return "bitbucket";
  if (host === "codeberg.org") return "gitea";
  const labels = host.split(".");
  if (labels.some((label) => label === "gitlab" || label.startsWith("gitlab-"))) return "gitlab";
  if (labels.some((label) => label === "gitea" || label === "forgejo")) return "gitea";
  return null;
}

export function compareUrl(gitUrl: string, from: string, to: string): string | null {
  let url: URL;
  try {
    url = new URL(gitUrl);
  } catch {
    return null;
  }
  if (url.protocol !== "https:") return null;
  const style = styleOf(url.hostname.toLowerCase());
  const path = url.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
  // owner/repository at least (GitLab groups nest deeper).
  if (!style || path.split("/").filter(Boolean).length < 2) return null;
  const base = `https://${url.host}${path}`;
  switch (style) {
    case "github":
    case "gitea":
      return `${base}/compare/${from}...${to}`;
    case "gitlab":
      return `${base}/-/compare/${from}...${to}`;
    case "bitbucket":
      // Bitbucket Cloud names the newer commit first, the two separated by a carriage return.
      return `${base}/branches/compare/${to}%0D${from}`;
  }
}
