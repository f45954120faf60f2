import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { testPort } from "./ports";
import { eventually } from "../engine-harness";

/**
 * PowerDNS Authoritative (Debian packages `pdns-server` and `pdns-backend-sqlite3`) on 127.0.0.1
 * for a test: a throwaway directory with its SQLite database, DNS on one free port and the HTTP
 * API on another, one zone created through the API. Caches are off, so a record changed through
 * the API is answered at once (a real server's caches only slow the propagation check down).
 */
export type PowerDns = {
  apiUrl: string;
  apiKey: string;
  /** Where the zone is served ("127.0.0.1:port"): Pebble and the control plane's checks resolve with it. */
  dnsServer: string;
  zone: string;
  /** The TXT values at `name` as the API has them (unquoted). */
  txt(name: string): Promise<string[]>;
  /** Publishes a TXT record as the zone's owner would (the domain's verification record). */
  setTxt(name: string, value: string): Promise<void>;
  /** Restarts the server with another API key (the key rotated by its administrator); the zone is kept. */
  restart(apiKey: string): Promise<void>;
  stop(): Promise<void>;
};

const SCHEMA = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

export async function powerDnsMissing(): Promise<string | null> {
  for (const file of ["/usr/sbin/pdns_server", SCHEMA, "/usr/bin/sqlite3"]) {
    const present = await fs.access(file).then(
      () => true,
      () => false,
    );
    if (!present) return `${file} (apt-get install -y pdns-server pdns-backend-sqlite3 sqlite3)`;
  }
  return null;
}

export async function startPowerDns(options: { zone: string; apiKey: string }): Promise<PowerDns> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-pdns-"));
  const database = path.join(dir, "pdns.sqlite3");
  await promisify(execFile)("sqlite3", [database, `.read ${SCHEMA}`]);
  // pdns_server reads <config-dir>/pdns.conf; everything is given on its command line instead.
  await fs.writeFile(path.join(dir, "pdns.conf"), "");
  const [dnsPort, apiPort] = await Promise.all([1, 2].map(() => testPort()));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  let apiKey = options.apiKey;
  let child: ChildProcess | null = null;
  const output: string[] = [];

  const api = async (method: string, urlPath: string, body?: unknown) => {
    const response = await fetch(`${apiUrl}/api/v1/servers/localhost${urlPath}`, {
      method,
      headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`PowerDNS ${method} ${urlPath} answered ${response.status}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : null;
  };
  const zoneId = `${options.zone}.`;

  const start = async () => {
    child = spawn(
      "/usr/sbin/pdns_server",
      [
        `--config-dir=${dir}`,
        `--socket-dir=${dir}`,
        "--daemon=no",
        "--guardian=no",
        "--disable-syslog",
        "--write-pid=no",
        "--launch=gsqlite3",
        `--gsqlite3-database=${database}`,
        `--local-address=127.0.0.1:${dnsPort}`,
        "--api=yes",
        `--api-key=${apiKey}`,
        "--webserver=yes",
        "--webserver-address=127.0.0.1",
        `--webserver-port=${apiPort}`,
        "--webserver-allow-from=127.0.0.1",
        "--cache-ttl=0",
        "--query-cache-ttl=0",
        "--negquery-cache-ttl=0",
        "--zone-cache-refresh-interval=0",
        "--security-poll-suffix=",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    for (const stream of [child.stdout!, child.stderr!]) stream.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    await eventually(
      () =>
        api("GET", "").then(
          () => true,
          () => false,
        ),
      15_000,
      `PowerDNS's API (${output.join("")})`,
    );
  };
  const stopChild = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };

  await start();
  await api("POST", "/zones", { name: zoneId, kind: "Native", nameservers: [`ns1.${zoneId}`] });
  const rrsetsAt = async (name: string) => {
    const zone = (await api("GET", `/zones/${zoneId}`)) as { rrsets: { name: string; type: string; records: { content: string }[] }[] };
    return zone.rrsets.find((set) => set.type === "TXT" && set.name === `${name}.`)?.records.map((record) => JSON.parse(record.content) as string) ?? [];
  };
  return {
    apiUrl,
    get apiKey() {
      return apiKey;
    },
    dnsServer: `127.0.0.1:${dnsPort}`,
    zone: options.zone,
    txt: rrsetsAt,
    setTxt: async (name, value) => {
      await api("PATCH", `/zones/${zoneId}`, {
        rrsets: [{ name: `${name}.`, type: "TXT", ttl: 60, changetype: "REPLACE", records: [{ content: JSON.stringify(value), disabled: false }] }],
      });
    },
    async restart(newKey) {
      await stopChild();
      apiKey = newKey;
      await start();
    },
    async stop() {
      await stopChild();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
