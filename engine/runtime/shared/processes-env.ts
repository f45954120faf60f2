import fs from "node:fs";
import path from "node:path";

const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * Whether a PATH entry is one a package manager's `run` put there, not the operator: npm (and
 * pnpm, npx) prepend the `node_modules/.bin` of the package and of each directory above it, and
 * the directory of its node-gyp shim
 * (https://github.com/npm/run-script/blob/main/lib/set-path.js). An engine that `npm start`
 * started has Slipway's own tsc, next and tsx there.
 */
function injectedByPackageManager(entry: string): boolean {
  const dir = path.normalize(entry);
  return path.basename(dir) === "node-gyp-bin" || (path.basename(dir) === ".bin" && path.basename(path.dirname(dir)) === "node_modules");
}

/**
 * The engine's PATH without what `npm start` (or `npm run engine`) added to it: a build or an app
 * that found Slipway's copies of its tools would work here and fail on a host that runs the
 * engine otherwise. What the operator put there (/opt/x/bin, a pyenv's shims) stays, in order.
 */
export function enginePath(host: Record<string, string | undefined> = process.env): string {
  const kept = (host.PATH ?? DEFAULT_PATH).split(":").filter((entry) => !injectedByPackageManager(entry));
  return kept.length > 0 ? kept.join(":") : DEFAULT_PATH;
}

/**
 * The only environment the engine passes on from its own: where programs are (enginePath) and
 * the home directory (npm and pip need one). Everything else an app sees comes from its
 * variables; its builds get the host's network settings too (hostNetworkEnv). The engine's own
 * children (its router, databases, git) find what they run without npm's entries as well.
 */
export function engineBaseEnv(host: Record<string, string | undefined> = process.env): { PATH: string; HOME: string } {
  return { PATH: enginePath(host), HOME: host.HOME ?? "/tmp" };
}

/**
 * A child's environment as spawn() types it. Next.js's types declare NODE_ENV required on
 * ProcessEnv; a child environment built from variables need not have it, hence the cast.
 */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return env as unknown as NodeJS.ProcessEnv;
}

/**
 * Where Linux distributions keep the bundle of the CAs their host trusts, as Go looks for it
 * (https://github.com/golang/go/blob/master/src/crypto/x509/root_linux.go): an administrator
 * behind a TLS-intercepting proxy adds its CA there (update-ca-certificates, update-ca-trust).
 */
export const SYSTEM_CA_BUNDLES = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Alpine
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/pki/tls/cacert.pem", // OpenELEC
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
  "/etc/ssl/cert.pem", // Alpine
];

/** The first of SYSTEM_CA_BUNDLES this host has, or null. */
export function systemCaBundle(exists: (file: string) => boolean = (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false): string | null {
  return SYSTEM_CA_BUNDLES.find(exists) ?? null;
}

/**
 * Variables naming CA files. Node keeps its own list of CAs and adds NODE_EXTRA_CA_CERTS to it
 * (npm, pnpm, yarn, a build script's fetch; https://nodejs.org/api/cli.html#node_extra_ca_certsfile).
 * pip uses certifi's list, or PIP_CERT instead (https://pip.pypa.io/en/stable/topics/https-certificates/),
 * but the requests it vendors lets REQUESTS_CA_BUNDLE override that (Session.merge_environment_settings),
 * so the two are set together. OpenSSL (curl, git, Python's ssl) reads the system's store itself:
 * SSL_CERT_FILE and SSL_CERT_DIR are passed on only when the engine has them.
 */
const TRUST_VARIABLES = ["NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"];

/**
 * The CA files of the engine's environment, for a build whose app names none of its own: where
 * the engine has none, the system's bundle, which is what the host trusts (Mozilla's list
 * included), for Node and Python alike.
 */
function trustEnv(host: Record<string, string | undefined>, variables: Record<string, string>, systemBundle: string | null): Record<string, string> {
  const env: Record<string, string> = {};
  const set = (name: string, value: string | null | undefined) => {
    if (value && variables[name] === undefined) env[name] = value;
  };
  set("NODE_EXTRA_CA_CERTS", host.NODE_EXTRA_CA_CERTS || systemBundle);
  // As pip on the host would: each one the engine lacks follows the other, else the system's bundle.
  if (variables.PIP_CERT === undefined && variables.REQUESTS_CA_BUNDLE === undefined) {
    const python = host.PIP_CERT || host.REQUESTS_CA_BUNDLE || systemBundle;
    set("PIP_CERT", host.PIP_CERT || python);
    set("REQUESTS_CA_BUNDLE", host.REQUESTS_CA_BUNDLE || python);
  }
  set("SSL_CERT_FILE", host.SSL_CERT_FILE);
  set("SSL_CERT_DIR", host.SSL_CERT_DIR);
  return env;
}

/**
 * The outbound proxy settings npm, pnpm, yarn (berry since 2.4) and pip read, in both the cases
 * tools look for: npm takes HTTPS_PROXY before https_proxy
 * (https://docs.npmjs.com/cli/using-npm/config#https-proxy), curl only https_proxy.
 */
const PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];

