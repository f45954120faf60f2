import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedPackageManagers, type NpmRegistry, startNpmRegistry } from "../../../test/support/npm-registry";
import { skipWithout } from "../../../test/support/requirements";
import {
  installArgv,
  packageManagerEnv,
  type PackageManagerFacts,
  packageManagerRequest,
  PackageManagerToolchains,
  parsePackageManagerField,
  pnpmForLockfile,
  pnpmLockfileVersion,
} from "./package-managers";
import { ToolchainStore } from "./toolchain-store";

function facts(files: string[], extra: Partial<PackageManagerFacts> = {}): PackageManagerFacts {
  return { files: new Set(["package.json", ...files]), packageJson: {}, pnpmLock: null, ...extra };
}

function request(input: PackageManagerFacts) {
  const result = packageManagerRequest(input);
  if (!result.ok) throw new Error(result.reason);
  return result.value;
}

describe("packageManagerRequest", () => {
  it("reads the lockfile: npm, yarn classic, yarn berry with .yarnrc.yml, pnpm by its lockfileVersion, else npm", () => {
    expect(request(facts(["package-lock.json"]))).toEqual({ flavor: "npm", range: null, hash: null, lockfile: true, reason: "from package-lock.json" });
    expect(request(facts(["npm-shrinkwrap.json"]))).toMatchObject({ flavor: "npm", reason: "from npm-shrinkwrap.json" });
    expect(request(facts(["yarn.lock"]))).toEqual({ flavor: "yarn-classic", range: "1", hash: null, lockfile: true, reason: "from yarn.lock" });
    expect(request(facts(["yarn.lock", ".yarnrc.yml"]))).toMatchObject({ flavor: "yarn-berry", range: "4", reason: "from yarn.lock and .yarnrc.yml" });
    expect(request(facts(["pnpm-lock.yaml"], { pnpmLock: "lockfileVersion: '6.0'\n\nsettings:\n" }))).toMatchObject({
      flavor: "pnpm",
      range: "8",
      reason: "from pnpm-lock.yaml (lockfileVersion 6.0)",
    });
    expect(request(facts(["pnpm-lock.yaml"], { pnpmLock: "lockfileVersion: 42.0\n" }))).toMatchObject({
      range: "10",
      reason: "from pnpm-lock.yaml (lockfileVersion 42.0: the default pnpm)",
    });
    expect(request(facts([]))).toEqual({ flavor: "npm", range: null, hash: null, lockfile: false, reason: "no lockfile" });
  });

  it("prefers packageManager over the lockfile, yarn 2 and later being berry with or without .yarnrc.yml", () => {
    const hex = "ab".repeat(64);
    expect(request(facts(["package-lock.json"], { packageJson: { packageManager: `pnpm@9.15.9+sha512.${hex}` } }))).toEqual({
      flavor: "pnpm",
      range: "9.15.9",
      hash: { algorithm: "sha512", hex },
      lockfile: false,
      reason: 'from packageManager "pnpm@9.15.9"',
    });
    expect(request(facts(["yarn.lock"], { packageJson: { packageManager: "yarn@3.8.7" } }))).toMatchObject({ flavor: "yarn-berry", range: "3.8.7" });
    expect(request(facts(["yarn.lock"], { packageJson: { packageManager: "yarn@1.22.19" } }))).toMatchObject({ flavor: "yarn-classic", lockfile: true });
    expect(request(facts([], { packageJson: { packageManager: "npm@10.9.9" } }))).toMatchObject({ flavor: "npm", range: "10.9.9", lockfile: false });
  });

  it("refuses a packageManager it cannot provide or read, saying why", () => {
    const reason = (packageManager: unknown) => {
      const result = packageManagerRequest(facts([], { packageJson: { packageManager } }));
      return result.ok ? null : result.reason;
    };
    expect(reason("bun@1.2.0")).toBe('packageManager "bun@1.2.0" names bun; the engine provides npm, yarn and pnpm');
    expect(reason("yarn")).toMatch(/is not of the form name@version/);
    expect(reason("pnpm@latest")).toBe('packageManager "pnpm@latest" in package.json names no version of pnpm');
    expect(reason("pnpm@9+sha512.abcd")).toBe('packageManager "pnpm@9+sha512.abcd" pins a hash, which needs an exact version');
    expect(reason("pnpm@9.1.0+md5.abcd")).toMatch(/pins a md5 hash; corepack's are sha1, sha224, sha256, sha384, sha512/);
    expect(reason(9)).toBe("packageManager in package.json must be a string, such as pnpm@9.15.9");
  });
});

describe("the pieces of the choice", () => {
  it("parses corepack's field, a range included", () => {
    expect(parsePackageManagerField("yarn@^4.5.0")).toEqual({ ok: true, value: { name: "yarn", range: "^4.5.0", hash: null } });
    expect(parsePackageManagerField("pnpm@10.0.0+sha256.ABCDEF")).toMatchObject({ value: { hash: { algorithm: "sha256", hex: "abcdef" } } });
  });

  it("maps pnpm lockfile versions to the majors that read them", () => {
    expect(pnpmLockfileVersion("# comment\nlockfileVersion: '9.0'\n")).toBe("9.0");
    expect(pnpmLockfileVersion("lockfileVersion: 5.4\n")).toBe("5.4");
    expect(pnpmLockfileVersion("importers:\n")).toBeNull();
    expect(["5.3", "5.4", "6.0", "6.1", "9.0"].map(pnpmForLockfile)).toEqual(["6", "7", "8", "8", "9 || 10"]);
    expect(pnpmForLockfile("60.0")).toBeNull();
  });

  it("installs with dev dependencies, frozen to the lockfile when there is one", () => {
    expect(installArgv({ flavor: "npm", lockfile: true })).toEqual(["npm", "ci", "--include=dev", "--no-audit", "--no-fund"]);
    expect(installArgv({ flavor: "yarn-classic", lockfile: true })).toEqual(["yarn", "install", "--frozen-lockfile", "--production=false"]);
    expect(installArgv({ flavor: "yarn-classic", lockfile: false })).toEqual(["yarn", "install", "--production=false"]);
    expect(installArgv({ flavor: "yarn-berry", lockfile: true })).toEqual(["yarn", "install", "--immutable"]);
    expect(installArgv({ flavor: "yarn-berry", lockfile: false })).toEqual(["yarn", "install", "--no-immutable"]);
    expect(installArgv({ flavor: "pnpm", lockfile: true })).toEqual(["pnpm", "install", "--frozen-lockfile", "--prod=false"]);
  });

  it("points installs at the engine's registry when it is a mirror, unless the app's variables say otherwise", () => {
    expect(packageManagerEnv("npm", "https://registry.npmjs.org", {})).toEqual({});
    expect(packageManagerEnv("yarn-berry", "https://registry.npmjs.org", {})).toEqual({ YARN_ENABLE_TELEMETRY: "0" });
    expect(packageManagerEnv("pnpm", "http://10.0.0.5:4873/", {})).toEqual({
      npm_config_registry: "http://10.0.0.5:4873/",
      YARN_NPM_REGISTRY_SERVER: "http://10.0.0.5:4873/",
      YARN_UNSAFE_HTTP_WHITELIST: "10.0.0.5",
    });
    expect(packageManagerEnv("yarn-classic", "https://npm.example.com", { npm_config_registry: "https://own.example.com" })).toEqual({
      YARN_NPM_REGISTRY_SERVER: "https://npm.example.com",
    });
  });
});

const cached = await cachedPackageManagers();

describe.skipIf(skipWithout(cached.ok ? null : cached.missing))("PackageManagerToolchains, against an npm registry serving the real packages", () => {
  const packages = cached.ok ? cached : null!;
  let registry: NpmRegistry;
  let root: string;

  beforeAll(async () => {
    registry = await startNpmRegistry([packages.yarn.file, packages.berry.file, packages.pnpm9.file, packages.pnpm10.file]);
    root = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-package-managers-"));
  });

  afterAll(async () => {
    await registry?.close();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });

  const provide = (store: ToolchainStore, facts: PackageManagerFacts, lines: string[] = []) =>
    new PackageManagerToolchains({ registry: registry.url, store }).provide(request(facts), null, AbortSignal.timeout(60_000), (line) => lines.push(line));

  it("installs the newest pnpm its lockfile allows into the store, once, with a working bin", async () => {
    const store = new ToolchainStore(path.join(root, "one"));
    const lines: string[] = [];
    const pnpm = await provide(store, facts(["pnpm-lock.yaml"], { pnpmLock: "lockfileVersion: '9.0'\n" }), lines);
    expect(pnpm).toMatchObject({ version: packages.pnpm10.version, dir: store.dir("pnpm", packages.pnpm10.version) });
    expect(lines).toEqual([`Installing pnpm ${packages.pnpm10.version} from ${registry.url}`]);
    expect(execFileSync(path.join(pnpm.binDir!, "pnpm"), ["--version"], { encoding: "utf8" }).trim()).toBe(packages.pnpm10.version);
    const again = await provide(store, facts(["pnpm-lock.yaml"], { pnpmLock: "lockfileVersion: '9.0'\n" }));
    expect(again.description).toBe(`Package manager: pnpm ${packages.pnpm10.version} (from pnpm-lock.yaml (lockfileVersion 9.0))`);
    expect(registry.downloads().filter((download) => download.startsWith("/pnpm/"))).toHaveLength(1);
  });

  it("checks the hash packageManager pins: the tarball's, or for berry its bin/yarn.js as repo.yarnpkg.com serves it", async () => {
    const store = new ToolchainStore(path.join(root, "two"));
    const tarball = createHash("sha256")
      .update(await fsp.readFile(packages.pnpm9.file))
      .digest("hex");
    const pinned = await provide(store, facts([], { packageJson: { packageManager: `pnpm@${packages.pnpm9.version}+sha256.${tarball}` } }));
    expect(pinned.version).toBe(packages.pnpm9.version);
    await expect(provide(store, facts([], { packageJson: { packageManager: `pnpm@${packages.pnpm9.version}+sha256.${"0".repeat(64)}` } }))).rejects.toThrow(
      `pnpm@${packages.pnpm9.version} from the registry does not match the sha256 hash packageManager pins (000000000000…, got ${tarball.slice(0, 12)}…)`,
    );

    const berry = await provide(store, facts(["yarn.lock", ".yarnrc.yml"]));
    const yarnJs = createHash("sha512")
      .update(await fsp.readFile(path.join(berry.dir!, "lib", "node_modules", "@yarnpkg/cli-dist", "bin", "yarn.js")))
      .digest("hex");
    const checked = await provide(store, facts([], { packageJson: { packageManager: `yarn@${packages.berry.version}+sha512.${yarnJs}` } }));
    expect(checked).toMatchObject({ flavor: "yarn-berry", version: packages.berry.version });
    expect(execFileSync(path.join(checked.binDir!, "yarn"), ["--version"], { encoding: "utf8", cwd: root }).trim()).toBe(packages.berry.version);
  });

  it("fails naming the pin when the registry has no such release, and leaves npm to Node unless pinned", async () => {
    const store = new ToolchainStore(path.join(root, "three"));
    await expect(provide(store, facts([], { packageJson: { packageManager: "yarn@1.0.0" } }))).rejects.toThrow(
      `no release of yarn on ${registry.url} satisfies from packageManager "yarn@1.0.0" ("1.0.0"; the newest is ${packages.yarn.version})`,
    );
    expect(await provide(store, facts(["package-lock.json"]))).toEqual({
      flavor: "npm",
      version: null,
      dir: null,
      binDir: null,
      description: "Package manager: npm, the engine host's own (from package-lock.json)",
    });
  });
});
