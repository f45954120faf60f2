import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { testPort } from "./ports";
import { eventually } from "../engine-harness";
import { selfSignedCertificate } from "./self-signed";

/**
 * Let's Encrypt's ACME test server (Debian package `pebble`) with its companion mock DNS server
 * `pebble-challtestsrv`, started on 127.0.0.1 for a test: Pebble resolves names through the
 * mock DNS (every A query answers 127.0.0.1 unless told otherwise) and validates HTTP-01 on
 * `httpPort` (the router's). The directory's own HTTPS uses a certificate made here with openssl.
 */
export type Pebble = {
  directoryUrl: string;
  /** The PEM Pebble's directory is served with (trust it to talk ACME). */
  directoryCa: string;
  /** The DNS server Pebble and the control plane's checks resolve with ("127.0.0.1:port"). */
  dnsServer: string;
  /** The root Pebble signs certificates under (from its management endpoint). */
  root(): Promise<string>;
  /** pebble-challtestsrv's management API (set-txt, add-a), for another process to reach. */
  dnsManagementUrl: string;
  setTxt(name: string, value: string): Promise<void>;
  setA(name: string, address: string): Promise<void>;
  stop(): Promise<void>;
};

export function pebbleMissing(): Promise<string | null> {
  return fs.access("/usr/bin/pebble").then(
    () => null,
    () => "pebble is not installed (apt-get install -y pebble)",
  );
}

function getText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, timeout: 5_000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url} answered ${res.statusCode}: ${body}`))));
      })
      .on("error", reject);
  });
}

async function post(url: string, body: unknown): Promise<void> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
}

/**
 * `dnsServer`: the DNS server Pebble resolves with instead of pebble-challtestsrv's (a real
 * authoritative server, for DNS-01 against records published through its API).
 */
export async function startPebble(options: { httpPort: number; dnsServer?: string }): Promise<Pebble> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-pebble-"));
  const { certPath: cert, keyPath: key } = await selfSignedCertificate({ dir, names: ["localhost"], ips: ["127.0.0.1"], days: 2, file: "pebble" });
  const [acmePort, managementPort, dnsPort, dnsManagementPort] = await Promise.all([1, 2, 3, 4].map(() => testPort()));
  const config = path.join(dir, "pebble-config.json");
  await fs.writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: options.httpPort,
        tlsPort: 5001,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const start = (command: string, args: string[], env: Record<string, string> = {}) => {
    const child = spawn(command, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout, child.stderr]) stream.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    children.push(child);
  };
  start("pebble-challtestsrv", [
    "-dns01",
    `127.0.0.1:${dnsPort}`,
    "-management",
    `127.0.0.1:${dnsManagementPort}`,
    "-http01",
    "",
    "-https01",
    "",
    "-tlsalpn01",
    "",
    "-defaultIPv4",
    "127.0.0.1",
    "-defaultIPv6",
    "",
  ]);
  // No sleeps before validation, no nonces rejected at random, no valid authorization reused for
  // half the orders (Pebble's default): every order's challenge is validated, as a test expects.
  const dnsServer = options.dnsServer ?? `127.0.0.1:${dnsPort}`;
  start("pebble", ["-config", config, "-dnsserver", dnsServer], {
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: "0",
    PEBBLE_AUTHZREUSE: "0",
  });
  const directoryCa = await fs.readFile(cert, "utf8");
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  await eventually(
    () =>
      getText(directoryUrl, directoryCa).then(
        () => true,
        () => false,
      ),
    15_000,
    `pebble's directory (${output.join("")})`,
  );
  const dnsManagement = `http://127.0.0.1:${dnsManagementPort}`;
  await eventually(
    () =>
      post(`${dnsManagement}/clear-txt`, { host: "ready.test." }).then(
        () => true,
        () => false,
      ),
    15_000,
    "pebble-challtestsrv",
  );
  return {
    directoryUrl,
    directoryCa,
    dnsServer,
    dnsManagementUrl: dnsManagement,
    root: () => getText(`https://127.0.0.1:${managementPort}/roots/0`, directoryCa),
    setTxt: (name, value) => post(`${dnsManagement}/set-txt`, { host: `${name}.`, value }),
    setA: (name, address) => post(`${dnsManagement}/add-a`, { host: `${name}.`, addresses: [address] }),
    async stop() {
      for (const child of children) child.kill("SIGTERM");
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
