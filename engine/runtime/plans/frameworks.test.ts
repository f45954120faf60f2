import { describe, expect, it } from "vitest";
import { describePlan, detectBuildPlan, type Overrides, type PackageJson, type RepoFacts } from "../build-plan";
import { gatherRepoFacts } from "./repo-facts";
import { runsDevServer } from "./package-facts";

/**
 * Detection of the apps people have, with package.json and config files as the real templates
 * write them (create-vite 9's template-react-ts and template-vue, create-next-app 16's app
 * template, a Create React App's package.json, Angular CLI's angular.json).
 */
function app(packageJson: PackageJson | null, files: string[] = [], configs: Record<string, string> = {}, extra: Partial<RepoFacts> = {}): RepoFacts {
  return {
    files: new Set([...(packageJson ? ["package.json"] : []), ...files, ...Object.keys(configs)]),
    packageJson,
    procfile: null,
    requirementsTxt: null,
    nvmrc: null,
    nodeVersionFile: null,
    pnpmLock: null,
    configs,
    ...extra,
  };
}

function plan(facts: RepoFacts, overrides: Overrides = {}) {
  const result = detectBuildPlan(facts, overrides);
  if (!result.ok) throw new Error(result.reason);
  return result.plan;
}

const viteReact: PackageJson = {
  scripts: { dev: "vite", build: "tsc -b && vite build", lint: "oxlint", preview: "vite preview" },
  dependencies: { react: "^19.3.1", "react-dom": "^19.3.1" },
  devDependencies: { "@vitejs/plugin-react": "^6.1.2", typescript: "~6.0.2", vite: "^8.3.4" },
};
const viteReactConfig = `import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// https://vite.dev/config/
export default defineConfig({
  plugins: [react()],
})
`;
const cra: PackageJson = {
  dependencies: { react: "^19.0.0", "react-dom": "^19.0.0", "react-scripts": "5.0.1", "web-vitals": "^2.1.0" },
  scripts: { start: "react-scripts start", build: "react-scripts build", test: "react-scripts test", eject: "react-scripts eject" },
};
const nextApp: PackageJson = {
  scripts: { dev: "next dev", build: "next build", start: "next start" },
  dependencies: { react: "19.2.0", "react-dom": "19.2.0", next: "16.4.3" },
};
const nextConfig = (body: string) => `import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  ${body}
};

export default nextConfig;
`;

