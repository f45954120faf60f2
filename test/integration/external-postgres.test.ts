/**
 * An external PostgreSQL (issue 17, item 2): `npm start` with DATABASE_URL pointing at Debian's
 * `postgresql` server (run as a non-root user, TCP with a scram password), straight to it and
 * through PgBouncer in session mode. The ordinary start path runs against it: migrations, the
 * first boot, web, worker and the local engine; then a sign-in and a deployment from git.
 * (SLIPWAY_WEB_UI=0: the dashboard's pages, which need a production build, are another test's.)
 */
import fs from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPlatform, type RunningPlatform } from "../../e2e/fixtures/platform";
import { eventually, fixture, request } from "../engine-harness";
import { startGitServer, type GitServer } from "../git-server";
import { debianPostgresBin, pgbouncerBin, startDebianPostgres, type ExternalPostgres } from "../support/debian-postgres";
import { skipWithout } from "../support/requirements";

const bin = debianPostgresBin();
const skip = skipWithout(
  bin === null ? "Debian's postgresql server (apt-get install postgresql)" : pgbouncerBin() === null ? "pgbouncer (apt-get install pgbouncer)" : null,
);

let postgres: ExternalPostgres;
let git: GitServer;

beforeAll(async () => {
  if (skip) return;
  postgres = await startDebianPostgres(bin!);
  git = await startGitServer();
  await git.createRepo("shop", fixture("node-app"), { "version.txt": "1\n" });
}, 60_000);

afterAll(async () => {
  await git?.close();
  await postgres?.stop();
}, 60_000);

/** Signs in with the form's request (next-auth credentials) and returns the session as the API reports it. */
async function signIn(url: string, email: string, password: string) {
  const csrf = await fetch(`${url}/api/auth/csrf`);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const jar = csrf.headers
    .getSetCookie()
    .map((cookie) => cookie.split(";")[0])
    .join("; ");
  const answer = await fetch(`${url}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar, origin: url },
    body: new URLSearchParams({ csrfToken, email, password }),
  });
  const cookie = [jar, ...answer.headers.getSetCookie().map((c) => c.split(";")[0])].join("; ");
  return (await (await fetch(`${url}/api/auth/session`, { headers: { cookie } })).json()) as { user?: { email?: string } } | null;
}

const TERMINAL = ["DEPLOYED", "STOPPED", "DELETED", "BUILD_ERROR", "DEPLOYMENT_ERROR", "CANCELED"];

describe.skipIf(skip).each([
  { how: "directly", through: async (database: string) => ({ url: postgres.url(database), stop: async () => {} }) },
  {
    how: "through PgBouncer in session mode",
    through: async (database: string) => {
      const bouncer = await postgres.startPgbouncer();
      return { url: bouncer.url(database), stop: bouncer.stop };
    },
  },
])("npm start on Debian's PostgreSQL, $how", ({ how, through }) => {
  let platform: RunningPlatform;
  let serverUrl: string;
  let stopPooler: () => Promise<void>;

  beforeAll(async () => {
    const database = `slipway_${how.startsWith("directly") ? "direct" : "pooled"}`;
    serverUrl = await postgres.createDatabase(database);
    const pooler = await through(database);
    stopPooler = pooler.stop;
    platform = await startPlatform({ env: { DATABASE_URL: pooler.url, SLIPWAY_WEB_UI: "0" } });
  }, 180_000);

  afterAll(async () => {
    await platform?.stop();
    await stopPooler?.();
  }, 60_000);

  const api = async <T>(method: string, urlPath: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${platform.info.url}/api/v1${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${platform.info.apiToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`${method} ${urlPath} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as T;
  };

  it("migrates the database and boots on it: no embedded PostgreSQL, the first admin signs in", async () => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ migrations: number; jobs: boolean; admins: number }>(
        `select
        (select count(*)::int from drizzle.__drizzle_migrations) as migrations,
        (select count(*) > 0 from information_schema.tables where table_schema = 'graphile_worker') as jobs,
        (select count(*)::int from users where email = $1) as admins`,
        [platform.info.adminEmail],
      );
      const migrations = fs.readdirSync(new URL("../../drizzle/", import.meta.url)).filter((name) => name.endsWith(".sql")).length;
      expect(rows[0]).toEqual({ migrations, jobs: true, admins: 1 });
    } finally {
      await client.end();
    }
    expect(fs.existsSync(`${platform.info.home}/postgres`)).toBe(false);
    expect(await signIn(platform.info.url, platform.info.adminEmail, platform.info.adminPassword)).toMatchObject({ user: { email: platform.info.adminEmail } });
    const ready = await fetch(`${platform.info.url}/api/health/ready`);
    expect({ status: ready.status, body: await ready.json() }).toEqual({ status: 200, body: { ok: true, database: "up" } });
  });

  it("deploys an app from git through the worker and the local engine", async () => {
    const project = await api<{ id: string }>("POST", "/projects", { name: "shop" });
    const environment = await api<{ id: string }>("POST", "/environments", { projectId: project.id, name: "dev", mode: "DEVELOPMENT" });
    await api("POST", "/services", { environmentId: environment.id, name: "web", config: { git: { url: git.url("shop"), ref: { branch: "main" } } } });
    const { deployment } = await api<{ deployment: { id: string } }>("POST", "/deployments", { environmentId: environment.id, action: "DEPLOY" });
    const done = await eventually(
      async () => {
        const current = await api<{ status: string; statusMessage: string | null }>("GET", `/deployments/${deployment.id}`);
        return TERMINAL.includes(current.status) ? current : undefined;
      },
      90_000,
      "the deployment to end",
    );
    expect(done, done.statusMessage ?? "").toMatchObject({ status: "DEPLOYED" });
    const answer = await request(platform.info.routerPort, "web-dev-shop.localhost");
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ version: "1" });
  });
});
