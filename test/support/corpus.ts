import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Where test/fixtures/corpus/fetch keeps the public example apps and the npm packages they lock. */
export const corpusCacheDir = fileURLToPath(new URL("../fixtures/corpus/cache/", import.meta.url));

/** The apps the fetch script makes, by directory name (test/fixtures/corpus/fetch says where each comes from). */
export const CORPUS_APPS = [
  "express-yarn",
  "fastify-engines",
  "pnpm-workspace",
  "next",
  "vite-react",
  "vue-router",
  "cra",
  "procfile",
  "flask",
  "python-stdlib",
  "html",
] as const;
export type CorpusApp = (typeof CORPUS_APPS)[number];

/**
 * The fetched corpus: each app's directory and the npm tarballs of their dependencies; what is
 * missing otherwise. The corpus test fails without it, on any machine: it exists to show these
 * apps deploy, and a skipped run shows nothing.
 */
export async function cachedCorpus(): Promise<{ ok: true; app: (name: CorpusApp) => string; tarballs: string[] } | { ok: false; missing: string }> {
  const complete = await fsp.stat(path.join(corpusCacheDir, ".complete")).catch(() => null);
  const apps = await fsp.readdir(path.join(corpusCacheDir, "apps")).catch(() => [] as string[]);
  const absent = CORPUS_APPS.filter((name) => !apps.includes(name));
  if (!complete || absent.length > 0)
    return { ok: false, missing: `the corpus of public example apps${absent.length > 0 ? ` (${absent.join(", ")})` : ""}: run test/fixtures/corpus/fetch` };
  const npmDir = path.join(corpusCacheDir, "npm");
  const tarballs = (await fsp.readdir(npmDir)).filter((name) => name.endsWith(".tgz")).map((name) => path.join(npmDir, name));
  return { ok: true, app: (name) => path.join(corpusCacheDir, "apps", name), tarballs };
}
