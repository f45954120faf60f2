import type { RepoFacts } from "../build-plan";
import { configText, dependsOn, literalProperty, runsDevServer, script } from "./package-facts";

/**
 * Static sites and single-page apps: frameworks whose build writes files that any web server can
 * serve, so the release is the engine's static server over that directory, never the framework's
 * development server. Output directories are each framework's default, or what its config sets
 * literally (a config computed at run time cannot be read without running it: then the output
 * directory setting says where).
 */
export type StaticSite = {
  framework: string;
  /** Relative to the app's directory; "." for the app's own files. */
  outputDirectory: string;
  /** Unknown paths answer index.html (client-side routes), else a real 404. */
  spa: boolean;
  /** Why, one reason an entry. */
  because: string[];
};

const VITE_CONFIGS = ["vite.config.ts", "vite.config.js", "vite.config.mjs", "vite.config.mts", "vite.config.cjs"];
const NEXT_CONFIGS = ["next.config.ts", "next.config.js", "next.config.mjs", "next.config.cjs"];
const ASTRO_CONFIGS = ["astro.config.mjs", "astro.config.ts", "astro.config.js"];
/** Frameworks built on Vite that run their own server: not a Vite static site. */
const VITE_SERVER_FRAMEWORKS = [
  "@remix-run/dev",
  "@react-router/dev",
  "@sveltejs/kit",
  "nuxt",
  "astro",
  "@tanstack/react-start",
  "@analogjs/platform",
  "vitepress",
];
/** UI libraries whose Vite apps route on the client (react-router, vue-router...): deep links need index.html. */
const SPA_LIBRARIES = ["react", "vue", "preact", "solid-js", "svelte", "@angular/core", "lit"];

export function detectStaticSite(facts: RepoFacts): StaticSite | null {
  const pkg = facts.packageJson;
  if (dependsOn(pkg, "next")) {
    const config = configText(facts.configs, NEXT_CONFIGS);
    if (config && literalProperty(config.text, "output") === "export")
      return { framework: "Next.js static export", outputDirectory: "out", spa: false, because: [`${config.name} sets output: 'export'`] };
    return null;
  }
  if (dependsOn(pkg, "react-scripts"))
    return { framework: "Create React App", outputDirectory: "build", spa: true, because: ["react-scripts is a dependency"] };
  if (dependsOn(pkg, "@angular/core") && !dependsOn(pkg, "@angular/ssr") && facts.configs?.["angular.json"] !== undefined) {
    return angular(facts.configs["angular.json"]);
  }
  if (dependsOn(pkg, "gatsby")) return { framework: "Gatsby", outputDirectory: "public", spa: false, because: ["gatsby is a dependency"] };
  if (dependsOn(pkg, "astro")) {
    const config = configText(facts.configs, ASTRO_CONFIGS);
    const output = config ? literalProperty(config.text, "output") : null;
    if (output === "server" || dependsOn(pkg, "@astrojs/node")) return null;
    return {
      framework: "Astro (static)",
      outputDirectory: "dist",
      spa: false,
      because: ["astro is a dependency, without a server output or the Node adapter"],
    };
  }
  if (dependsOn(pkg, "nuxt") && /\bnux[ti]\s+generate\b/.test(script(pkg, "build") ?? ""))
    return { framework: "Nuxt (generated)", outputDirectory: ".output/public", spa: false, because: ["the build script runs nuxt generate"] };
  const viteConfig = configText(facts.configs, VITE_CONFIGS);
  // A Vite config alone counts: a workspace app often has vite in the repository root's package.json.
  // A start script that is not Vite's own server runs the app's server (Express with a Vite-built client).
  const start = script(pkg, "start");
  const ownServer = start !== null && !runsDevServer(start);
  if ((dependsOn(pkg, "vite") || viteConfig) && !ownServer && !VITE_SERVER_FRAMEWORKS.some((name) => dependsOn(pkg, name))) {
    const config = viteConfig;
    const outDir = config ? literalProperty(config.text, "outDir") : null;
    const library = SPA_LIBRARIES.find((name) => dependsOn(pkg, name));
    return {
      framework: library ? "Vite SPA" : "Vite",
      outputDirectory: outDir ?? "dist",
      spa: Boolean(library),
      because: [
        dependsOn(pkg, "vite") ? "vite is a dependency" : `${config?.name ?? "a Vite config"} configures Vite`,
        library ? `${library} routes on the client` : "no client-side router library, so no SPA fallback",
        outDir && config ? `${config.name} sets build.outDir` : null,
      ].filter((reason): reason is string => reason !== null),
    };
  }
  return null;
}

/**
 * Angular's output (https://angular.dev/reference/configs/workspace-config): the application
 * builder (v17+) writes dist/<project>/browser, the older browser builder dist/<project>;
 * outputPath may be a string or { base, browser }.
 */
function angular(text: string): StaticSite | null {
  let workspace: { defaultProject?: string; projects?: Record<string, AngularProject> };
  try {
    workspace = JSON.parse(text) as typeof workspace;
  } catch {
    return null;
  }
  const projects = Object.entries(workspace.projects ?? {});
  const [name, project] = projects.find(([key]) => key === workspace.defaultProject) ?? projects.find(([, value]) => value.projectType === "application") ?? [];
  if (!name || !project) return null;
  const build = project.architect?.build;
  const outputPath = build?.options?.outputPath;
  const modern = typeof build?.builder === "string" && /:application$/.test(build.builder);
  let outputDirectory: string;
  if (typeof outputPath === "object" && outputPath !== null) outputDirectory = `${outputPath.base}/${outputPath.browser ?? "browser"}`.replace(/\/$/, "");
  else {
    const base = typeof outputPath === "string" ? outputPath : `dist/${name}`;
    outputDirectory = modern ? `${base}/browser` : base;
  }
  return {
    framework: "Angular",
    outputDirectory: outputDirectory.replace(/^\.\//, ""),
    spa: true,
    because: [`angular.json builds project ${name} with ${typeof build?.builder === "string" ? build.builder : "its builder"}`],
  };
}

type AngularProject = {
  projectType?: string;
  architect?: { build?: { builder?: unknown; options?: { outputPath?: string | { base: string; browser?: string } } } };
};
