import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import { EnvHttpProxyAgent, fetch, type Response } from "undici";
import { z } from "zod";
import { StepError } from "../runtime";
import { proxyWithoutCredentials } from "../shared/processes-env";

/**
 * A client of an npm registry (https://github.com/npm/registry/blob/main/docs/REGISTRY-API.md)
 * for the toolchains the engine installs itself: it reads packuments, downloads a version's
 * tarball, checks it against the `dist.integrity` the packument gives (Subresource Integrity,
 * sha512) before anything of it is unpacked, and unpacks it with node-tar.
 */

/** How long a packument may take; a tarball has its own bound (a large one on a slow link). */
const PACKUMENT_TIMEOUT_MS = 60_000;
/** No package the engine installs comes near this (Node's is about 60 MB); a larger download is refused as it streams. */
const MAX_TARBALL_BYTES = 512 * 1024 * 1024;

const packumentVersion = z.object({
  version: z.string(),
  // Free-form in the wild (an array in some old packages): only a string range is used.
  engines: z.unknown().optional(),
  deprecated: z.unknown().optional(),
  dist: z.object({ tarball: z.string().url(), integrity: z.string().optional() }),
});
const packument = z.object({ name: z.string(), versions: z.record(z.string(), packumentVersion) });
export type Packument = z.infer<typeof packument>;
export type PackumentVersion = z.infer<typeof packumentVersion>;

/**
 * The way out of the engine's downloads: the outbound proxy of the engine's environment
 * (`HTTPS_PROXY` for an https:// registry, `HTTP_PROXY` for http://, in either case, lower case
 * first), except for the hosts `NO_PROXY` names, as npm and curl go. Node's own fetch reads none
 * of these but with NODE_USE_ENV_PROXY (Node 24, recent 22), so a host whose only way out is an egress
 * proxy failed its first deploy here. undici's EnvHttpProxyAgent reads them
 * (https://github.com/nodejs/undici/blob/main/docs/docs/api/EnvHttpProxyAgent.md), and trusts
 * what Node's TLS trusts, NODE_EXTRA_CA_CERTS included. It is given to these requests only, not
 * made the process's global dispatcher: nothing else of the engine's is a download from outside,
 * and an engine in a test's process would route the test's own requests too. The fetch is
 * undici's as well: a dispatcher of one undici major handed to the fetch Node bundles (another
 * major) fails on their different handler interfaces (nodejs/undici#4960, openai/openai-node#1898).
 */
let downloads: { proxies: string; agent: EnvHttpProxyAgent } | null = null;

/**
 * The agent for the proxy the engine's environment names now: the agent reads the proxy URLs when
 * it is made, NO_PROXY at each request, so a new one is made when a URL changed (an engine in a
 * test's process sees its environment change between deploys).
 */
function downloadAgent(): EnvHttpProxyAgent {
  const { http_proxy, HTTP_PROXY, https_proxy, HTTPS_PROXY } = process.env;
  const proxies = JSON.stringify([http_proxy, HTTP_PROXY, https_proxy, HTTPS_PROXY]);
  if (downloads?.proxies !== proxies) {
    // Closing lets a download still under way on the old agent finish; how the old agent's sockets end is no download's concern.
    downloads?.agent.close().catch(() => undefined);
    // An http:// registry is asked through the proxy in absolute form, as npm and curl ask it: undici would tunnel it
    // (CONNECT) by default, which a proxy refuses to ports other than 443 (Squid's default, http_access deny CONNECT !SSL_ports).
    downloads = { proxies, agent: new EnvHttpProxyAgent({ proxyTunnel: false }) };
  }
  return downloads.agent;
}

/** A registry's URL as configured, with one trailing slash, so package paths resolve below it (a mirror under a path). */
export function registryBase(registry: string): string {
  return registry.endsWith("/") ? registry : `${registry}/`;
}

/**
 * What a failed request says, in a few words: the system error's code (ECONNREFUSED, ENOTFOUND, a
 * certificate's) at the end of the causes undici chains, else its words (a proxy's refusal,
 * "Proxy response (403) !== 200 when HTTP Tunneling", whose codes, UND_ERR_*, say nothing).
 */