describe("static sites and single-page apps", () => {
  it("builds a Vite React app and serves dist/ with an SPA fallback, never its dev server", () => {
    const result = plan(app(viteReact, ["package-lock.json", "index.html"], { "vite.config.ts": viteReactConfig }));
    expect(result.kind).toBe("static");
    expect(result.framework).toBe("Vite SPA");
    expect(result.steps.map((step) => step.display)).toEqual(["npm ci --include=dev --no-audit --no-fund", "npm run build"]);
    expect(result.start).toEqual({ type: "static", directory: "dist", spa: true, display: "serve dist/ with SPA fallback to index.html" });
    expect(describePlan(result)).toBe(
      "detected Vite SPA: `npm ci --include=dev --no-audit --no-fund`, then `npm run build`; serve dist/ with SPA fallback to index.html (because vite is a dependency; react routes on the client)",
    );
  });

  it("reads build.outDir when the Vite config sets it literally, and a Vue app is an SPA too", () => {
    const config = `export default defineConfig({ plugins: [vue()], build: { outDir: 'public/app', sourcemap: true } })`;
    const vue: PackageJson = {
      scripts: { dev: "vite", build: "vite build", preview: "vite preview" },
      dependencies: { vue: "^3.5.44" },
      devDependencies: { vite: "^8.3.4" },
    };
    expect(plan(app(vue, [], { "vite.config.js": config })).start).toMatchObject({ type: "static", directory: "public/app", spa: true });
    // Commented out: not what the build does.
    expect(plan(app(vue, [], { "vite.config.js": `export default { build: { /* outDir: 'x' */ } }` })).start).toMatchObject({ directory: "dist" });
  });

  it("serves a vanilla Vite site without a fallback: an unknown path is a real 404", () => {
    const vanilla: PackageJson = { scripts: { dev: "vite", build: "vite build" }, devDependencies: { vite: "^8.3.4" } };
    expect(plan(app(vanilla)).start).toMatchObject({ type: "static", directory: "dist", spa: false });
    expect(plan(app(vanilla)).framework).toBe("Vite");
  });

  it("runs the app's own server when its start script is one (Express serving a Vite-built client)", () => {
    const fullStack: PackageJson = {
      ...viteReact,
      scripts: { ...viteReact.scripts, start: "node server.js" },
      dependencies: { ...(viteReact.dependencies as object), express: "^5" },
    };
    expect(plan(app(fullStack, [], { "vite.config.ts": viteReactConfig }))).toMatchObject({
      framework: "Express",
      start: { type: "command", argv: ["npm", "start"] },
    });
    // `vite preview` is Vite's server, not the app's.
    expect(plan(app({ ...viteReact, scripts: { ...viteReact.scripts, start: "vite preview --port $PORT" } })).start).toMatchObject({ type: "static" });
  });

  it("serves a Create React App's build/ with a fallback, not react-scripts start", () => {
    const result = plan(app(cra, ["yarn.lock", "public", "src"]));
    expect(result.framework).toBe("Create React App");
    expect(result.steps.map((step) => step.display)).toEqual(["yarn install --frozen-lockfile --production=false", "yarn run build"]);
    expect(result.start).toMatchObject({ type: "static", directory: "build", spa: true });
  });

  it("reads Angular's output path from angular.json: browser/ under the application builder, not under the browser one", () => {
    const angularPkg: PackageJson = { scripts: { ng: "ng", start: "ng serve", build: "ng build" }, dependencies: { "@angular/core": "^20.0.0" } };
    const workspace = (builder: string, options: object = {}) =>
      JSON.stringify({ version: 1, projects: { shop: { projectType: "application", architect: { build: { builder, options } } } } });
    expect(plan(app(angularPkg, [], { "angular.json": workspace("@angular/build:application") })).start).toMatchObject({
      directory: "dist/shop/browser",
      spa: true,
    });
    expect(
      plan(app(angularPkg, [], { "angular.json": workspace("@angular-devkit/build-angular:browser", { outputPath: "dist/my-shop" }) })).start,
    ).toMatchObject({
      directory: "dist/my-shop",
    });
    expect(
      plan(app(angularPkg, [], { "angular.json": workspace("@angular/build:application", { outputPath: { base: "out", browser: "" } }) })).start,
    ).toMatchObject({ directory: "out" });
  });

  it("serves Gatsby's public/, Astro's dist/ and a Next.js static export's out/ without a fallback", () => {
    expect(plan(app({ scripts: { build: "gatsby build", start: "gatsby develop" }, dependencies: { gatsby: "^5" } })).start).toMatchObject({
      directory: "public",
      spa: false,
    });
    expect(
      plan(app({ scripts: { build: "astro build" }, dependencies: { astro: "^5" } }, [], { "astro.config.mjs": "export default defineConfig({})" })).start,
    ).toMatchObject({
      directory: "dist",
      spa: false,
    });
    const exported = plan(app(nextApp, [], { "next.config.ts": nextConfig(`output: "export",`) }));
    expect(exported.framework).toBe("Next.js static export");
    expect(exported.start).toMatchObject({ type: "static", directory: "out", spa: false });
  });

  it("serves plain HTML as it is, or the directory the service sets", () => {
    expect(plan(app(null, ["index.html", "style.css"])).start).toMatchObject({ type: "static", directory: ".", spa: false });
    expect(plan(app(null, ["site"]), { outputDirectory: "site" }).start).toMatchObject({ type: "static", directory: "site" });
  });

  it("lets the output directory override the detected one, keeping the framework's fallback", () => {
    const result = plan(app(viteReact), { outputDirectory: "build/client" });
    expect(result.start).toMatchObject({ type: "static", directory: "build/client", spa: true });
    expect(result.reasons.join("; ")).toContain("the service's output directory build/client");
  });
});

