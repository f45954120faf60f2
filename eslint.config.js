import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

/**
 * The architecture as a lint rule (STYLE.md, "Layout shows the architecture"): the engine runs
 * on other hosts and imports only its own files; the web side (app, components, server,
 * worker, cli) imports only `engine/protocol/` from the engine.
 *
 * `no-restricted-imports` matches the import string, not the resolved file, so a pattern like
 * `**\/engine/*` would also forbid `./engine` inside `server/engines/`. Instead, for a file N
 * folders deep, the rules match exactly N `../` followed by the forbidden top-level folder:
 * the import that really climbs to the repository root and into it.
 *
 * One exception: build-plan detection (engine/runtime/build-plan.ts, and the gathering of the
 * facts it reads) is pure, and the control plane runs the same code to show a service's plan
 * before it deploys (issue 14): one source for what is detected, never a copy.
 */
const WEB_SIDE = ["app", "components", "server", "worker", "cli"];
const MAX_DEPTH = 8;

/** `engine/x.ts` is 1 folder deep, `engine/runtime/x.ts` 2, and so on. */
function filesAtDepth(folders, depth) {
  return folders.map((folder) => `${folder}/${"*/".repeat(depth - 1)}*.{ts,tsx,js,mjs}`);
}

function climbToRoot(depth) {
  return `^(\\./)?(\\.\\./){${depth}}`;
}

function boundaryRules() {
  const configs = [];
  for (let depth = 1; depth <= MAX_DEPTH; depth++) {
    configs.push({
      name: `slipway/boundary: web side, depth ${depth}`,
      files: filesAtDepth(WEB_SIDE, depth),
      rules: {
        "no-restricted-imports": [
          "error",
          {
            patterns: [
              {
                regex: `${climbToRoot(depth)}engine(/(?!protocol(/|$)|runtime/build-plan$|runtime/plans/repo-facts$).*)?$`,
                message: "Outside engine/, import only engine/protocol: the engine is a separate program that talks through its protocol.",
              },
            ],
          },
        ],
      },
    });
    configs.push({
      name: `slipway/boundary: engine, depth ${depth}`,
      files: filesAtDepth(["engine"], depth),
      rules: {
        "no-restricted-imports": [
          "error",
          {
            patterns: [
              {
                regex: `${climbToRoot(depth)}(${WEB_SIDE.join("|")})(/|$)`,
                message: "engine/ imports only its own files: it runs on clusters, without the control plane's code or secrets.",
              },
            ],
          },
        ],
      },
    });
  }
  return configs;
}

/**
 * Imports that `no-restricted-syntax` forbids. One rule holds them all: in a flat config, a later
 * setting of a rule replaces an earlier one for the files both match.
 */
const EMBEDDED_POSTGRES = {
  // `embedded-postgres` installs an exit hook, at import, that ends its process with code 0:
  // it made `vitest run` pass with failing tests (issue 12). Only the PostgreSQL host child
  // (server/process/embedded-postgres-child.ts) may load it; others start that child.
  selector: "ImportDeclaration[source.value=/(^embedded-postgres$|db\\/embedded$)/]",
  message:
    "Start PostgreSQL with startEmbeddedPostgresChild (server/process/embedded-postgres.ts): the package's exit hook would override this process's exit code.",
};
const SERVER_IMPORTS_WORKER = {
  // The worker's tasks call the server's domain functions; the server must not depend back on
  // the worker (its job catalog lives in server/jobs/).
  selector: "ImportDeclaration[source.value=/(^|\\/)worker\\//]",
  message: "server/ does not import worker/: the worker depends on the server, not the other way round (the job catalog is server/jobs/catalog.ts).",
};

function restrictedSyntax() {
  const embeddedHosts = ["server/db/embedded.ts", "server/process/embedded-postgres-child.ts"];
  return [
    {
      name: "slipway/restricted imports",
      files: ["**/*.{ts,tsx}"],
      ignores: embeddedHosts,
      rules: { "no-restricted-syntax": ["error", EMBEDDED_POSTGRES] },
    },
    {
      name: "slipway/restricted imports: server",
      files: ["server/**/*.{ts,tsx}"],
      ignores: [...embeddedHosts, "server/**/*.test.ts"],
      rules: { "no-restricted-syntax": ["error", EMBEDDED_POSTGRES, SERVER_IMPORTS_WORKER] },
    },
  ];
}

export default defineConfig([
  globalIgnores([
    "node_modules/",
    ".next/",
    "drizzle/",
    ".slipway/",
    "test-results/",
    "playwright-report/",
    ".bench/",
    "next-env.d.ts",
    // Public apps and packages the fixtures fetch: their code is theirs, kept as it is.
    "test/fixtures/*/cache/",
  ]),
  js.configs.recommended,
  {
    files: ["**/*.{ts,tsx}"],
    extends: [tseslint.configs.recommended],
    // Type-aware rules read the types TypeScript infers (tsconfig.json, through its project service).
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_`-prefixed names are deliberately unused (a callback's leading parameters).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // A promise nobody awaits loses its rejection: write `void` where that is meant.
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      // A switch over a union names every member (or has a default): a new status, step or
      // action must be handled everywhere it is switched on.
      "@typescript-eslint/switch-exhaustiveness-check": ["error", { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    files: ["**/*.{js,mjs,cjs}"],
    languageOptions: { globals: { ...globals.node } },
  },
  ...boundaryRules(),
  ...restrictedSyntax(),
]);
