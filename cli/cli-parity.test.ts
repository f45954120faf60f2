import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { clusters, services } from "../server/db/schema";
import { startCliHarness, type CliHarness, type CliResult } from "./test-harness";

/** The CLI can change what it created (issue 15, item 17): service update, env schedule, open, a container's command. */
let h: CliHarness;

beforeAll(async () => {
  h = await startCliHarness();
  expect((await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).code).toBe(0);
  expect((await h.cli(["project", "create", "shop"])).code).toBe(0);
  expect((await h.cli(["env", "create", "shop/dev"])).code).toBe(0);
});

function expectFailure(result: CliResult, code: number, message: string | RegExp) {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe("");
  const lines = result.stderr.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  if (typeof message === "string") expect(lines[0]).toBe(`error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

async function configOf(path: string): Promise<Record<string, unknown>> {
  const [project, environment, name] = path.split("/");
  const list = JSON.parse((await h.cli(["service", "list", `${project}/${environment}`, "--json"])).stdout) as {
    name: string;
    config: Record<string, unknown>;
  }[];
  return list.find((service) => service.name === name)!.config;
}

describe("service update", () => {
  it("changes only the settings given on an application, and --unset sets one back to its default", async () => {
    const created = await h.cli(["service", "create", "shop/dev/web", "--git", "https://example.test/shop.git", "--branch", "release", "--health", "/health"]);
    expect(created.code).toBe(0);
    const updated = await h.cli([
      "service",
      "update",
      "shop/dev/web",
      "--start",
      "npm run serve",
      "--port",
      "9000",
      "--memory",
      "256",
      "--cpus",
      "0.5",
      "--build-timeout",
      "120",
      "--dockerfile",
      "docker/Dockerfile",
      "--root",
      "apps/web",
    ]);
    expect(updated).toMatchObject({ code: 0, stderr: "" });
    expect(updated.stdout).toBe(
      "Updated root, start, port, build-timeout, memory, cpus, dockerfile of shop/dev/web: the next deployment applies it (slipway deploy shop/dev/web)\n",
    );
    expect(await configOf("shop/dev/web")).toMatchObject({
      git: { url: "https://example.test/shop.git", ref: { branch: "release" }, rootDirectory: "apps/web" },
      startCommand: "npm run serve",
      port: 9000,
      healthCheckPath: "/health",
      buildTimeoutSeconds: 120,
      resources: { memoryMb: 256, cpus: 0.5 },
      docker: { dockerfile: "docker/Dockerfile", context: "" },
    });

    const unset = await h.cli(["service", "update", "shop/dev/web", "--unset", "start", "--unset", "memory", "--unset", "branch", "--json"]);
    const config = (JSON.parse(unset.stdout) as { config: Record<string, unknown> }).config;
    expect(config).not.toHaveProperty("startCommand");
    expect(config).toMatchObject({ port: 9000, resources: { cpus: 0.5 }, buildTimeoutSeconds: 120 });
    expect(config.resources).not.toHaveProperty("memoryMb");
    expect((config.git as Record<string, unknown>).ref).toBeUndefined();
    expect((await h.cli(["service", "update", "shop/dev/web", "--unset", "build-timeout", "--json"])).stdout).toContain('"buildTimeoutSeconds": 900');
  });

  it("takes a repository token from standard input only, keeps it across other changes, and drops it on --unset git-credentials", async () => {
    const token = "ghp_update-token-5566";
    const withToken = await h.cli(["service", "update", "shop/dev/web", "--git-token-stdin", "--json"], { stdin: `${token}\n` });
    expect(withToken.code).toBe(0);
    expect(withToken.stdout).not.toContain(token);
    expect((await configOf("shop/dev/web")).git).toMatchObject({ credentials: { username: "[secret]", password: "[secret]" } });
    await h.cli(["service", "update", "shop/dev/web", "--branch", "main"]);
    expect((await configOf("shop/dev/web")).git).toMatchObject({ ref: { branch: "main" }, credentials: { password: "[secret]" } });
    await h.cli(["service", "update", "shop/dev/web", "--unset", "git-credentials"]);
    expect((await configOf("shop/dev/web")).git).not.toHaveProperty("credentials");
  });

  it("refuses what the service's kind does not have, nothing to change, and what the API's schema refuses", async () => {
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--image", "nginx"]), 2, "--image is not a setting of an APPLICATION service");
    expectFailure(await h.cli(["service", "update", "shop/dev/web"]), 2, /^error: nothing to change/);
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--unset", "git"]), 2, "--unset git: an APPLICATION service cannot go without it");
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--unset", "colour"]), 2, /^error: --unset colour: not a setting \(one of git, branch/);
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--port", "9001", "--unset", "port"]), 2, "give --port or --unset port, not both");
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--port", "http"]), 2, /--port/);
    expectFailure(await h.cli(["service", "update", "shop/dev/web", "--health", "health"]), 2, /healthCheckPath: must start with \//);
    // Nothing changed by the refusals.
    expect(await configOf("shop/dev/web")).toMatchObject({ port: 9000, healthCheckPath: "/health" });
  });

  it("runs a container's command as argv, from create and update, and refuses what needs a shell", async () => {
    const created = await h.cli(["service", "create", "shop/dev/proxy", "--image", "nginx:1.27", "--start", "nginx -g 'daemon off;'", "--json"]);
    expect(JSON.parse(created.stdout)).toMatchObject({
      kind: "CONTAINER",
      config: { image: { name: "nginx", tag: "1.27" }, command: ["nginx", "-g", "daemon off;"] },
    });
    const updated = await h.cli([
      "service",
      "update",
      "shop/dev/proxy",
      "--image",
      "nginx:1.28",
      "--command",
      "sh -c 'exec nginx -g \"daemon off;\"'",
      "--user",
      "101:101",
      "--read-only",
      "on",
      "--restart-policy",
      "on-failure",
      "--memory",
      "128",
    ]);
    expect(updated.code).toBe(0);
    expect(await configOf("shop/dev/proxy")).toMatchObject({
      image: { name: "nginx", tag: "1.28" },
      command: ["sh", "-c", 'exec nginx -g "daemon off;"'],
      user: "101:101",
      readOnlyRootFilesystem: true,
      restartPolicy: "on-failure",
      resources: { memoryMb: 128 },
    });
    await h.cli(["service", "update", "shop/dev/proxy", "--unset", "command", "--image", "nginx"]);
    const config = await configOf("shop/dev/proxy");
    expect(config).not.toHaveProperty("command");
    expect(config).toMatchObject({ image: { name: "nginx", tag: "latest" } });
    const password = "registry-pass-4321";
    const withRegistry = await h.cli(["service", "update", "shop/dev/proxy", "--registry-user", "bot", "--registry-password-stdin"], {
      stdin: `${password}\n`,
    });
    expect(withRegistry.code).toBe(0);
    expect((await configOf("shop/dev/proxy")).image).toEqual({ name: "nginx", tag: "latest", credentials: { username: "bot", password: "[secret]" } });
    // Another tag keeps the credentials; --unset drops them.
    await h.cli(["service", "update", "shop/dev/proxy", "--image", "nginx:1.29"]);
    expect((await configOf("shop/dev/proxy")).image).toMatchObject({ tag: "1.29", credentials: { username: "bot" } });
    await h.cli(["service", "update", "shop/dev/proxy", "--unset", "registry-credentials"]);
    expect((await configOf("shop/dev/proxy")).image).toEqual({ name: "nginx", tag: "1.29" });
    expectFailure(
      await h.cli(["service", "update", "shop/dev/proxy", "--registry-user", "bot"]),
      2,
      "give --registry-user and --registry-password-stdin together",
    );
    expectFailure(await h.cli(["service", "update", "shop/dev/proxy", "--start", "nginx | tee log"]), 2, /"\|" needs a shell.*sh -c/);
    expectFailure(await h.cli(["service", "create", "shop/dev/box", "--image", "busybox", "--start", "echo $HOME"]), 2, /a \$variable needs a shell/);
    expectFailure(await h.cli(["service", "update", "shop/dev/proxy", "--build", "make"]), 2, "--build is not a setting of a CONTAINER service");
  });

  it("overrides each detected build step on its own: install, Node and Python versions, output directory; --unset gives it back to detection", async () => {
    await h.cli(["service", "create", "shop/dev/site", "--git", "https://example.test/site.git"]);
    const updated = await h.cli([
      "service",
      "update",
      "shop/dev/site",
      "--install-command",
      "npm install --legacy-peer-deps",
      "--node-version",
      ">=20 <23",
      "--python-version",
      "3.12",
      "--output-directory",
      "public/dist",
    ]);
    expect(updated).toMatchObject({ code: 0, stderr: "" });
    expect(updated.stdout).toBe(
      "Updated install-command, node-version, python-version, output-directory of shop/dev/site: the next deployment applies it (slipway deploy shop/dev/site)\n",
    );
    expect(await configOf("shop/dev/site")).toMatchObject({
      installCommand: "npm install --legacy-peer-deps",
      nodeVersion: ">=20 <23",
      pythonVersion: "3.12",
      outputDirectory: "public/dist",
    });
    await h.cli(["service", "update", "shop/dev/site", "--unset", "output-directory", "--unset", "python-version"]);
    const config = await configOf("shop/dev/site");
    expect(config).not.toHaveProperty("outputDirectory");
    expect(config).not.toHaveProperty("pythonVersion");
    expect(config).toMatchObject({ nodeVersion: ">=20 <23" });

    expectFailure(
      await h.cli(["service", "update", "shop/dev/site", "--python-version", "2.7"]),
      2,
      /pythonVersion: expected a Python version such as 3\.12 or 3\.11\.9/,
    );
    expectFailure(await h.cli(["service", "update", "shop/dev/site", "--output-directory", "../elsewhere"]), 2, /outputDirectory/);
    expect(await configOf("shop/dev/site")).not.toHaveProperty("outputDirectory");
  });

  it("changes a job's trigger, command and retries, keeping what was not given", async () => {
    const created = await h.cli([
      "service",
      "create",
      "shop/dev/report",
      "--git",
      "https://example.test/shop.git",
      "--job",
      "node report.js",
      "--cron",
      "0 7 * * 1-5",
      "--tz",
      "Europe/Paris",
    ]);
    expect(created.code).toBe(0);
    await h.cli(["service", "update", "shop/dev/report", "--cron", "0 8 * * *", "--command", "node daily.js", "--retries", "3", "--missed-runs", "skip"]);
    expect(await configOf("shop/dev/report")).toMatchObject({
      command: "node daily.js",
      retries: 3,
      trigger: { type: "cron", schedule: "0 8 * * *", timeZone: "Europe/Paris", missedRuns: "skip" },
    });
    await h.cli(["service", "update", "shop/dev/report", "--unset", "tz"]);
    expect((await configOf("shop/dev/report")).trigger).toMatchObject({ timeZone: "UTC", missedRuns: "skip" });
    await h.cli(["service", "update", "shop/dev/report", "--on", "start,stop"]);
    expect((await configOf("shop/dev/report")).trigger).toEqual({ type: "lifecycle", on: ["start", "stop"] });
    expectFailure(await h.cli(["service", "update", "shop/dev/report", "--tz", "UTC"]), 2, "--tz is for a cron job: give --cron <expression> with it");
    expectFailure(await h.cli(["service", "update", "shop/dev/report", "--cron", "every day"]), 2, /invalid schedule/);
    expectFailure(await h.cli(["service", "update", "shop/dev/report", "--unset", "command"]), 2, /command/);
    expectFailure(
      await h.cli(["service", "update", "shop/dev/report", "--output-directory", "dist"]),
      2,
      "--output-directory is not a setting of a JOB service",
    );
  });

  it("says a database's settings cannot change", async () => {
    await h.cli(["service", "create", "shop/dev/db", "--database", "postgresql"]);
    expectFailure(await h.cli(["service", "update", "shop/dev/db", "--port", "5432"]), 2, /^error: a DATABASE service's settings cannot change/);
  });
});

describe("env schedule", () => {
  it("shows, sets, changes in part and clears an environment's schedule", async () => {
    expect((await h.cli(["env", "schedule", "shop/dev"])).stdout).toMatch(/^No schedule on shop\/dev: it runs until stopped/);
    const set = await h.cli(["env", "schedule", "shop/dev", "--start", "08:00", "--stop", "20:00", "--days", "mon-fri", "--tz", "Europe/Paris"]);
    expect(set).toMatchObject({ code: 0, stderr: "" });
    expect(set.stdout).toMatch(/^days\s+Mon-Fri$/m);
    expect(set.stdout).toMatch(/^start\s+08:00$/m);
    expect(set.stdout).toMatch(/^time zone\s+Europe\/Paris$/m);

    await h.cli(["env", "schedule", "shop/dev", "--stop", "21:30", "--days", "sat,sun,1"]);
    expect(JSON.parse((await h.cli(["env", "schedule", "shop/dev", "--json"])).stdout)).toEqual({
      weekdays: [1, 6, 7],
      start: "08:00",
      stop: "21:30",
      timeZone: "Europe/Paris",
    });
    expect((await h.cli(["env", "schedule", "shop/dev"])).stdout).toMatch(/^days\s+Mon, Sat-Sun$/m);

    expectFailure(await h.cli(["env", "schedule", "shop/dev", "--start", "25:00"]), 2, /schedule\.start: use HH:MM/);
    expectFailure(await h.cli(["env", "schedule", "shop/dev", "--days", "funday"]), 2, /"funday" is not a weekday/);
    expectFailure(await h.cli(["env", "schedule", "shop/dev", "--tz", "Mars/Olympus"]), 2, /unknown time zone/);
    expectFailure(await h.cli(["env", "schedule", "shop/dev", "--clear", "--stop", "18:00"]), 2, "give --clear or new times, not both");

    expect((await h.cli(["env", "schedule", "shop/dev", "--clear"])).stdout).toMatch(/^Cleared the schedule of shop\/dev/);
    expect((await h.cli(["env", "schedule", "shop/dev", "--json"])).stdout).toBe("null\n");
    expectFailure(await h.cli(["env", "schedule", "shop/dev", "--stop", "18:00"]), 2, "a new schedule needs --start <HH:MM> and --stop <HH:MM>");
  });
});

describe("open", () => {
  it("opens the dashboard's page of a project or an environment, and a service's URL once it runs", async () => {
    const opened: string[] = [];
    const openUrl = async (url: string) => void opened.push(url);
    const { projectId, environmentId, serviceId } = await resolve("shop/dev/web");

    expect(await h.cli(["open", "shop"], { openUrl })).toMatchObject({ code: 0, stdout: `${h.url}/projects/${projectId}\n` });
    expect(await h.cli(["open", "shop/dev", "--print"], { openUrl })).toMatchObject({ code: 0, stdout: `${h.url}/environments/${environmentId}\n` });
    expect(opened).toEqual([`${h.url}/projects/${projectId}`]);

    expectFailure(await h.cli(["open", "shop/dev/web", "--print"]), 1, /^error: shop\/dev\/web has no URL yet: it has not been deployed/);
    expectFailure(await h.cli(["open", "shop/dev/db", "--print"]), 1, /^error: shop\/dev\/db is a DATABASE and has no URL/);
    expect((await h.cli(["open", "shop/dev/web", "--dashboard", "--print"])).stdout).toBe(`${h.url}/services/${serviceId}\n`);

    // What an engine reports once the service runs, and the router port it listens on.
    await h.database.db
      .update(services)
      .set({ runtime: { state: "running", releaseId: "r1", restarts: 0, reportedAt: new Date().toISOString() } })
      .where(eq(services.id, serviceId!));
    await h.database.db
      .update(clusters)
      .set({ capabilities: { runtime: "local", routerPort: 8088 } })
      .where(eq(clusters.id, h.org.clusterId));
    const result = await h.cli(["open", "shop/dev/web"], { openUrl });
    expect(result).toMatchObject({ code: 0, stdout: "http://web-dev-shop.localhost:8088\n" });
    expect(opened.at(-1)).toBe("http://web-dev-shop.localhost:8088");
  });
});

async function resolve(path: string) {
  const response = await fetch(`${h.url}/api/v1/resolve?path=${encodeURIComponent(path)}`, { headers: { authorization: `Bearer ${h.ownerToken}` } });
  return (await response.json()) as { projectId: string; environmentId: string; serviceId: string | null };
}