describe("Node servers", () => {
  it("starts Next.js with next start, on $PORT", () => {
    const result = plan(app(nextApp, ["package-lock.json"], { "next.config.ts": nextConfig("/* config options here */") }));
    expect(result).toMatchObject({ kind: "node", framework: "Next.js", start: { type: "command", argv: ["next", "start"] } });
    expect(result.steps.map((step) => step.display)).toEqual(["npm ci --include=dev --no-audit --no-fund", "npm run build"]);
  });

  it("starts a standalone Next.js build's server.js, with its static files copied beside it", () => {
    const result = plan(app(nextApp, ["public"], { "next.config.mjs": nextConfig(`output: 'standalone',`) }));
    expect(result.framework).toBe("Next.js (standalone)");
    expect(result.start).toMatchObject({ argv: ["node", ".next/standalone/server.js"] });
    expect(result.steps.slice(-2).map((step) => step.display)).toEqual([
      "cp -R .next/static .next/standalone/.next/static",
      "cp -R public .next/standalone/public",
    ]);
  });

  it("starts Nuxt's Nitro server, NestJS's start:prod or dist/main.js, and Remix's start script", () => {
    expect(plan(app({ scripts: { build: "nuxt build", dev: "nuxt dev" }, dependencies: { nuxt: "^4" } })).start).toMatchObject({
      argv: ["node", ".output/server/index.mjs"],
    });
    const nest = { scripts: { build: "nest build", start: "nest start", "start:prod": "node dist/main" }, dependencies: { "@nestjs/core": "^11" } };
    expect(plan(app(nest)).start).toMatchObject({ argv: ["npm", "run", "start:prod"] });
    expect(plan(app({ ...nest, scripts: { build: "nest build" } })).start).toMatchObject({ argv: ["node", "dist/main.js"] });
    const remix = {
      scripts: { build: "remix vite:build", dev: "remix vite:dev", start: "remix-serve ./build/server/index.js" },
      dependencies: { "@remix-run/serve": "^2", "@remix-run/node": "^2" },
    };
    expect(plan(app(remix)).start).toMatchObject({ argv: ["npm", "start"] });
    expect(plan(app(remix)).framework).toBe("Remix");
  });

  it("names Express, Fastify and Koa apps and starts them with their start script, else main", () => {
    expect(plan(app({ scripts: { start: "node server.js" }, dependencies: { express: "^5" } }))).toMatchObject({
      framework: "Express",
      start: { argv: ["npm", "start"] },
    });
    expect(plan(app({ main: "src/app.js", dependencies: { fastify: "^5" } }))).toMatchObject({ framework: "Fastify", start: { argv: ["node", "src/app.js"] } });
    expect(plan(app({ dependencies: { koa: "^3" } }, ["server.js"]))).toMatchObject({ framework: "Koa", start: { argv: ["node", "server.js"] } });
  });

  it("refuses a start script that only runs a dev server, saying what to set", () => {
    const result = detectBuildPlan(app({ scripts: { start: "webpack serve --mode development" }, dependencies: { webpack: "^5" } }));
    expect(result).toMatchObject({ ok: false });
    expect(!result.ok && result.reason).toMatch(/development server.*set a start command, or the output directory/);
  });

  it("lets a Procfile web line win over detection, and the start command over both", () => {
    const procfile = "web: node cluster.js\nworker: node jobs.js\n";
    expect(plan(app(nextApp, ["Procfile"], {}, { procfile })).start).toMatchObject({ argv: ["/bin/sh", "-c", "node cluster.js"] });
    expect(plan(app(viteReact, ["Procfile"], {}, { procfile })).start).toMatchObject({ type: "command" });
    expect(plan(app(nextApp, ["Procfile"], {}, { procfile }), { startCommand: "next start -p 4000" }).start).toMatchObject({
      argv: ["/bin/sh", "-c", "next start -p 4000"],
    });
  });
});

describe("dev servers", () => {
  it("tells dev servers from production commands", () => {
    for (const dev of [
      "react-scripts start",
      "vite",
      "vite --host",
      "vite preview",
      "ng serve",
      "next dev --turbopack",
      "nuxt dev",
      "gatsby develop",
      "astro dev",
    ])
      expect(runsDevServer(dev), dev).toBe(true);
    for (const prod of ["vite build", "next start", "node server.js", "vite-node src/main.ts", "react-scripts build"])
      expect(runsDevServer(prod), prod).toBe(false);
  });
});

