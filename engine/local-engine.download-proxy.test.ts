import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { startConnectProxy } from "../test/support/connect-proxy";
import { cachedPackageManagers, cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { skipWithout } from "../test/support/requirements";
import { testEnv } from "../test/support/process-env";
import { testPort } from "../test/support/ports";
import { throwawayCa } from "../test/support/throwaway-ca";
import { parseNodeDefault } from "./config";
import type { Engine } from "./core";
import { fetchPackument } from "./runtime/toolchains/registry";

const PROXY_VARIABLES = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"];

// The real Node 18 and 22 and npm packages test/fixtures/registry/fetch keeps.
const nodes = await cachedPackages();
// ms, a small real package, for a registry over HTTPS.
const managers = await cachedPackageManagers();

/**
 * The engine's own downloads (Node and npm here; yarn and pnpm come the same way, registry.ts)
 * on a host whose way out is an egress proxy: they go through the proxy the engine's environment
 * names, unless NO_PROXY names the registry. The engine runs in this process; its environment is
 * read at each download.
 */
describe.skipIf(skipWithout(nodes.ok ? null : nodes.missing))("local engine: its Node downloads go through the host's proxy", () => {
  const { node18, node22, npm } = nodes.ok ? nodes : null!;
  const proxyEnv = testEnv(PROXY_VARIABLES);
  let mirror: NpmRegistry;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    mirror = await startNpmRegistry([node18.file, node22.file, npm.file]);
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: mirror.url, nodeDefault: parseNodeDefault("22") });
    engine = env.newEngine();
    await engine.start();
  }, 60_000);

  afterEach(() => proxyEnv.restore());

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await mirror?.close();
  });

  /** Deploys the node-version fixture on the Node its engines.node names: a Node this engine has not installed yet. */
  async function deploy(name: string, engines: string) {
    const base = JSON.parse(await fsp.readFile(path.join(fixture("node-version"), "package.json"), "utf8")) as Record<string, unknown>;
    await git.createRepo(name, fixture("node-version"), { "package.json": JSON.stringify({ ...base, engines: { node: engines } }, null, 2) });
    const deployment = task("DEPLOY", [service({ name, config: { git: { url: git.url(name) }, healthCheckPath: "/health" } })]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    return { final: env.final(deployment.deploymentId), log };
  }

  it("downloads Node and npm through HTTP_PROXY: the proxy forwarded the packuments and tarballs the engine asked for", async () => {
    const proxy = await startConnectProxy();
    try {
      proxyEnv.replace({ HTTP_PROXY: proxy.url });
      const before = mirror.downloads().length;
      const { final, log } = await deploy("through-proxy", "18.x");
      expect(final?.status, log.join("\n")).toBe("succeeded");
      const arch = `node-linux-${os.arch()}`;
      const tarballs = [`/${arch}/-/${arch}-${node18.version}.tgz`, `/npm/-/npm-${npm.version}.tgz`];
      expect(mirror.downloads().slice(before)).toEqual(tarballs);
      // In absolute form, as npm and curl send an http:// request to a proxy (a tunnel to a port other than 443 is refused by Squid's defaults).
      expect(proxy.forwardedUrls).toEqual([`/${arch}`, tarballs[0], "/npm", tarballs[1]].map((pathname) => `${mirror.url}${pathname}`));
      expect(proxy.tunnels).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 180_000);

  it("downloads directly from a registry NO_PROXY names, with HTTP_PROXY still set", async () => {
    const proxy = await startConnectProxy();
    try {
      proxyEnv.replace({ HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" });
      const before = mirror.downloads().length;
      const { final, log } = await deploy("direct", "22.x");
      expect(final?.status, log.join("\n")).toBe("succeeded");
      expect(mirror.downloads().slice(before)).toContain(`/node-linux-${os.arch()}/-/node-linux-${os.arch()}-${node22.version}.tgz`);
      expect(proxy.forwardedUrls).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 180_000);
});

const registryModule = fileURLToPath(new URL("./runtime/toolchains/registry.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../", import.meta.url));

/**
 * A packument read by the engine's registry client in a process of its own, as the engine runs:
 * NODE_EXTRA_CA_CERTS is read when Node starts, so only a new process can be given a CA. Resolves
 * to what it printed, or rejects with its stderr.
 */
async function packumentInProcess(registry: string, env: NodeJS.ProcessEnv): Promise<string> {
  const script = `import(${JSON.stringify(registryModule)}).then(async ({ fetchPackument }) => {
    const packument = await fetchPackument(process.env.TEST_REGISTRY, "ms", AbortSignal.timeout(20000));
    console.log(Object.keys(packument.versions).join(","));
  }).catch((error) => { console.error(error.message); process.exit(1); });`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "--eval", script], {
    cwd: repoRoot,
    env: { ...env, TEST_REGISTRY: registry },
  });
  return stdout.trim();
}

/**
 * A registry over HTTPS behind a TLS-intercepting proxy: the engine's download reaches it through
 * the proxy's tunnel (HTTPS_PROXY) and trusts its CA through NODE_EXTRA_CA_CERTS, as Node's own
 * fetch would.
 */
describe.skipIf(skipWithout(managers.ok ? null : managers.missing))("the engine's registry client over HTTPS through a proxy", () => {
  const { ms } = managers.ok ? managers : null!;
  let dir: string;
  let ca: Awaited<ReturnType<typeof throwawayCa>>;
  let secured: NpmRegistry;
  // The engine's environment without a proxy or a CA of its own: each test adds what it is about.
  const hostEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !PROXY_VARIABLES.includes(key) && key !== "NODE_EXTRA_CA_CERTS"),
  ) as NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-download-ca-"));
    ca = await throwawayCa(dir);
    secured = await startNpmRegistry([ms.file], { tls: { cert: ca.cert, key: ca.key } });
  }, 30_000);

  afterAll(async () => {
    await secured?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it("tunnels through HTTPS_PROXY and trusts the CA NODE_EXTRA_CA_CERTS names", async () => {
    const proxy = await startConnectProxy();
    try {
      const versions = await packumentInProcess(secured.url, { ...hostEnv, HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: ca.caPath });
      expect(versions).toBe(ms.version);
      expect(proxy.tunnels).toEqual([new URL(secured.url).host]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("refuses the registry's certificate through the proxy when the engine's host does not trust its CA", async () => {
    const proxy = await startConnectProxy();
    try {
      const failed = packumentInProcess(secured.url, { ...hostEnv, HTTPS_PROXY: proxy.url });
      await expect(failed).rejects.toThrow(
        /could not reach the npm registry at .* \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)\)/,
      );
      expect(proxy.tunnels).toEqual([new URL(secured.url).host]);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});

describe("the engine's registry client through a proxy that refuses", () => {
  const proxyEnv = testEnv(PROXY_VARIABLES);
  let refusing: http.Server;
  let proxyUrl: string;

  beforeAll(async () => {
    // As a proxy that requires credentials answers a request, and one whose rules deny a tunnel.
    refusing = http.createServer((_req, res) => res.writeHead(407, { "proxy-authenticate": 'Basic realm="proxy"' }).end());
    refusing.on("connect", (_req: http.IncomingMessage, socket: import("node:net").Socket) => socket.end("HTTP/1.1 403 Forbidden\r\n\r\n"));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    proxyUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
  });

  afterEach(() => proxyEnv.restore());

  afterAll(async () => {
    refusing?.closeAllConnections();
    await new Promise((resolve) => refusing?.close(resolve));
  });

  it("says what the proxy answered, for an https:// and an http:// registry", async () => {
    proxyEnv.replace({ HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl });
    // Nothing listens at either registry: only the proxy is asked.
    await expect(fetchPackument("https://127.0.0.1:2", "ms", AbortSignal.timeout(10_000))).rejects.toThrow(
      "could not reach the npm registry at https://127.0.0.1:2 (Proxy response (403) !== 200 when HTTP Tunneling)",
    );
    await expect(fetchPackument("http://127.0.0.1:2", "ms", AbortSignal.timeout(10_000))).rejects.toThrow(
      "could not reach the npm registry at http://127.0.0.1:2 (Proxy Authentication Required (407))",
    );
  });

  it("names the proxy, without its credentials, when nothing listens at its port, not the registry it was asked for", async () => {
    const deadPort = await testPort();
    proxyEnv.replace({ HTTPS_PROXY: `http://corp:s3cret@127.0.0.1:${deadPort}`, http_proxy: `http://127.0.0.1:${deadPort}` });
    const https = fetchPackument("https://registry.example:8443", "ms", AbortSignal.timeout(10_000));
    await expect(https).rejects.toThrow(
      `could not reach the npm registry at https://registry.example:8443: the request went through the proxy http://127.0.0.1:${deadPort} (the engine's HTTPS_PROXY), which refused the connection (ECONNREFUSED)`,
    );
    await expect(https).rejects.not.toThrow("s3cret");
    await expect(fetchPackument("http://registry.example", "ms", AbortSignal.timeout(10_000))).rejects.toThrow(
      `the request went through the proxy http://127.0.0.1:${deadPort} (the engine's http_proxy), which refused the connection`,
    );
  });

  it("blames the registry, not the proxy, for a registry NO_PROXY names", async () => {
    const deadPort = await testPort();
    proxyEnv.replace({ HTTP_PROXY: `http://127.0.0.1:${await testPort()}`, NO_PROXY: "localhost,127.0.0.1" });
    await expect(fetchPackument(`http://127.0.0.1:${deadPort}`, "ms", AbortSignal.timeout(10_000))).rejects.toThrow(
      `could not reach the npm registry at http://127.0.0.1:${deadPort} (ECONNREFUSED): set SLIPWAY_NPM_REGISTRY`,
    );
  });
});