/**
 * What a build needs of the engine's environment to reach the registries its host reaches: the
 * CAs the host trusts (a TLS-intercepting proxy's among them) and its outbound proxy. `env`, the
 * variables; `files`, the CA files and directories they name, which a sandboxed build must be
 * shown. A variable the app sets itself wins: the engine's is then not passed, nor, for a proxy,
 * the engine's in the other case (a tool would read whichever it looks for first), nor, for
 * pip's pair, the other one.
 */
export function hostNetworkEnv(
  variables: Record<string, string>,
  host: Record<string, string | undefined> = process.env,
  systemBundle: string | null = systemCaBundle(),
): { env: Record<string, string>; files: string[] } {
  const env = { ...trustEnv(host, variables, systemBundle), ...proxyEnv(host, variables) };
  const files = [...new Set(TRUST_VARIABLES.flatMap((name) => (env[name] ? [env[name]] : [])))];
  return { env, files };
}

/** The engine's proxy variables, in both cases, but those the app sets itself in either case. */
function proxyEnv(host: Record<string, string | undefined>, variables: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const appSets = (name: string) => Object.keys(variables).some((key) => key.toUpperCase() === name);
  for (const name of PROXY_VARIABLES) {
    if (appSets(name)) continue;
    for (const key of [name, name.toLowerCase()]) if (host[key]) env[key] = host[key];
  }
  return env;
}

/**
 * A proxy variable's URL as a failure names it: its scheme, host and port, without the
 * credentials it may carry (curl and npm take one without a scheme as http://).
 */
export function proxyWithoutCredentials(value: string): string {
  const withScheme = value.includes("://") ? value : `http://${value}`;
  try {
    const url = new URL(withScheme);
    return `${url.protocol}//${url.host}`;
  } catch {
    return withScheme.replace(/\/\/[^/]*@/, "//");
  }
}

/**
 * What the engine's git clone needs of its environment to reach a repository its host reaches:
 * the outbound proxy (git's libcurl reads `http_proxy` in lower case only, `HTTPS_PROXY` in
 * either) and OpenSSL's CA settings when the engine has them. git trusts the system's store
 * itself, a TLS-intercepting proxy's CA included.
 */
export function cloneNetworkEnv(host: Record<string, string | undefined> = process.env): Record<string, string> {
  const env = proxyEnv(host, {});
  for (const name of ["SSL_CERT_FILE", "SSL_CERT_DIR"]) if (host[name]) env[name] = host[name];
  return env;
}

/**
 * The engine's outbound proxy for an image build (the docker runtime's): Docker and Podman take
 * HTTP_PROXY, HTTPS_PROXY and NO_PROXY, in either case, as predefined build arguments, seen by
 * the build's RUN steps but kept out of the image's history and build cache unless its Dockerfile
 * declares them with ARG (https://docs.docker.com/reference/dockerfile/#predefined-args; Buildah's
 * alike): unlike a RUN step's own environment, they do not stay in the image. A proxy variable the
 * service's build arguments set in either case wins, both cases of the engine's then stay out.
 */
export function proxyBuildArgs(buildArgs: Record<string, string>, host: Record<string, string | undefined> = process.env): Record<string, string> {
  return proxyEnv(host, buildArgs);
}

/**
 * Whether a sandbox can show `file`: it exists and, for a sandbox that runs as another user (the
 * service's own), every user may read it. A CA file is public, but one under a private home is
 * not for that user, and bubblewrap refuses to bind a file it cannot reach.
 */
export function readableInSandbox(file: string, asAnotherUser: boolean): boolean {
  if (!asAnotherUser) return fs.existsSync(file);
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  const needed = stat?.isDirectory() ? 0o005 : 0o004;
  if (!stat || (stat.mode & needed) !== needed) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if (((fs.statSync(dir, { throwIfNoEntry: false })?.mode ?? 0) & 0o001) === 0) return false;
    if (dir === "/") return true;
  }
}
