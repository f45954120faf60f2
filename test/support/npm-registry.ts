import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import * as tar from "tar";

/**
 * A tiny npm registry on 127.0.0.1, as a mirror would be: it serves the packuments and tarballs
 * of a set of real package tarballs (`npm pack` output), the packuments generated from them
 * (each version's package.json, its `dist.tarball` pointing here, its `dist.integrity` computed
 * from the bytes). It records every request, and can be told to serve a tarball tampered with.
 */
export type NpmRegistry = {
  url: string;
  /** Every path asked for, in order. */
  requests: string[];
  /** The tarball downloads so far (paths ending in .tgz). */
  downloads(): string[];
  /** From now on, `name@version`'s tarball is served with one byte changed (its packument keeps the true integrity). */
  tamper(name: string, version: string): void;
  close(): Promise<void>;
};

type Served = { name: string; version: string; file: string; manifest: Record<string, unknown>; integrity: string; shasum: string; mtime: Date };

/**
 * The package.json inside a package tarball: in its one top-level directory, which npm pack
 * names package/ and some publishers otherwise (DefinitelyTyped's @types tarballs use the name).
 */
async function manifestOf(file: string): Promise<Record<string, unknown>> {
  let text = "";
  let found = false;
  await tar.t({
    file,
    onReadEntry: (entry) => {
      if (found || !/^[^/]+\/package\.json$/.test(entry.path)) return;
      found = true;
      entry.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    },
  });
  if (text === "") throw new Error(`${file} has no package.json in its top-level directory`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function servedFrom(file: string): Promise<Served> {
  const manifest = await manifestOf(file);
  const bytes = await fsp.readFile(file);
  // Node's Linux packages say "v18.20.8" in their package.json; the registry lists them as 18.20.8.
  const version = semver.clean(String(manifest.version));
  if (!version) throw new Error(`${file}: version ${String(manifest.version)} is not semver`);
  return {
    name: String(manifest.name),
    version,
    file,
    manifest,
    integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
    shasum: createHash("sha1").update(bytes).digest("hex"),
    mtime: (await fsp.stat(file)).mtime,
  };
}

/** `tls`: served over HTTPS with this certificate (its URLs then https://), as a registry behind a corporate CA is. */
export async function startNpmRegistry(tarballs: string[], options: { tls?: { cert: string; key: string } } = {}): Promise<NpmRegistry> {
  const packages = new Map<string, Map<string, Served>>();
  for (const served of await Promise.all(tarballs.map(servedFrom))) {
    const versions = packages.get(served.name) ?? new Map<string, Served>();
    versions.set(served.version, served);
    packages.set(served.name, versions);
  }
  const tampered = new Set<string>();
  const requests: string[] = [];
  let url = "";

  const tarballPath = (served: Served) => `/${served.name}/-/${served.name.split("/").at(-1)}-${served.version}.tgz`;
  const packument = (name: string, versions: Map<string, Served>) => {
    const all = [...versions.values()];
    return {
      _id: name,
      name,
      "dist-tags": {
        latest:
          semver.maxSatisfying(
            all.map((served) => served.version),
            "*",
          ) ?? all[0]!.version,
      },
      versions: Object.fromEntries(
        all.map((served) => [
          served.version,
          {
            ...served.manifest,
            version: served.version,
            _id: `${name}@${served.version}`,
            dist: { tarball: `${url}${tarballPath(served)}`, integrity: served.integrity, shasum: served.shasum },
          },
        ]),
      ),
      time: Object.fromEntries(all.map((served) => [served.version, served.mtime.toISOString()])),
    };
  };

  const handler: http.RequestListener = (req, res) => {
    const pathname = new URL(req.url ?? "/", "http://registry").pathname;
    requests.push(pathname);
    if (req.method !== "GET") return void res.writeHead(405).end();
    const name = decodeURIComponent(pathname.slice(1));
    const versions = packages.get(name);
    if (versions) {
      res.setHeader("content-type", "application/json");
      return void res.end(JSON.stringify(packument(name, versions)));
    }
    const served = [...packages.values()].flatMap((byVersion) => [...byVersion.values()]).find((candidate) => tarballPath(candidate) === pathname);
    if (!served) return void res.writeHead(404, { "content-type": "application/json" }).end('{"error":"Not found"}');
    res.setHeader("content-type", "application/octet-stream");
    if (!tampered.has(`${served.name}@${served.version}`)) return void fs.createReadStream(served.file).pipe(res);
    void fsp.readFile(served.file).then((bytes) => {
      const last = bytes.length - 1;
      bytes.writeUInt8(bytes.readUInt8(last) ^ 0xff, last);
      res.end(bytes);
    });
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `${options.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    downloads: () => requests.filter((request) => request.endsWith(".tgz")),
    tamper: (name, version) => void tampered.add(`${name}@${version}`),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A small real package tarball, as `npm pack` makes them (files under package/), for tests that need no real Node. */
export async function packPackage(
  dir: string,
  manifest: { name: string; version: string } & Record<string, unknown>,
  files: Record<string, { text: string; mode?: number }>,
): Promise<string> {
  const root = await fsp.mkdtemp(path.join(dir, ".pack-"));
  const packageDir = path.join(root, "package");
  await fsp.mkdir(packageDir);
  await fsp.writeFile(path.join(packageDir, "package.json"), JSON.stringify(manifest, null, 2));
  for (const [file, { text, mode }] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(packageDir, file)), { recursive: true });
    await fsp.writeFile(path.join(packageDir, file), text, { mode: mode ?? 0o644 });
  }
  const tarball = path.join(dir, `${manifest.name.replace("@", "").replace("/", "-")}-${manifest.version}.tgz`);
  await tar.c({ gzip: true, file: tarball, cwd: root, portable: true }, ["package"]);
  await fsp.rm(root, { recursive: true, force: true });
  return tarball;
}

/** Where test/fixtures/registry/fetch keeps the real packages it fetched at install time. */
export const registryCacheDir = fileURLToPath(new URL("../fixtures/registry/cache/", import.meta.url));

/**
 * The real packages of the registry cache: Node's Linux build for this host's CPU at 18.x and
 * 22.x, and npm. Null, with what is missing, when test/fixtures/registry/fetch has not run here.
 */
export async function cachedPackages(): Promise<
  | { ok: true; node18: { file: string; version: string }; node22: { file: string; version: string }; npm: { file: string; version: string } }
  | { ok: false; missing: string }
> {
  const files = await fsp.readdir(registryCacheDir).catch(() => []);
  const find = (pattern: RegExp) => {
    const file = files.find((name) => pattern.test(name));
    return file ? { file: path.join(registryCacheDir, file), version: pattern.exec(file)![1]! } : null;
  };
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const node18 = find(new RegExp(`^node-linux-${arch}-(18\\.\\d+\\.\\d+)\\.tgz$`));
  const node22 = find(new RegExp(`^node-linux-${arch}-(22\\.\\d+\\.\\d+)\\.tgz$`));
  const npm = find(/^npm-(\d+\.\d+\.\d+)\.tgz$/);
  if (!node18 || !node22 || !npm) return { ok: false, missing: "the packages of the tests' npm registry (run test/fixtures/registry/fetch)" };
  return { ok: true, node18, node22, npm };
}

/**
 * The package managers of the registry cache (yarn classic, yarn berry's @yarnpkg/cli-dist, pnpm
 * 9 and 10) and ms, the one dependency of the test apps that use them; null, with what is
 * missing, when test/fixtures/registry/fetch has not run here.
 */
export async function cachedPackageManagers(): Promise<
  | {
      ok: true;
      yarn: { file: string; version: string };
      berry: { file: string; version: string };
      pnpm9: { file: string; version: string };
      pnpm10: { file: string; version: string };
      ms: { file: string; version: string };
    }
  | { ok: false; missing: string }
> {
  const files = await fsp.readdir(registryCacheDir).catch(() => []);
  const find = (pattern: RegExp) => {
    const file = files.find((name) => pattern.test(name));
    return file ? { file: path.join(registryCacheDir, file), version: pattern.exec(file)![1]! } : null;
  };
  const yarn = find(/^yarn-(1\.\d+\.\d+)\.tgz$/);
  const berry = find(/^yarnpkg-cli-dist-(4\.\d+\.\d+)\.tgz$/);
  const pnpm9 = find(/^pnpm-(9\.\d+\.\d+)\.tgz$/);
  const pnpm10 = find(/^pnpm-(10\.\d+\.\d+)\.tgz$/);
  const ms = find(/^ms-(\d+\.\d+\.\d+)\.tgz$/);
  if (!yarn || !berry || !pnpm9 || !pnpm10 || !ms)
    return { ok: false, missing: "the package managers of the tests' npm registry (run test/fixtures/registry/fetch)" };
  return { ok: true, yarn, berry, pnpm9, pnpm10, ms };
}
