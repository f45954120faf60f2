import { describe, expect, it } from "vitest";
import { cacheEnv, cacheKey, cacheKeyParts } from "./build-cache";

describe("the build cache's key", () => {
  const parts = cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node");

  it("is the same for the same lockfiles, toolchains and kind of app, whatever order the lockfiles were read in", () => {
    const again = cacheKeyParts({ "package.json": "x", "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node");
    const reordered = cacheKeyParts({ "yarn.lock": "ms@^2.1.3", "package.json": "x" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node");
    expect(cacheKey(again)).toBe(cacheKey(reordered));
    expect(cacheKey(parts)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("changes with a lockfile's contents, a toolchain's version or the kind of app", () => {
    const key = cacheKey(parts);
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.4" }, ["node 22.22.0", "yarn-classic 1.22.22"], "node"))).not.toBe(key);
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 18.20.8", "yarn-classic 1.22.22"], "node"))).not.toBe(key);
    expect(cacheKey(cacheKeyParts({ "yarn.lock": "ms@^2.1.3" }, ["node 22.22.0", "yarn-classic 1.22.22"], "static"))).not.toBe(key);
  });
});

describe("where each tool is told to keep its downloads", () => {
  it("names each package manager's own setting, and pip's for a Python app", () => {
    expect(cacheEnv("npm", false, "/c", {})).toEqual({ npm_config_cache: "/c" });
    expect(cacheEnv("yarn-classic", false, "/c", {})).toEqual({ YARN_CACHE_FOLDER: "/c" });
    // Its Plug'n'Play app loads packages from its cache at run time: that stays where the release sees it.
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
