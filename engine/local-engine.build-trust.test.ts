import { createHash } from "node:crypto";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { startConnectProxy } from "../test/support/connect-proxy";
import { cachedPackageManagers, cachedPackages, type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import { cachedWheels, type PythonIndex, startPythonIndex } from "../test/support/python-index";
import { skipWithout } from "../test/support/requirements";
import { testEnv } from "../test/support/process-env";
import { throwawayCa } from "../test/support/throwaway-ca";
import { loadEngineConfig, parseNodeDefault } from "./config";
import type { Engine } from "./core";
import { hostNetworkEnv, systemCaBundle } from "./runtime/shared/processes-env";

const BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

describe("hostNetworkEnv: the engine host's CAs and proxy, for builds", () => {
  it("points Node, pip and requests at the system's bundle when the engine names no CA file", () => {
    expect(hostNetworkEnv({}, {}, BUNDLE)).toEqual({
      env: { NODE_EXTRA_CA_CERTS: BUNDLE, PIP_CERT: BUNDLE, REQUESTS_CA_BUNDLE: BUNDLE },
      files: [BUNDLE],
    });
    expect(hostNetworkEnv({}, {}, null)).toEqual({ env: {}, files: [] });
    expect(systemCaBundle((file) => file === "/etc/pki/tls/certs/ca-bundle.crt")).toBe("/etc/pki/tls/certs/ca-bundle.crt");
  });

  it("passes the engine's own CA files on, each to be shown in the sandbox, unless the app sets the variable", () => {
    const host = { NODE_EXTRA_CA_CERTS: "/opt/corp/ca.pem", SSL_CERT_FILE: "/srv/ca.pem", PATH: "/usr/bin", AWS_SECRET_ACCESS_KEY: "no" };
    const { env, files } = hostNetworkEnv({ NODE_EXTRA_CA_CERTS: "/app/ca.pem" }, host, BUNDLE);
    expect(env).toEqual({ PIP_CERT: BUNDLE, REQUESTS_CA_BUNDLE: BUNDLE, SSL_CERT_FILE: "/srv/ca.pem" });
    expect(files.sort()).toEqual([BUNDLE, "/srv/ca.pem"]);
    expect(hostNetworkEnv({}, host, BUNDLE).files.sort()).toEqual([BUNDLE, "/opt/corp/ca.pem", "/srv/ca.pem"]);
  });

  it("gives pip's two variables one bundle (requests lets REQUESTS_CA_BUNDLE override PIP_CERT), and none when the app sets either", () => {
    expect(hostNetworkEnv({}, { PIP_CERT: "/opt/corp/ca.pem" }, BUNDLE).env).toMatchObject({
      PIP_CERT: "/opt/corp/ca.pem",
      REQUESTS_CA_BUNDLE: "/opt/corp/ca.pem",
    });
    expect(hostNetworkEnv({}, { REQUESTS_CA_BUNDLE: "/opt/corp/ca.pem" }, BUNDLE).env).toMatchObject({ PIP_CERT: "/opt/corp/ca.pem" });
    expect(hostNetworkEnv({ PIP_CERT: "/app/ca.pem" }, { REQUESTS_CA_BUNDLE: "/opt/corp/ca.pem" }, BUNDLE).env).toEqual({ NODE_EXTRA_CA_CERTS: BUNDLE });
  });

  it("passes the engine's proxy in both cases; an app that sets a proxy variable in either case keeps its own", () => {
    const host = { HTTPS_PROXY: "http://proxy:3128", http_proxy: "http://proxy:3128", NO_PROXY: "localhost,.internal", no_proxy: "localhost" };
    expect(hostNetworkEnv({}, host, null).env).toEqual(host);
    expect(hostNetworkEnv({ https_proxy: "http://mine:8080", NO_PROXY: "" }, host, null).env).toEqual({ http_proxy: "http://proxy:3128" });
  });

  it("masks a proxy's credentials in build logs, as pip's index's", () => {
    const base = { SLIPWAY_ENGINE_URL: "http://127.0.0.1:3000", SLIPWAY_ENGINE_TOKEN: "t" };
    const config = loadEngineConfig({ ...base, HTTPS_PROXY: "http://corp:s3cr%40t@proxy:3128", http_proxy: "http://token42@proxy:3128" });
    expect(config.configSecrets).toEqual(expect.arrayContaining(["s3cr%40t", "s3cr@t", "token42"]));
  });
});

// The real Node 22, npm and ms packages test/fixtures/registry/fetch keeps.
const nodes = await cachedPackages();
const managers = await cachedPackageManagers();
// Debian 12's Flask and gunicorn, packed into wheels by test/fixtures/pypi/fetch.
const wheels = await cachedWheels();
const missing = !nodes.ok ? nodes.missing : !managers.ok ? managers.missing : null;

/**
 * Builds behind a corporate network: the app's dependencies come from a registry over HTTPS whose
 * certificate a CA of the network signed (a TLS-intercepting proxy's), and through its egress
 * proxy. The app runs on a Node the engine downloads (its own list of CAs, not the host's store).
 * The engine runs in this process, which cannot be made to trust a CA after it started: the
 * engine's own downloads (Node, npm) come from a plain-HTTP mirror, the app's dependencies from
 * the HTTPS registry its variables name; what the engine's environment says of CAs and proxy is
 * read at each build.
 */
describe.skipIf(skipWithout(missing))("local engine: builds trust the engine host's CAs and use its proxy", () => {
  const { node22, npm } = nodes.ok ? nodes : null!;
  const { ms } = managers.ok ? managers : null!;
  const hostEnv = testEnv(["NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"]);
  let dir: string;
  let ca: Awaited<ReturnType<typeof throwawayCa>>;
  let mirror: NpmRegistry;
  let secured: NpmRegistry;
  let index: PythonIndex | undefined;
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    // Outside /etc, so the build's sandbox shows it only if the engine binds it.
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-ca-"));
    await fsp.chmod(dir, 0o755);
    ca = await throwawayCa(dir);
    mirror = await startNpmRegistry([node22.file, npm.file]);
    secured = await startNpmRegistry([ms.file], { tls: { cert: ca.cert, key: ca.key } });
    if (wheels.ok) index = await startPythonIndex(wheels.dir, { tls: { cert: ca.cert, key: ca.key } });
    git = await startGitServer();
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 }, undefined, { registry: mirror.url, nodeDefault: parseNodeDefault("22") });
    engine = env.newEngine();
    await engine.start();
  }, 60_000);

  afterEach(() => hostEnv.restore());

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await secured?.close();
    await index?.close();
    await mirror?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  /** The yarn classic fixture's app (ms a dependency) installed by `npm ci`, from a lockfile that resolves ms on the HTTPS registry. */
  async function appFiles(): Promise<Record<string, string>> {
    const integrity = `sha512-${createHash("sha512")
      .update(await fsp.readFile(ms.file))
      .digest("base64")}`;
    const lock = {
      name: "slipway-fixture-yarn-classic",
      version: "1.0.0",
      lockfileVersion: 3,
      requires: true,
      packages: {
        "": { name: "slipway-fixture-yarn-classic", version: "1.0.0", dependencies: { ms: "^2.1.3" } },
        "node_modules/ms": { version: ms.version, resolved: `${secured.url}/ms/-/ms-${ms.version}.tgz`, integrity },
      },
    };
    return { "package-lock.json": JSON.stringify(lock, null, 2) };
  }

  async function deploy(name: string, variables: Record<string, string> = {}) {
    await git.createRepo(name, fixture("yarn-classic"), await appFiles());
    return deployRepo(name, { healthCheckPath: "/health" }, { npm_config_registry: secured.url, ...variables });
  }

  async function deployRepo(name: string, config: Record<string, unknown>, variables: Record<string, string>) {
    const spec = service({
      name,
      config: { git: { url: git.url(name) }, ...config },
      variables: Object.entries(variables).map(([key, value]) => ({ key, value, secret: false })),
    });
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    return { final: env.final(deployment.deploymentId), log };
  }

  const msDownloads = () => secured.downloads().filter((download) => download === `/ms/-/ms-${ms.version}.tgz`).length;

  it("fails the install naming the certificate when the engine's host does not trust the registry's CA", async () => {
    process.env.NODE_EXTRA_CA_CERTS = BUNDLE;
    const { final, log } = await deploy("untrusted");
    expect(final?.status, log.join("\n")).toBe("failed");
    expect(final?.message).toContain("install command `npm ci --include=dev --no-audit --no-fund` failed");
    // Node's words for a certificate whose issuer it does not know (the chain the registry sends decides which).
    expect(final?.message).toMatch(/npm error code (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/);
  }, 120_000);

  it("installs from the HTTPS registry when the engine's NODE_EXTRA_CA_CERTS names its CA, a file outside /etc", async () => {
    process.env.NODE_EXTRA_CA_CERTS = ca.caPath;
    const before = msDownloads();
    const { final, log } = await deploy("trusted");
    expect(final?.status, log.join("\n")).toBe("succeeded");
    expect(log).toContain("$ npm ci --include=dev --no-audit --no-fund");
    expect(msDownloads()).toBe(before + 1);
    const response = await env.get("trusted-test.localhost");
    expect(JSON.parse(response.body)).toMatchObject({ node: `v${node22.version}`, inADay: 86_400_000, built: { tookLong: "2m" } });
  }, 120_000);

  it.skipIf(skipWithout(wheels.ok ? null : wheels.missing))(
    "installs a Python app's packages from an HTTPS index when the engine's PIP_CERT names its CA (pip does not read Node's)",
    async () => {
      // As an operator sets it (README, PIP_CERT); REQUESTS_CA_BUNDLE, which this machine sets, would override it.
      process.env.PIP_CERT = ca.caPath;
      delete process.env.REQUESTS_CA_BUNDLE;
      await git.createRepo("flask", fixture("python-flask"));
      const { final, log } = await deployRepo("flask", { buildTimeoutSeconds: 300, healthCheckTimeoutSeconds: 30 }, { PIP_INDEX_URL: index!.url });
      expect(final?.status, log.join("\n")).toBe("succeeded");
      expect(index!.downloads().some((wheel) => wheel.startsWith("Flask-"))).toBe(true);
      expect(JSON.parse((await env.get("flask-test.localhost")).body)).toMatchObject({ app: "python-flask", flask: "2.2.2" });
    },
    180_000,
  );

  it("installs through the engine's HTTPS_PROXY, unless the app's own NO_PROXY says to go direct", async () => {
    const proxy = await startConnectProxy();
    try {
      process.env.NODE_EXTRA_CA_CERTS = ca.caPath;
      process.env.HTTPS_PROXY = proxy.url;
      delete process.env.NO_PROXY;
      delete process.env.no_proxy;
      const proxied = await deploy("proxied");
      expect(proxied.final?.status, proxied.log.join("\n")).toBe("succeeded");
      expect(proxy.tunnels).toContain(new URL(secured.url).host);

      const tunnels = proxy.tunnels.length;
      const direct = await deploy("direct", { NO_PROXY: "127.0.0.1" });
      expect(direct.final?.status, direct.log.join("\n")).toBe("succeeded");
      expect(proxy.tunnels.length).toBe(tunnels);
    } finally {
      await proxy.close();
    }
  }, 180_000);

  it("clones through the engine's proxy too: git reached the repository only through it", async () => {
    const proxy = await startConnectProxy();
    try {
      process.env.NODE_EXTRA_CA_CERTS = ca.caPath;
      // git's libcurl reads http_proxy in lower case only, for an http:// repository.
      process.env.http_proxy = proxy.url;
      delete process.env.NO_PROXY;
      delete process.env.no_proxy;
      const cloned = await deploy("cloned-through-proxy", { NO_PROXY: "127.0.0.1" });
      expect(cloned.final?.status, cloned.log.join("\n")).toBe("succeeded");
      expect(proxy.forwarded).toContain(new URL(git.url("cloned-through-proxy")).host);
    } finally {
      await proxy.close();
    }
  }, 180_000);
});