function reasonOf(error: unknown): string {
  let deepest = error as { cause?: unknown; code?: unknown; message?: string };
  while (deepest.cause && typeof deepest.cause === "object") deepest = deepest.cause as typeof deepest;
  if (typeof deepest.code === "string" && !deepest.code.startsWith("UND_ERR")) return deepest.code;
  return deepest.message ?? String(error);
}

/**
 * The proxy variable the engine's download agent takes for `url`, as EnvHttpProxyAgent chooses
 * (undici's lib/dispatcher/env-http-proxy-agent.js): lower case first, an https:// URL through
 * the HTTP proxy when no HTTPS one is set, none for a host NO_PROXY names (a suffix of it, or
 * host:port).
 */
function downloadProxyOf(url: URL, env: Record<string, string | undefined> = process.env): { variable: string; proxy: string } | null {
  const pick = (lower: string, upper: string) => (env[lower] !== undefined ? { variable: lower, proxy: env[lower] } : { variable: upper, proxy: env[upper] });
  const http = pick("http_proxy", "HTTP_PROXY");
  const https = pick("https_proxy", "HTTPS_PROXY");
  const chosen = url.protocol === "https:" && https.proxy ? https : http;
  if (!chosen.proxy) return null;
  const hostname = url.host.replace(/:\d*$/, "").toLowerCase();
  const port = Number.parseInt(url.port, 10) || (url.protocol === "https:" ? 443 : 80);
  const noProxy = env.no_proxy ?? env.NO_PROXY ?? "";
  if (noProxy === "*") return null;
  for (const entry of noProxy.split(/[,\s]/).filter(Boolean)) {
    const [, host = entry, entryPort] = /^(.+):(\d+)$/.exec(entry) ?? [];
    const name = host.replace(/^\*?\./, "").toLowerCase();
    if (entryPort && Number.parseInt(entryPort, 10) !== port) continue;
    if (hostname === name || hostname.endsWith(`.${name}`)) return null;
  }
  return { variable: chosen.variable, proxy: chosen.proxy };
}

/**
 * How the connection to a proxy failed, when it did: through a proxy the engine resolves and
 * connects to nothing else (the registry's host is the proxy's to reach, and its failures come
 * back as the proxy's answers), so a failed lookup or connect is the proxy's.
 */
function proxyConnectFailure(error: unknown): string | null {
  let deepest = error as { cause?: unknown; code?: unknown; syscall?: unknown };
  while (deepest.cause && typeof deepest.cause === "object") deepest = deepest.cause as typeof deepest;
  if (deepest.code === "ECONNREFUSED") return "which refused the connection";
  if (deepest.code === "ENOTFOUND" || deepest.code === "EAI_AGAIN") return "whose host could not be resolved";
  if (deepest.code === "UND_ERR_CONNECT_TIMEOUT" || deepest.syscall === "connect") return "which could not be reached";
  return null;
}

function unreachable(registry: string, url: string | URL, error: unknown): StepError {
  const through = downloadProxyOf(new URL(url));
  const failure = through ? proxyConnectFailure(error) : null;
  if (through && failure) {
    return new StepError(
      `could not reach the npm registry at ${registry}: the request went through the proxy ${proxyWithoutCredentials(through.proxy)} (the engine's ${through.variable}), ${failure} (${reasonOf(error)}): start the proxy or correct the engine's ${through.variable}, or name the registry in NO_PROXY to reach it directly`,
      { cause: error },
    );
  }
  return new StepError(
    `could not reach the npm registry at ${registry} (${reasonOf(error)}): set SLIPWAY_NPM_REGISTRY on the engine to a registry it can reach (a mirror)`,
    { cause: error },
  );
}

