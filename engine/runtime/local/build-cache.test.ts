import { describe, expect, it } from "vitest";
import { berryEnv, berryInstallSkippable, berryManifestPart, cacheEnv, cacheKey, cacheKeyParts, installOutputs, npmTreeMatches } from "./build-cache";

describe("the build cache's key", () => {
  const parts = cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node", "yarn install --frozen-lockfile");

  it("is the same for the same lockfiles, toolchains and kind of app, whatever order the lockfiles were read in", () => {
    const again = cacheKeyParts(
      { "package.json": "x", "yarn.lock": "ms@^2.1.3" },
      ["node 22.22.0", "yarn-classic 1.22.22"],
      "node",
      "yarn install --frozen-lockfile",
    );
    const reordered = cacheKeyParts(
      { "yarn.lock": "ms@^2.1.3", "package.json": "x" },
      ["node 22.22.0", "yarn-classic 1.22.22"],
      "node",
      "yarn install --frozen-lockfile",
    );
    expect(cacheKey(again)).toBe(cacheKey(reordered));
    expect(cacheKey(parts)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("changes with a lockfile's contents, a toolchain's version, the kind of app or its install command", () => {
    const key = cacheKey(parts);
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.4" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node", "yarn install --frozen-lockfile"))).not.toBe(
      key,
    );
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 18.20.8", "yarn-classic 1.22.22"], "node", "yarn install --frozen-lockfile"))).not.toBe(
      key,
    );
    expect(
      cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "static", "yarn install --frozen-lockfile")),
    ).not.toBe(key);
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node", "yarn install"))).not.toBe(key);
  });
});

describe("whether a restored node_modules lets npm ci be skipped", () => {
  const ms = { version: "2.1.3", resolved: "http://r/ms/-/ms-2.1.3.tgz", integrity: "sha512-a" };
  const lock = JSON.stringify({ lockfileVersion: 3, packages: { "": { dependencies: { ms: "^2.1.3" } }, "node_modules/ms": ms } });
  const hidden = (entry: object) => JSON.stringify({ lockfileVersion: 3, packages: { "node_modules/ms": entry } });
  const pkg = (scripts: object = {}) => JSON.stringify({ name: "app", scripts: { build: "node build.js", ...scripts } });

  it("yes when the tree npm wrote locks every package as package-lock.json does", () => {
    expect(npmTreeMatches(pkg(), lock, hidden(ms))).toBe(true);
  });

  it("no when a package differs, the tree is empty or unreadable, or the root package has a script npm ci runs", () => {
    expect(npmTreeMatches(pkg(), lock, hidden({ ...ms, version: "2.1.2" }))).toBe(false);
    expect(npmTreeMatches(pkg(), lock, hidden({ ...ms, integrity: "sha512-b" }))).toBe(false);
    expect(npmTreeMatches(pkg(), lock, JSON.stringify({ packages: { "node_modules/left-pad": ms } }))).toBe(false);
    expect(npmTreeMatches(pkg(), lock, JSON.stringify({ packages: {} }))).toBe(false);
    expect(npmTreeMatches(pkg(), lock, "{")).toBe(false);
    expect(npmTreeMatches(pkg({ postinstall: "node setup.js" }), lock, hidden(ms))).toBe(false);
    expect(npmTreeMatches(pkg({ prepare: "husky" }), lock, hidden(ms))).toBe(false);
  });
});

describe("where each tool is told to keep its downloads", () => {
  it("names each package manager's own setting, and pip's for a Python app", () => {
    expect(cacheEnv("npm", false, "/c", {})).toEqual({ npm_config_cache: "/c" });
    expect(cacheEnv("yarn-classic", false, "/c", {})).toEqual({ YARN_CACHE_FOLDER: "/c" });
    // Its Plug'n'Play app loads packages from its cache at run time: that is the app's own .yarn/cache (berryEnv).
    expect(cacheEnv("yarn-berry", false, "/c", {})).toEqual({});
    expect(cacheEnv("pnpm", false, "/c", {})).toEqual({ npm_config_store_dir: "/c" });
    expect(cacheEnv(null, true, "/c", {})).toEqual({ PIP_CACHE_DIR: "/c" });
    expect(cacheEnv(null, false, "/c", {})).toEqual({});
  });

  it("steps aside for the app's own setting", () => {
    expect(cacheEnv("npm", false, "/c", { NPM_CONFIG_CACHE: "/elsewhere" })).toEqual({});
    expect(cacheEnv(null, true, "/c", { PIP_CACHE_DIR: "/elsewhere" })).toEqual({});
  });
});

describe("a yarn berry app's install in the build cache", () => {
  const manifest = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ name: "app", scripts: { build: "vite build" }, dependencies: { ms: "^2.1.3" }, ...extra });

  it("keeps its package zips, install state and Plug'n'Play loader beside node_modules; other managers keep node_modules", () => {
    expect(installOutputs("yarn-berry")).toEqual(["node_modules", ".yarn/cache", ".yarn/unplugged", ".yarn/install-state.gz", ".pnp.cjs", ".pnp.loader.mjs"]);
    expect(installOutputs("pnpm")).toEqual(["node_modules"]);
    expect(berryEnv({})).toEqual({ YARN_ENABLE_GLOBAL_CACHE: "false" });
    expect(berryEnv({ YARN_ENABLE_GLOBAL_CACHE: "true" })).toEqual({});
  });

  it("is keyed by package.json's dependencies, not by its scripts or version", () => {
    const key = berryManifestPart(manifest());
    expect(berryManifestPart(manifest({ scripts: { build: "tsc && vite build" }, version: "2.0.0" }))).toEqual(key);
    expect(berryManifestPart(manifest({ dependencies: { ms: "^2.1.2" } }))).not.toEqual(key);
    expect(berryManifestPart(manifest({ resolutions: { ms: "2.1.3" } }))).not.toEqual(key);
    expect(berryManifestPart("{ not json")).toEqual({ "package.json": "{ not json" });
  });

  it("is skipped only when its install state came back and the root package has no install script", () => {
    expect(berryInstallSkippable(manifest(), [".yarn/cache", ".yarn/install-state.gz", ".pnp.cjs"])).toBe(true);
    expect(berryInstallSkippable(manifest(), [".yarn/cache"])).toBe(false);
    expect(berryInstallSkippable(manifest({ scripts: { postinstall: "patch-package" } }), [".yarn/install-state.gz"])).toBe(false);
  });
});