describe("workspaces", () => {
  const root = (files: string[], packageJson: PackageJson | null, pnpmWorkspace: string | null = null) => ({
    appPath: "apps/web",
    files: new Set(files),
    packageJson,
    pnpmWorkspace,
    nvmrc: null,
    nodeVersionFile: null,
    pnpmLock: null,
  });

  it("installs a pnpm workspace app at the repository root and builds only its package", () => {
    const facts = app(
      { name: "@acme/web", ...viteReact },
      [],
      {},
      {
        repositoryRoot: root(
          ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml"],
          { private: true } as PackageJson,
          "packages:\n  - 'apps/*'\n  - 'packages/*'\n",
        ),
      },
    );
    const result = plan(facts);
    expect(result.steps.map((step) => [step.argv.join(" "), step.cwd])).toEqual([
      ["pnpm install --frozen-lockfile --prod=false", "../.."],
      ["pnpm --filter ./apps/web run build", "../.."],
    ]);
    expect(result.pathPrefix).toEqual(["node_modules/.bin", "../../node_modules/.bin"]);
    expect(result.reasons[0]).toBe("apps/web is a pnpm workspace package (pnpm-workspace.yaml)");
    expect(describePlan(result)).toContain("`pnpm install --frozen-lockfile --prod=false (at the repository root)`");
  });

  it("uses npm --workspace and yarn workspace, from the root package.json's workspaces", () => {
    const pkg = { name: "web", ...nextApp };
    const npm = plan(app(pkg, [], {}, { repositoryRoot: root(["package.json", "package-lock.json"], { workspaces: ["apps/*"] }) }));
    expect(npm.steps.map((step) => step.argv.join(" "))).toEqual(["npm ci --include=dev --no-audit --no-fund", "npm run build --workspace=apps/web"]);
    const yarn = plan(app(pkg, [], {}, { repositoryRoot: root(["package.json", "yarn.lock"], { workspaces: { packages: ["apps/**"] } }) }));
    expect(yarn.steps.map((step) => step.argv.join(" "))).toEqual(["yarn install --frozen-lockfile --production=false", "yarn workspace web run build"]);
  });

  it("treats an app in a subdirectory that is not a workspace package as an app of its own", () => {
    const result = plan(app(nextApp, ["package-lock.json"], {}, { repositoryRoot: root(["package.json"], { workspaces: ["packages/*"] }) }));
    expect(result.steps.every((step) => step.cwd === undefined)).toBe(true);
  });

  it("takes the Node version from the repository root when the app names none", () => {
    const facts = app(nextApp, [], {}, { repositoryRoot: { ...root([".nvmrc"], null), nvmrc: "22\n" } });
    expect(plan(facts).node).toMatchObject({ stated: { source: ".nvmrc", spec: "22" } });
  });
});

describe("gatherRepoFacts", () => {
  const tree: Record<string, string> = {
    "package.json": JSON.stringify({ private: true, workspaces: ["apps/*"] }),
    "package-lock.json": "{}",
    ".nvmrc": "22",
    "apps/web/package.json": JSON.stringify(viteReact),
    "apps/web/vite.config.ts": viteReactConfig,
    "apps/web/index.html": "<!doctype html>",
  };
  const reader = {
    list: async (dir: string) => [
      ...new Set(
        Object.keys(tree).flatMap((file) =>
          dir === "" ? [file.split("/")[0]!] : file.startsWith(`${dir}/`) ? [file.slice(dir.length + 1).split("/")[0]!] : [],
        ),
      ),
    ],
    read: async (file: string) => tree[file] ?? null,
  };

  it("reads the app's directory, its framework configs and the repository root", async () => {
    const gathered = await gatherRepoFacts(reader, "apps/web");
    if (!gathered.ok) throw new Error(gathered.reason);
    expect([...gathered.facts.files].sort()).toEqual(["index.html", "package.json", "vite.config.ts"]);
    expect(gathered.facts.configs).toEqual({ "vite.config.ts": viteReactConfig });
    expect(gathered.facts.repositoryRoot).toMatchObject({ appPath: "apps/web", nvmrc: "22", packageJson: { workspaces: ["apps/*"] } });
  });

  it("says which package.json is not JSON", async () => {
    const broken = { ...reader, read: async (file: string) => (file === "apps/web/package.json" ? "{ nope" : (tree[file] ?? null)) };
    expect(await gatherRepoFacts(broken, "apps/web")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^apps\/web\/package\.json is not valid JSON/),
    });
  });
});
