import type { PlanCommand, RepoFacts } from "../build-plan";
import { configText, dependsOn, literalProperty, runsDevServer, script } from "./package-facts";

/**
 * Node servers: how each framework starts in production, as its docs say (and as Heroku's and
 * Railway's builders do), with a `start` script that runs a development server never used.
 */
export type NodeServer = {
  framework: string;
  start: PlanCommand;
  /** Steps after the build (Next.js's standalone output needs its static files beside it). */
  afterBuild: PlanCommand[];
  because: string;
};

const NEXT_CONFIGS = ["next.config.ts", "next.config.js", "next.config.mjs", "next.config.cjs"];
const GENERIC_SERVERS = [
  ["express", "Express"],
  ["fastify", "Fastify"],
  ["koa", "Koa"],
  ["@hapi/hapi", "hapi"],
] as const;
/** Entry files tried, in order, when package.json has neither a start script nor main (Railpack's order). */
const ENTRY_FILES = ["index.js", "server.js", "app.js", "main.js", "index.mjs", "server.mjs"];

function command(...parts: string[]): PlanCommand {
  return { argv: parts, display: parts.join(" ") };
}

/** `run` runs a package.json script with the app's package manager (`npm start`, `pnpm run start:prod`). */
export function detectNodeServer(facts: RepoFacts, run: (script: string) => PlanCommand): { ok: true; server: NodeServer } | { ok: false; reason: string } {
  const pkg = facts.packageJson;
  const start = script(pkg, "start");
  const usableStart = start !== null && !runsDevServer(start) ? start : null;

  if (dependsOn(pkg, "next")) {
    const config = configText(facts.configs, NEXT_CONFIGS);
    if (config && literalProperty(config.text, "output") === "standalone") {
      // https://nextjs.org/docs/app/api-reference/config/next-config-js/output: the standalone
      // server does not copy public/ and .next/static; they go beside it, as the docs show.
      const afterBuild = [command("cp", "-R", ".next/static", ".next/standalone/.next/static")];
      if (facts.files.has("public")) afterBuild.push(command("cp", "-R", "public", ".next/standalone/public"));
      return {
        ok: true,
        server: {
          framework: "Next.js (standalone)",
          start: command("node", ".next/standalone/server.js"),
          afterBuild,
          because: `${config.name} sets output: 'standalone'`,
        },
      };
    }
    // `next start` listens on $PORT (next's CLI reads it when -p is not given).
    return { ok: true, server: { framework: "Next.js", start: command("next", "start"), afterBuild: [], because: "next is a dependency" } };
  }
  if (dependsOn(pkg, "nuxt")) {
    return {
      ok: true,
      server: { framework: "Nuxt", start: command("node", ".output/server/index.mjs"), afterBuild: [], because: "nuxt is a dependency (Nitro's node server)" },
    };
  }
  if (dependsOn(pkg, "astro")) {
    return {
      ok: true,
      server: {
        framework: "Astro (server)",
        start: command("node", "dist/server/entry.mjs"),
        afterBuild: [],
        because: "astro builds a server (the Node adapter)",
      },
    };
  }
  if (dependsOn(pkg, "@nestjs/core")) {
    const prod = script(pkg, "start:prod");
    return {
      ok: true,
      server: {
        framework: "NestJS",
        start: prod ? run("start:prod") : command("node", "dist/main.js"),
        afterBuild: [],
        because: prod
          ? "@nestjs/core is a dependency; its start:prod script"
          : "@nestjs/core is a dependency; no start:prod script, so its build's dist/main.js",
      },
    };
  }
  if (dependsOn(pkg, "@remix-run/serve") || dependsOn(pkg, "@remix-run/node")) {
    if (usableStart) return { ok: true, server: { framework: "Remix", start: run("start"), afterBuild: [], because: "a Remix app with a start script" } };
    if (dependsOn(pkg, "@remix-run/serve")) {
      const build = facts.files.has("vite.config.ts") || facts.files.has("vite.config.js") ? "build/server/index.js" : "build/index.js";
      return { ok: true, server: { framework: "Remix", start: command("remix-serve", build), afterBuild: [], because: "@remix-run/serve is a dependency" } };
    }
  }

  const framework = GENERIC_SERVERS.find(([name]) => dependsOn(pkg, name))?.[1] ?? "Node";
  if (usableStart) return { ok: true, server: { framework, start: run("start"), afterBuild: [], because: `its start script: ${usableStart}` } };
  const main = typeof pkg?.main === "string" && pkg.main.trim() !== "" ? pkg.main : null;
  if (main) return { ok: true, server: { framework, start: command("node", main), afterBuild: [], because: `package.json's main: ${main}` } };
  if (start !== null)
    return {
      ok: false,
      reason: `the start script "${start}" runs a development server, which a release never runs: set a start command, or the output directory of a static site`,
    };
  const entry = ENTRY_FILES.find((name) => facts.files.has(name)) ?? "index.js";
  return { ok: true, server: { framework, start: command("node", entry), afterBuild: [], because: `no start script or main, so ${entry}` } };
}
