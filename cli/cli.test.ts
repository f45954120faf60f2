import fs from "node:fs/promises";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { createCaller } from "../server/api/root";
import { deployments } from "../server/db/schema";
import { appendEngineEvents } from "../server/deployments/events";
import { startCliHarness, type CliHarness, type CliResult } from "./test-harness";

let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  const login = await h.cli(["login", "--url", h.url, "--token", h.ownerToken]);
  expect(login).toMatchObject({ code: 0, stderr: "" });
});

/** A failure is a non-zero code, nothing on stdout and exactly one `error:` line on stderr. */
function expectFailure(result: CliResult, code: number, message: string | RegExp) {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe("");
  const lines = result.stderr.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  if (typeof message === "string") expect(lines[0]).toBe(`error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

describe("login and identity", () => {
  it("saves the verified url and token in a file only its owner can read", async () => {
    const config = JSON.parse(await fs.readFile(h.configFile, "utf8")) as { url: string; token: string };
    expect(config).toEqual({ url: h.url, token: h.ownerToken });
    expect((await fs.stat(h.configFile)).mode & 0o777).toBe(0o600);

    const whoami = await h.cli(["whoami"]);
    expect(whoami.code).toBe(0);
    expect(whoami.stdout).toMatch(/^role\s+OWNER$/m);
    expect(whoami.stdout).toContain(h.url);
    expect(JSON.parse((await h.cli(["whoami", "--json"])).stdout)).toMatchObject({ role: "OWNER", organizationId: h.org.organizationId });
  });

  it("refuses a wrong token at login without touching the saved config, and with exit 4 afterwards", async () => {
    const before = await fs.readFile(h.configFile, "utf8");
    expectFailure(await h.cli(["login", "--url", h.url, "--token", "slw_api_not-a-real-token"]), 4, "Unknown or revoked API token");
    expect(await fs.readFile(h.configFile, "utf8")).toBe(before);
    expectFailure(await h.cli(["project", "list"], { env: { SLIPWAY_TOKEN: "slw_api_bogus" } }), 4, /token/i);
  });

  it("says in one line that an unreachable control plane cannot be reached", async () => {
    const result = await h.cli(["project", "list"], { env: { SLIPWAY_URL: "http://127.0.0.1:59998" } });
    expectFailure(result, 1, "cannot reach http://127.0.0.1:59998: connection refused");
  });

  it("asks to log in when there is no config", async () => {
    expectFailure(await h.cli(["whoami"], { env: { SLIPWAY_CONFIG: `${h.configFile}.missing` } }), 4, /not logged in.*slipway login/);
  });
});

describe("projects, environments and services", () => {
  it("creates and lists them as aligned tables and as JSON", async () => {
    expect(await h.cli(["project", "create", "shop"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Created project shop \(/) });
    expect((await h.cli(["env", "create", "shop/staging", "--mode", "STAGING", "--cluster", "local"])).code).toBe(0);
    expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
    const created = await h.cli([
      "service",
      "create",
      "shop/dev/web",
      "--git",
      "https://example.test/shop.git",
      "--branch",
      "release",
      "--port",
      "8000",
      "--health",
      "/health",
      "--install-command",
      "yarn install --ignore-engines",
      "--node-version",
      ">=20 <23",
      "--python-version",
      "3.11",
    ]);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toContain("Created service shop/dev/web from https://example.test/shop.git#release");

    const projects = await h.cli(["project", "list"]);
    expect(projects.stdout.split("\n")[0]).toMatch(/^NAME\s+CREATED\s+ID$/);
    expect(projects.stdout).toMatch(/^shop\s+\d+s ago\s+[0-9a-f-]{36}$/m);

    const environments = (await h.cli(["env", "list", "shop"])).stdout.split("\n");
    expect(environments[0]).toMatch(/^NAME\s+MODE\s+CLUSTER\s+CREATED\s+ID$/);
    expect(environments[1]).toMatch(/^dev\s+DEVELOPMENT\s+local\s/);
    expect(environments[2]).toMatch(/^staging\s+STAGING\s+local\s/);
    // Columns line up: every row's MODE starts where the header's does.
    const modeColumn = environments[0]!.indexOf("MODE");
    expect(environments[1]!.indexOf("DEVELOPMENT")).toBe(modeColumn);
    expect(environments[2]!.indexOf("STAGING")).toBe(modeColumn);

    const services = await h.cli(["service", "list", "shop/dev"]);
    expect(services.stdout).toMatch(/^web\s+APPLICATION\s+not deployed\s+https:\/\/example.test\/shop.git#release\s/m);
    const json = JSON.parse((await h.cli(["service", "list", "shop/dev", "--json"])).stdout) as unknown[];
    expect(json).toEqual([
      expect.objectContaining({
        name: "web",
        kind: "APPLICATION",
        config: expect.objectContaining({
          port: 8000,
          healthCheckPath: "/health",
          installCommand: "yarn install --ignore-engines",
          nodeVersion: ">=20 <23",
          pythonVersion: "3.11",
          git: expect.objectContaining({ ref: { branch: "release" } }),
        }),
      }),
    ]);
    expect(JSON.parse((await h.cli(["project", "list", "--json"])).stdout)).toEqual([expect.objectContaining({ name: "shop" })]);
  });

  it("names what is missing, invalid or duplicated, with the documented exit codes", async () => {
    expectFailure(await h.cli(["env", "list", "demo"]), 3, 'Project "demo" not found');
    expectFailure(await h.cli(["service", "list", "shop/nope"]), 3, 'Environment "shop/nope" not found');
    expectFailure(
      await h.cli(["service", "create", "shop/dev/api", "--git", "not a url"]),
      2,
      "config.git.url: expected an https, ssh or git URL (file:// only on a cluster whose ADMIN allowed local repositories)",
    );
    expectFailure(await h.cli(["project", "create", "shop"]), 5, 'Project "shop" already exists');
    expectFailure(await h.cli(["project", "create", "Not_A_Label"]), 2, /^error: name: /);
    expectFailure(await h.cli(["service", "list", "shop"]), 2, '"shop" is not a path of the form <project>/<env>');
    expectFailure(await h.cli(["service", "create", "shop/dev/api", "--git", "https://x.test/a.git", "--port", "http"]), 2, /--port/);
    expectFailure(
      await h.cli(["service", "create", "shop/dev/api", "--git", "https://x.test/a.git", "--node-version", "twenty"]),
      2,
      "config.nodeVersion: expected a Node version or semver range, such as 22 or >=20 <23",
    );
    expectFailure(
      await h.cli(["service", "create", "shop/dev/api", "--git", "https://x.test/a.git", "--python-version", "pypy3"]),
      2,
      "config.pythonVersion: expected a Python version such as 3.12 or 3.11.9",
    );
    expectFailure(await h.cli(["env", "create", "shop/qa", "--mode", "TEST"]), 2, /--mode/);
    expectFailure(await h.cli(["project"]), 2, "missing command: slipway project <list|create|delete>");
    expectFailure(await h.cli(["deploi", "shop/dev"]), 2, /unknown command 'deploi'.*deploy/);
  });

  it("deletes an empty project and refuses one that still has environments", async () => {
    await h.cli(["project", "create", "scratch"]);
    expect(await h.cli(["project", "delete", "scratch", "--yes"])).toMatchObject({ code: 0, stdout: "Deleted project scratch\n" });
    expectFailure(await h.cli(["project", "delete", "scratch", "--yes"]), 3, 'Project "scratch" not found');
    expectFailure(await h.cli(["project", "delete", "shop", "--yes"]), 5, /^error: Project "shop" still has environments/);
  });
});

describe("help", () => {
  it("documents the exit codes and exits 0 for help, 2 for a missing command", async () => {
    const help = await h.cli(["--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^Exit codes:$/m);
    expect(help.stdout).toMatch(/^\s+3\s+not found$/m);
    expect(await h.cli(["help", "var"])).toMatchObject({ code: 0, stdout: expect.stringContaining("<project>/<env>/<service>"), stderr: "" });
    expectFailure(await h.cli([]), 2, "missing command (run slipway --help for the list)");
  });
});

describe("variables", () => {
  it("sets plain and secret variables at the scope the path names, and never shows a secret", async () => {
    expect((await h.cli(["var", "set", "shop/dev", "LOG_LEVEL=debug", "URL=https://a.test/?x=1"])).code).toBe(0);
    const secret = await h.cli(["var", "set", "shop/dev", "API_KEY=s3cr3t-value", "--secret"]);
    expect(secret).toMatchObject({ code: 0, stdout: "Set secret API_KEY on shop/dev (ENVIRONMENT)\n" });

    const list = await h.cli(["var", "list", "shop/dev"]);
    expect(list.stdout).not.toContain("s3cr3t-value");
    expect(list.stdout).toMatch(/^API_KEY\s+\*{8}\s+yes\s+-$/m);
    expect(list.stdout).toMatch(/^LOG_LEVEL\s+debug\s+no\s+-$/m);
    expect(list.stdout).toMatch(/^URL\s+https:\/\/a\.test\/\?x=1\s+no\s+-$/m);
    const json = JSON.parse((await h.cli(["var", "list", "shop/dev", "--json"])).stdout) as { key: string; value: string | null; scope: string }[];
    expect(json.find((v) => v.key === "API_KEY")).toMatchObject({ value: null, scope: "ENVIRONMENT" });

    // Other depths are other scopes.
    await h.cli(["var", "set", "shop", "REGION=eu"]);
    await h.cli(["var", "set", "shop/dev/web", "WORKERS=4"]);
    expect(JSON.parse((await h.cli(["var", "list", "shop", "--json"])).stdout)).toEqual([expect.objectContaining({ key: "REGION", scope: "PROJECT" })]);
    expect(JSON.parse((await h.cli(["var", "list", "shop/dev/web", "--json"])).stdout)).toEqual([
      expect.objectContaining({ key: "WORKERS", scope: "SERVICE" }),
    ]);

    expectFailure(await h.cli(["var", "set", "shop/dev", "API_KEY=plain"]), 5, /API_KEY is a secret/);
    expect((await h.cli(["var", "unset", "shop/dev", "API_KEY"])).code).toBe(0);
    expect((await h.cli(["var", "list", "shop/dev"])).stdout).not.toContain("API_KEY");
    expectFailure(await h.cli(["var", "unset", "shop/dev", "API_KEY"]), 3, "Variable API_KEY not found");
    expectFailure(await h.cli(["var", "set", "shop/dev", "NOVALUE"]), 2, '"NOVALUE" is not KEY=VALUE');
  });

  it("overwrites a key by default, and refuses to with --no-overwrite", async () => {
    expect(await h.cli(["var", "set", "shop/dev", "LOG_LEVEL=warn"])).toMatchObject({ code: 0, stdout: "Set LOG_LEVEL on shop/dev (ENVIRONMENT)\n" });
    expectFailure(
      await h.cli(["var", "set", "shop/dev", "FRESH=1", "LOG_LEVEL=error", "--no-overwrite"]),
      5,
      "LOG_LEVEL is already set on this environment: overwrite it, or choose another key",
    );
    const values = JSON.parse((await h.cli(["var", "list", "shop/dev", "--json"])).stdout) as { key: string; value: string | null }[];
    expect(values.find((v) => v.key === "LOG_LEVEL")?.value).toBe("warn");
    expect(values.find((v) => v.key === "FRESH")?.value).toBe("1");
  });

  it("lists what lifecycle jobs output at an environment and a service, saying which job set each, without a value", async () => {
    const path = "shop/dev";
    const seed = await h.cli([
      "service",
      "create",
      "shop/dev/seed",
      "--git",
      "https://example.test/jobs.git",
      "--job",
      "sh seed.sh",
      "--on",
      "start",
      "--json",
    ]);
    expect(seed.code, seed.stderr).toBe(0);
    const seedService = JSON.parse(seed.stdout) as { id: string; environmentId: string };
    // The engine's report of the job's run at the environment's start (engine/orchestrator.ts): the keys it output.
    const api = createCaller({ services: h.services, actor: h.org.as("DEVELOPER") });
    const { deployment } = await api.deployments.create({ environmentId: seedService.environmentId, action: "DEPLOY" });
    const [row] = await h.services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    await appendEngineEvents(h.services.db, h.services, row!, [
      {
        seq: 1_000_000_000,
        serviceId: seedService.id,
        step: "run",
        status: "succeeded",
        at: new Date().toISOString(),
        outputKeys: ["ADMIN_TOKEN", "SEED_ROWS"],
      },
    ]);
    await api.deployments.cancel({ deploymentId: deployment.id });

    const list = await h.cli(["var", "list", path]);
    expect(list.stdout).toMatch(/^KEY\s+VALUE\s+SECRET\s+SET BY$/m);
    expect(list.stdout).toMatch(/^ADMIN_TOKEN\s+\(kept by the engine\)\s+no\s+job seed$/m);
    expect(list.stdout).toMatch(/^SEED_ROWS\s+\(kept by the engine\)\s+no\s+job seed$/m);
    const json = JSON.parse((await h.cli(["var", "list", path, "--json"])).stdout) as { key: string; value: string | null; job?: { name: string } | null }[];
    expect(json.find((v) => v.key === "ADMIN_TOKEN")).toMatchObject({ value: null, job: { serviceId: seedService.id, name: "seed" } });
    expect(json.find((v) => v.key === "LOG_LEVEL")).toMatchObject({ job: null });

    // A service's list has them too: they reach it, over what is set on it.
    const ofService = await h.cli(["var", "list", "shop/dev/web"]);
    expect(ofService.stdout).toMatch(/^ADMIN_TOKEN\s+\(kept by the engine\)\s+no\s+job seed$/m);
    expect(ofService.stdout).toMatch(/^SEED_ROWS\s+\(kept by the engine\)\s+no\s+job seed$/m);
  });
});

describe("deployments without an engine", () => {
  it("queues a deployment, lists it in the history, and cancels it", async () => {
    // Leased to the cluster's engine at once (nothing else runs): what is asked for meanwhile waits its turn.
    expect(await h.cli(["restart", "shop/dev"])).toMatchObject({ code: 0, stdout: expect.stringMatching(/RESTART shop\/dev: QUEUED\n$/) });
    const deployed = await h.cli(["deploy", "shop/dev"]);
    expect(deployed.code).toBe(0);
    const [, id] = deployed.stdout.match(/^Deployment ([0-9a-f-]{36}) DEPLOY shop\/dev: QUEUED$/m) ?? [];
    expect(id).toBeDefined();

    const again = await h.cli(["deploy", "shop/dev/web", "--json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({ merged: true, deployment: { id, status: "QUEUED", origin: "CLI" } });

    const history = await h.cli(["deployments", "shop/dev"]);
    expect(history.stdout).toMatch(new RegExp(`^${id}\\s+DEPLOY\\s+QUEUED\\s+\\d+s ago\\s+-\\s+token:test-OWNER \\(CLI\\)`, "m"));

    expect(await h.cli(["cancel", id!])).toMatchObject({ code: 0, stdout: `Deployment ${id} CANCELED\n` });
    expectFailure(await h.cli(["cancel", id!]), 5, "Deployment already ended (CANCELED)");
    const [latest] = JSON.parse((await h.cli(["deployments", "shop/dev", "--json"])).stdout) as { id: string; status: string }[];
    expect(latest).toMatchObject({ id, status: "CANCELED" });
    expect((await h.cli(["status", "shop/dev"])).stdout).toMatch(/^last deployment\s+DEPLOY CANCELED .*\(canceled before it started\)/m);
  });

  it("rolls back only to a successful deployment, saying why not otherwise", async () => {
    expectFailure(await h.cli(["rollback", "shop/dev"]), 1, "Nothing to roll back to: the environment has no successful deployment before its latest one");
    const [canceled] = JSON.parse((await h.cli(["deployments", "shop/dev", "--json"])).stdout) as { id: string }[];
    expectFailure(
      await h.cli(["rollback", "shop/dev/web", "--to", canceled!.id]),
      1,
      `Deployment ${canceled!.id} is CANCELED (DEPLOY): only a successful DEPLOY can be rolled back to`,
    );
  });

  it("starts and stops an environment as its schedule does", async () => {
    const stopped = await h.cli(["env", "stop", "shop/dev"]);
    expect(stopped.stdout).toMatch(/^Deployment [0-9a-f-]{36} STOP shop\/dev: QUEUED$/m);
    const started = await h.cli(["env", "start", "shop/dev", "--json"]);
    expect(JSON.parse(started.stdout)).toMatchObject({ deployment: { action: "RESTART", status: "QUEUED" } });
    for (const line of [stopped.stdout, started.stdout]) {
      const id = /"id": "([0-9a-f-]{36})"|Deployment ([0-9a-f-]{36})/.exec(line)!.slice(1).find(Boolean)!;
      await h.cli(["cancel", id]);
    }
  });

  it("promotes only what an environment ran successfully", async () => {
    expectFailure(await h.cli(["promote", "shop/dev", "staging"]), 1, 'Environment "dev" has no successful deployment to promote');
    expectFailure(await h.cli(["promote", "shop/dev", "nowhere"]), 3, /nowhere/);
  });

  it("refuses to deploy an environment without services", async () => {
    expectFailure(await h.cli(["deploy", "shop/staging"]), 1, 'Environment "staging" has no services to deploy');
  });

  it("clones an environment with its services and secrets, and deploys the copy on request", async () => {
    const cloned = await h.cli(["env", "clone", "shop/dev", "--name", "feature-1", "--ttl", "8h"]);
    expect(cloned).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Cloned shop\/dev into shop\/feature-1 \([0-9a-f-]{36}\)\n$/) });
    expect((await h.cli(["service", "list", "shop/feature-1"])).stdout).toMatch(/^web\s/m);
    const vars = await h.cli(["var", "list", "shop/feature-1/web", "--json"]);
    expect((JSON.parse(vars.stdout) as { key: string; secret: boolean; value: string | null }[]).every((v) => !v.secret || v.value === null)).toBe(true);
    const [env] = (JSON.parse((await h.cli(["env", "list", "shop", "--json"])).stdout) as { name: string; expiresAt: string | null }[]).filter(
      (e) => e.name === "feature-1",
    );
    expect(new Date(env!.expiresAt!).getTime()).toBeGreaterThan(Date.now() + 7 * 3600_000);
    const deployed = await h.cli(["env", "clone", "shop/dev", "--name", "feature-2", "--deploy"]);
    expect(deployed.stdout).toMatch(/^Deployment [0-9a-f-]{36} DEPLOY shop\/feature-2: QUEUED$/m);
    // Which commit each service deploys: web never went live in dev, so its branch's latest.
    expect(deployed.stdout).toMatch(/^ {2}web: its branch's latest commit$/m);
    expectFailure(
      await h.cli(["env", "clone", "shop/dev", "--name", "feature-4", "--commits", "live"]),
      2,
      "--commits goes with --deploy: a copy not deployed follows its branches",
    );
    expectFailure(
      await h.cli(["env", "clone", "shop/dev", "--name", "feature-4", "--deploy", "--branch", "next", "--commits", "live"]),
      1,
      /follows branch "next" deploys that branch's latest commits, not the ones its source runs/,
    );
    expect((await h.cli(["env", "clone", "--help"])).stdout).toMatch(/live = the commit each service runs in the\s+source now/);
    // A subset of the services, following another branch.
    expect((await h.cli(["env", "clone", "shop/dev", "--name", "review-1", "--services", "web", "--branch", "feature/login"])).code).toBe(0);
    const review = JSON.parse((await h.cli(["service", "list", "shop/review-1", "--json"])).stdout) as { name: string; config: { git?: { ref?: unknown } } }[];
    expect(review.map((s) => [s.name, s.config.git?.ref])).toEqual([["web", { branch: "feature/login" }]]);
    expectFailure(await h.cli(["env", "clone", "shop/dev", "--name", "review-2", "--services", "web,nope"]), 1, /has no service named "nope"/);
    expectFailure(await h.cli(["env", "clone", "shop/dev", "--name", "feature-1"]), 5, /already exists/);
    expectFailure(await h.cli(["env", "clone", "shop/dev", "--name", "feature-3", "--ttl", "soon"]), 2, /--ttl/);
    expect((await h.cli(["env", "reap", "--dry-run"])).stdout).toBe("No expired environments, no leftovers\n");
  });

  it("creates databases and jobs, and clones with data", async () => {
    const database = await h.cli(["service", "create", "shop/staging/orders-db", "--database", "postgresql"]);
    expect(database.stdout).toMatch(/^Created service shop\/staging\/orders-db from postgresql on port \d{5} \([0-9a-f-]{36}\)\n$/);
    const cron = await h.cli([
      "service",
      "create",
      "shop/staging/report",
      "--git",
      "https://example.test/shop.git",
      "--job",
      "node report.js",
      "--cron",
      "0 7 * * 1-5",
      "--tz",
      "Europe/Paris",
      "--retries",
      "2",
    ]);
    expect(cron.code).toBe(0);
    const skipping = await h.cli([
      "service",
      "create",
      "shop/staging/digest",
      "--git",
      "https://example.test/shop.git",
      "--job",
      "node digest.js",
      "--cron",
      "0 * * * *",
      "--missed-runs",
      "skip",
      "--json",
    ]);
    expect(JSON.parse(skipping.stdout)).toMatchObject({ config: { trigger: { type: "cron", schedule: "0 * * * *", timeZone: "UTC", missedRuns: "skip" } } });
    const report = JSON.parse((await h.cli(["service", "list", "shop/staging", "--json"])).stdout) as {
      name: string;
      config: { trigger?: { missedRuns?: string } };
    }[];
    expect(report.find((s) => s.name === "report")?.config.trigger?.missedRuns).toBe("run-once");
    const seed = await h.cli([
      "service",
      "create",
      "shop/staging/seed",
      "--git",
      "https://example.test/shop.git",
      "--job",
      "npm run seed",
      "--on",
      "start,delete",
      "--json",
    ]);
    expect(JSON.parse(seed.stdout)).toMatchObject({
      kind: "JOB",
      config: { command: "npm run seed", trigger: { type: "lifecycle", on: ["start", "delete"] } },
    });

    expectFailure(await h.cli(["service", "create", "shop/staging/cache", "--database", "mysql"]), 2, "--database takes postgresql or redis");
    expectFailure(await h.cli(["service", "create", "shop/staging/job", "--job", "true"]), 2, "a job runs code from git: give --git <url> with --job");
    expectFailure(
      await h.cli(["service", "create", "shop/staging/job", "--git", "https://example.test/a.git", "--job", "true"]),
      2,
      /--cron <expression> \(a cron job\) or --on/,
    );
    expectFailure(await h.cli(["service", "create", "shop/staging/job", "--git", "https://example.test/a.git", "--job", "true", "--on", "reboot"]), 2, /--on/);
    expectFailure(
      await h.cli([
        "service",
        "create",
        "shop/staging/job",
        "--git",
        "https://example.test/a.git",
        "--job",
        "true",
        "--cron",
        "0 * * * *",
        "--missed-runs",
        "later",
      ]),
      2,
      /--missed-runs/,
    );
    expectFailure(
      await h.cli(["service", "create", "shop/staging/job", "--git", "https://example.test/a.git", "--job", "true", "--on", "start", "--missed-runs", "skip"]),
      2,
      /--missed-runs is for cron jobs/,
    );
    expectFailure(
      await h.cli(["service", "create", "shop/staging/job", "--git", "https://example.test/a.git", "--job", "true", "--cron", "every day"]),
      2,
      /invalid schedule/,
    );

    const copy = await h.cli(["env", "clone", "shop/staging", "--name", "staging-data", "--with-data", "--json"]);
    const { environment } = JSON.parse(copy.stdout) as { environment: { id: string } };
    const services = JSON.parse((await h.cli(["service", "list", "shop/staging-data", "--json"])).stdout) as {
      name: string;
      config: { copyDataFrom?: { serviceId: string } };
    }[];
    expect(environment.id).toMatch(/^[0-9a-f-]{36}$/);
    const databaseId = database.stdout.match(/\(([0-9a-f-]{36})\)/)![1];
    expect(services.find((service) => service.name === "orders-db")?.config.copyDataFrom).toEqual({ serviceId: databaseId });
  });

  it("deletes a service through a DELETE deployment", async () => {
    await h.cli(["service", "create", "shop/staging/worker", "--git", "git@example.test:shop/worker.git", "--commit", "abc1234"]);
    expect((await h.cli(["service", "delete", "shop/staging/worker", "--yes"])).stdout).toMatch(
      /^Deployment [0-9a-f-]{36} DELETE shop\/staging\/worker: QUEUED\n$/,
    );
  });
});

describe("tokens and clusters", () => {
  it("creates a token shown once, lists it, and revokes it so that it stops working", async () => {
    const created = await h.cli(["token", "create", "ci", "--role", "VIEWER"]);
    expect(created.code).toBe(0);
    const [header, token] = created.stdout.trim().split("\n");
    const id = header!.match(/\(VIEWER, ([0-9a-f-]{36})\)/)?.[1];
    expect(id).toBeDefined();

    expect((await h.cli(["whoami"], { env: { SLIPWAY_TOKEN: token } })).stdout).toMatch(/^role\s+VIEWER$/m);
    expectFailure(await h.cli(["project", "create", "nope"], { env: { SLIPWAY_TOKEN: token } }), 4, "This action needs the DEVELOPER role or higher");

    const list = await h.cli(["token", "list"]);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+ci\\s+VIEWER\\s`, "m"));
    expect(list.stdout).not.toContain(token);

    expect(await h.cli(["token", "revoke", id!])).toMatchObject({ code: 0, stdout: `Revoked token ci (${id})\n` });
    expectFailure(await h.cli(["whoami"], { env: { SLIPWAY_TOKEN: token } }), 4, /token/i);
    expectFailure(await h.cli(["token", "create", "x", "--role", "KING"]), 2, /--role/);
  });

  it("creates a cluster and prints its engine token once with the command that starts its engine", async () => {
    const created = await h.cli(["cluster", "create", "edge", "--domain", "apps.example.test"]);
    expect(created.code).toBe(0);
    const token = created.stdout.split("\n")[2]!;
    expect(token.length).toBeGreaterThan(20);
    // The token in the engine's environment, not in its arguments (which ps shows every user).
    expect(created.stdout).toContain(`\nSLIPWAY_ENGINE_TOKEN=${token} slipway engine --url ${h.url}\n`);

    const list = await h.cli(["cluster", "list"]);
    expect(list.stdout).toMatch(/^edge\s+local\s+apps\.example\.test\s+disconnected\s/m);
    expect(list.stdout).not.toContain(token);

    const docker = await h.cli(["cluster", "create", "boxes", "--kind", "docker", "--docker-host", "unix:///run/podman/podman.sock"]);
    expect(docker.stdout).toMatch(/--runtime docker --docker-host unix:\/\/\/run\/podman\/podman\.sock\n$/);
    expectFailure(await h.cli(["cluster", "create", "odd", "--docker-host", "unix:///x.sock"]), 2, "--docker-host goes with --kind docker");
  });

  it("prints the manifests that install a kubernetes cluster's engine, its token in their Secret", async () => {
    const created = await h.cli([
      "cluster",
      "create",
      "fleet",
      "--kind",
      "kubernetes",
      "--engine-image",
      "registry.test/slipway-engine:1",
      "--engine-url",
      "https://cp.test",
    ]);
    expect(created.code).toBe(0);
    const objects = parseAllDocuments(created.stdout).map(
      (document) => document.toJS() as { kind: string; stringData?: Record<string, string>; spec?: unknown },
    );
    expect(objects.map((object) => object.kind)).toEqual(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Deployment"]);
    const token = objects.find((object) => object.kind === "Secret")!.stringData!.SLIPWAY_ENGINE_TOKEN!;
    expect(token).toMatch(/^swe_/);
    // The token sits only in the Secret: the Deployment reads it from there.
    expect(JSON.stringify(objects.find((object) => object.kind === "Deployment"))).not.toContain(token);
    expect(JSON.stringify(objects.find((object) => object.kind === "Deployment"))).toContain(
      '"args":["engine","--url","https://cp.test","--runtime","kubernetes"]',
    );
    expect((await h.cli(["cluster", "list"])).stdout).toMatch(/^fleet\s+kubernetes\s/m);
    expectFailure(await h.cli(["cluster", "create", "odd", "--engine-url", "https://cp.test"]), 2, "--engine-url goes with --kind kubernetes");
  });

  it("sets where a kubernetes cluster builds images: in the cluster, or on the engine's host through its Docker API", async () => {
    const created = await h.cli(["cluster", "create", "builder", "--kind", "kubernetes", "--build-docker-host", "unix:///run/podman/podman.sock", "--json"]);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout).cluster.kubernetesBuild).toEqual({ location: "engine-host", dockerHost: "unix:///run/podman/podman.sock" });
    expect((await h.cli(["cluster", "list"])).stdout).toMatch(/^builder\s+kubernetes\s.*on the engine's host \(unix:\/\/\/run\/podman\/podman\.sock\)/m);

    expect(await h.cli(["cluster", "update", "builder", "--build-location", "cluster"])).toMatchObject({
      code: 0,
      stdout: "Cluster builder builds images of git services in the cluster\n",
    });
    expect(await h.cli(["cluster", "update", "builder", "--build-location", "engine-host", "--build-docker-host", "tcp://10.0.0.5:2375"])).toMatchObject({
      code: 0,
      stdout: "Cluster builder builds images of git services on the engine's host (tcp://10.0.0.5:2375)\n",
    });
    expectFailure(
      await h.cli(["cluster", "update", "builder", "--build-location", "engine-host"]),
      2,
      "--build-location engine-host needs --build-docker-host <unix:///…sock|tcp://host:port>",
    );
    expectFailure(
      await h.cli(["cluster", "update", "builder", "--build-docker-host", "/var/run/docker.sock"]),
      2,
      /give the Docker API as unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/host:port/,
    );
    expectFailure(
      await h.cli(["cluster", "create", "plain", "--build-location", "cluster"]),
      2,
      "--build-location and --build-docker-host go with --kind kubernetes",
    );
  });

  it("explains that the engine command needs the executable when run in-process", async () => {
    expectFailure(await h.cli(["engine", "--url", h.url, "--token", "x"]), 1, /slipway executable/);
  });
});
