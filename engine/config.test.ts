import os from "node:os";
import { describe, expect, it } from "vitest";
import { loadEngineConfig } from "./config";

const required = { SLIPWAY_ENGINE_URL: "http://127.0.0.1:3000", SLIPWAY_ENGINE_TOKEN: "swe_test" };

describe("the engine's toolchain configuration", () => {
  it("installs the current LTS from registry.npmjs.org unless told otherwise", () => {
    const config = loadEngineConfig(required);
    expect(config.npmRegistry).toBe("https://registry.npmjs.org");
    expect(config.nodeDefault).toEqual({ source: "SLIPWAY_NODE_VERSION", spec: "lts", want: { lts: 0 } });
  });

  it("takes a mirror, a default Node version or the host's own", () => {
    const config = loadEngineConfig({ ...required, SLIPWAY_NPM_REGISTRY: "https://npm.example.internal/repository/npm/", SLIPWAY_NODE_VERSION: "22" });
    expect(config.npmRegistry).toBe("https://npm.example.internal/repository/npm/");
    expect(config.nodeDefault).toMatchObject({ want: { range: "22" } });
    expect(loadEngineConfig({ ...required, SLIPWAY_NODE_VERSION: "system" }).nodeDefault).toBe("system");
  });

  it("passes pip's index settings of its environment to Python installs, and nothing else of it", () => {
    const config = loadEngineConfig({
      ...required,
      PIP_INDEX_URL: "https://pypi.example.internal/simple/",
      PIP_TRUSTED_HOST: "pypi.example.internal",
      PIP_REQUIRE_VIRTUALENV: "0",
      AWS_SECRET_ACCESS_KEY: "not for builds",
    });
    expect(config.pip).toEqual({ PIP_INDEX_URL: "https://pypi.example.internal/simple/", PIP_TRUSTED_HOST: "pypi.example.internal" });
    expect(loadEngineConfig(required).pip).toEqual({});
  });

  it("keeps the secrets of pip's index URLs to mask them in build logs, never a user name beside a password", () => {
    const config = loadEngineConfig({
      ...required,
      PIP_INDEX_URL: "https://ci:pa%24%24word@pypi.example.internal/simple/",
      PIP_EXTRA_INDEX_URL: "https://tok-3f9a@extra.example.internal/simple/ https://public.example.internal/simple/",
    });
    expect(config.configSecrets.sort()).toEqual(["pa$$word", "pa%24%24word", "tok-3f9a"]);
    expect(loadEngineConfig(required).configSecrets).toEqual([]);
  });

  it("refuses at boot what it could not use at deploy time", () => {
    expect(() => loadEngineConfig({ ...required, SLIPWAY_NODE_VERSION: "newest" })).toThrow(
      'Invalid engine configuration: SLIPWAY_NODE_VERSION "newest" is not a Node version or semver range (lts, a version or range, or system)',
    );
    expect(() => loadEngineConfig({ ...required, SLIPWAY_NPM_REGISTRY: "file:///srv/npm" })).toThrow("SLIPWAY_NPM_REGISTRY must be an http:// or https:// URL");
    expect(() => loadEngineConfig({ ...required, SLIPWAY_NPM_REGISTRY: "https://ci:tok@npm.example.internal/" })).toThrow(
      "SLIPWAY_NPM_REGISTRY must not carry credentials",
    );
  });
});

describe("the engine's build cache limit", () => {
  it("is 1024 MB per service unless SLIPWAY_BUILD_CACHE_MB says, and refuses what is not a size", () => {
    expect(loadEngineConfig(required).buildCacheMb).toBe(1024);
    expect(loadEngineConfig({ ...required, SLIPWAY_BUILD_CACHE_MB: "256" }).buildCacheMb).toBe(256);
    expect(() => loadEngineConfig({ ...required, SLIPWAY_BUILD_CACHE_MB: "lots" })).toThrow(/SLIPWAY_BUILD_CACHE_MB must be a number of megabytes/);
  });
});

describe("the length of a minute of sleep when idle", () => {
  it("is a real minute unless SLIPWAY_SLEEP_MINUTE_MS shortens it (for journeys), and refuses what is not a duration", () => {
    expect(loadEngineConfig(required).sleepMinuteMs).toBe(60_000);
    expect(loadEngineConfig({ ...required, SLIPWAY_SLEEP_MINUTE_MS: "5000" }).sleepMinuteMs).toBe(5000);
    expect(() => loadEngineConfig({ ...required, SLIPWAY_SLEEP_MINUTE_MS: "soon" })).toThrow(/SLIPWAY_SLEEP_MINUTE_MS must be a number of milliseconds/);
    expect(() => loadEngineConfig({ ...required, SLIPWAY_SLEEP_MINUTE_MS: "10" })).toThrow(/SLIPWAY_SLEEP_MINUTE_MS is at least 100/);
  });
});

describe("the engine's concurrency", () => {
  it("deploys as many services at once as its host has cores unless SLIPWAY_ENGINE_CONCURRENCY says, and refuses what is not a count", () => {
    expect(loadEngineConfig(required).concurrency).toBe(os.availableParallelism());
    expect(loadEngineConfig({ ...required, SLIPWAY_ENGINE_CONCURRENCY: "1" }).concurrency).toBe(1);
    for (const bad of ["0", "two", "1.5", "", " ", "1e2"]) {
      expect(() => loadEngineConfig({ ...required, SLIPWAY_ENGINE_CONCURRENCY: bad })).toThrow(/SLIPWAY_ENGINE_CONCURRENCY must be a whole number/);
    }
  });
});

describe("the engine of a kubernetes cluster", () => {
  it("uses its service account inside the cluster, a kubeconfig context beside it, and the cluster's routing, storage and registry", () => {
    const inside = loadEngineConfig({ ...required, SLIPWAY_ENGINE_RUNTIME: "kubernetes", KUBERNETES_SERVICE_HOST: "10.96.0.1" });
    expect(inside.kubernetes).toEqual({
      inCluster: true,
      kubeconfig: expect.stringMatching(/\.kube\/config$/),
      settings: {
        routing: { kind: "ingress", className: null },
        storageClass: null,
        databaseStorage: "10Gi",
        registry: null,
        registrySecret: null,
        builder: "kaniko",
        engineNamespace: "slipway-system",
      },
    });
    const beside = loadEngineConfig({
      ...required,
      SLIPWAY_ENGINE_RUNTIME: "kubernetes",
      SLIPWAY_KUBE_CONTEXT: "kind-slipway",
      SLIPWAY_KUBE_ROUTING: "gateway:gateways/public",
      SLIPWAY_KUBE_STORAGE_CLASS: "fast-ssd",
      SLIPWAY_KUBE_REGISTRY: "registry.example.com/slipway",
      SLIPWAY_KUBE_BUILDER: "buildkit",
    });
    expect(beside.kubernetes).toMatchObject({
      inCluster: false,
      context: "kind-slipway",
      settings: {
        routing: { kind: "gateway", namespace: "gateways", name: "public" },
        storageClass: "fast-ssd",
        registry: "registry.example.com/slipway",
        builder: "buildkit",
      },
    });
    expect(() => loadEngineConfig({ ...required, SLIPWAY_KUBE_ROUTING: "gateway:public" })).toThrow(
      "SLIPWAY_KUBE_ROUTING must be ingress or gateway:<namespace>/<name>",
    );
    expect(() => loadEngineConfig({ ...required, SLIPWAY_KUBE_BUILDER: "docker" })).toThrow("SLIPWAY_KUBE_BUILDER must be kaniko or buildkit");
  });
});