/** The packument of `name`: its versions with their tarballs and integrity. */
export async function fetchPackument(registry: string, name: string, signal: AbortSignal): Promise<Packument> {
  // A scoped name keeps its @ and escapes its slash: @scope%2fname.
  const url = new URL(name.replace("/", "%2f"), registryBase(registry));
  let response: Response;
  try {
    response = await fetch(url, {
      // The abbreviated form when the registry has it (much smaller); the full one otherwise.
      headers: { accept: "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8" },
      signal: AbortSignal.any([signal, AbortSignal.timeout(PACKUMENT_TIMEOUT_MS)]),
      dispatcher: downloadAgent(),
    });
  } catch (error) {
    if (signal.aborted) throw error;
    throw unreachable(registry, url, error);
  }
  if (response.status === 404) throw new StepError(`the npm registry at ${registry} has no package ${name}`);
  if (!response.ok) throw new StepError(`the npm registry at ${registry} answered ${response.status} for the package ${name}`);
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    if (signal.aborted) throw error;
    throw new StepError(`the npm registry at ${registry} sent an unreadable packument for ${name}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = packument.safeParse(body);
  if (!parsed.success) throw new StepError(`the npm registry at ${registry} sent a packument for ${name} without versions and tarballs`);
  return parsed.data;
}

/**
 * The sha512 digest (base64) an SRI string names (https://w3c.github.io/webappsec-subresource-integrity/):
 * one or more `algorithm-base64digest` tokens. Only sha512 is accepted: the npm registry gives it
 * for every package version published since 2017, and the weaker sha1 `shasum` is not enough.
 */
export function sha512Of(integrity: string | undefined): string | null {
  for (const token of (integrity ?? "").trim().split(/\s+/)) {
    const match = /^sha512-([A-Za-z0-9+/]+={0,2})(\?.*)?$/.exec(token);
    if (match?.[1]) return match[1];
  }
  return null;
}

/**
 * Downloads a package version's tarball to `file`, hashing it as it streams, and throws unless it
 * is exactly what the packument's integrity says: a tampered or truncated download is never unpacked.
 */
export async function downloadVerified(registry: string, name: string, version: PackumentVersion, file: string, signal: AbortSignal): Promise<void> {
  const expected = sha512Of(version.dist.integrity);
  if (!expected) throw new StepError(`${name}@${version.version} on ${registry} has no sha512 integrity: refusing to install it unverified`);
  let response: Response;
  try {
    response = await fetch(version.dist.tarball, { signal, dispatcher: downloadAgent() });
  } catch (error) {
    if (signal.aborted) throw error;
    throw unreachable(registry, version.dist.tarball, error);
  }
  if (!response.ok || !response.body) throw new StepError(`downloading ${version.dist.tarball} failed: the registry answered ${response.status}`);
  const hash = createHash("sha512");
  let bytes = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > MAX_TARBALL_BYTES) return callback(new StepError(`${version.dist.tarball} is larger than ${MAX_TARBALL_BYTES} bytes: refusing it`));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(response.body as import("node:stream/web").ReadableStream), hashing, fs.createWriteStream(file, { mode: 0o600 }));
  } catch (error) {
    if (signal.aborted || error instanceof StepError) throw error;
    throw new StepError(`downloading ${version.dist.tarball} failed: ${reasonOf(error)}`, { cause: error });
  }
  const actual = hash.digest("base64");
  if (actual !== expected) {
    throw new StepError(
      `the tarball of ${name}@${version.version} from ${version.dist.tarball} does not match its integrity on the registry (sha512-${expected.slice(0, 12)}…, got sha512-${actual.slice(0, 12)}…): refusing to unpack it`,
    );
  }
}

/**
 * Unpacks a verified package tarball into `dir` (which must exist), without its leading `package/`.
 * Only files and directories are written: links, the usual way out of the target directory,
 * are left out, as npm does for package contents. Entries are owned by the engine's user, never
 * by the uids the archive names (node-tar keeps those by default when run as root).
 */
export async function unpackPackage(file: string, dir: string): Promise<void> {
  await tar.x({
    file,
    cwd: dir,
    strip: 1,
    preserveOwner: false,
    strict: true,
    filter: (_path, entry) => "type" in entry && (entry.type === "File" || entry.type === "OldFile" || entry.type === "Directory"),
  });
  await fsp.chmod(dir, 0o755);
}
