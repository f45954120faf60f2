/**
 * The attacker app (test/fixtures/apps/attacker): on the local runtime, its build, the running
 * app and a shell of it each try to reach the platform's secrets, the control plane's database,
 * another service's files and processes, and the engine; every attempt must fail, while the app
 * keeps what it needs: its files, its variables, its database, outbound HTTP on 127.0.0.1.
 */
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Engine } from "../../engine/core";
import type { DatabaseServiceSpec } from "../../engine/protocol";
import { layout } from "../../engine/runtime/local/layout";
import { detectSandbox } from "../../engine/runtime/local/sandbox/sandbox";
import { homeLayout, loadOrCreateAuthSecret, loadOrCreateMasterKey, prepareHome } from "../../server/home";
import { database, engineHome, eventually, fixture, service, task } from "../engine-harness";
import { type GitServer, startGitServer } from "../git-server";
import { appPid } from "../support/app-process";
import { skipWithout } from "../support/requirements";

const nodeModules = fileURLToPath(new URL("../../node_modules", import.meta.url));
// The attacker's database client (pg) comes from the platform's packages, shown read-only to apps.
const host = await detectSandbox({ probeUser: { uid: 65534, gid: 65534 }, extraReadonly: [nodeModules] });

type Attempt = { name: string; ok: boolean; detail: string };
type ProbeResult = { where: string; uid: number; attacks: Attempt[]; own: Attempt[] };

describe.skipIf(skipWithout(host.kind === "none" ? `a sandbox (${host.reason})` : null))("the sandbox of the local runtime, against an attacker app", () => {
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let git: GitServer;
  let outbound: http.Server;
  let platformHome: string;
  let buildProbe: ProbeResult;
  let db: DatabaseServiceSpec;
  let victim: ReturnType<typeof service>;
  let attacker: ReturnType<typeof service>;

  const deployed = async (...services: Parameters<typeof task>[1]) => {
    const t = task("DEPLOY", services);
    await engine.execute(t);
    const final = env.final(t.deploymentId);
    expect(final?.status, JSON.stringify(final)).toBe("succeeded");
    return t;
  };

  beforeAll(async () => {
    // A platform home as `npm start` makes it: its master key and auth secret, the engine's home inside.
    platformHome = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-attacked-")));
    const home = await prepareHome(platformHome);
    await loadOrCreateMasterKey(home, undefined);
    await loadOrCreateAuthSecret(home, undefined);
    // The engine's own secret (as `npm start` writes it): no app may read it.
    await fs.writeFile(path.join(home.engineHome, "token"), "engine-token-secret", { mode: 0o600 });
    env = await engineHome({ drainTimeoutMs: 1_000, stopGraceMs: 3_000, sandbox: Promise.resolve(host) }, home.engineHome);
    engine = env.newEngine();
    await engine.start();

    outbound = http.createServer((_req, res) => res.end("pong"));
    await new Promise<void>((resolve) => outbound.listen(0, "127.0.0.1", resolve));

    git = await startGitServer();
    await git.createRepo("victim", fixture("node-app"));
    await git.createRepo("attacker", fixture("attacker"));
    victim = service({ name: "victim", config: { git: { url: git.url("victim") } } });
    await deployed(victim);

    // Everything the test knows and the attacker should not reach.
    const admin = new pg.Client({ connectionString: inject("postgresUrl") });
    await admin.connect();
    const postgresDataDir = (await admin.query<{ data_directory: string }>("SHOW data_directory")).rows[0]!.data_directory;
    await admin.end();
    const paths = layout(env.home);
    const victimState = JSON.parse(await fs.readFile(paths.stateFile(victim.id), "utf8")) as { current: { releaseId: string; port: number } };
    const victimReleaseDir = paths.releaseDir(victim.id, victimState.current.releaseId);
    db = await database("postgresql", { name: "attacker-db" });
    const { user, password, port, database: dbName } = db.config.connection;
    const targets = {
      masterKeyFile: homeLayout(platformHome).masterKeyFile,
      authSecretFile: homeLayout(platformHome).authSecretFile,
      postgresDataDir,
      engineHome: env.home,
      victimReleaseDir,
      victimLog: path.join(victimReleaseDir, "runtime.log"),
      victimLaunch: path.join(victimReleaseDir, "launch.json"),
      victimSrc: path.join(victimReleaseDir, "src"),
      victimCode: path.join(victimReleaseDir, "src", "server.js"),
      victimPid: appPid(victimState.current.port),
      enginePid: process.pid,
      controlPlanePort: Number(new URL(inject("postgresUrl")).port),
      outboundUrl: `http://127.0.0.1:${(outbound.address() as AddressInfo).port}/`,
      databaseUrl: `postgres://${user}:${password}@127.0.0.1:${port}/${dbName}`,
    };
    attacker = service({
      name: "attacker",
      config: { git: { url: git.url("attacker") } },
      variables: [
        { key: "PROBE_TARGETS", value: JSON.stringify(targets), secret: false },
        { key: "GREETING", value: "hello", secret: false },
        { key: "NODE_PATH", value: nodeModules, secret: false },
      ],
    });
    const deploy = await deployed(db, attacker);
    const line = env.lines.find((l) => l.stream.kind === "deployment" && l.stream.deploymentId === deploy.deploymentId && l.text.startsWith("PROBE "));
    buildProbe = JSON.parse(line!.text.slice("PROBE ".length)) as ProbeResult;
  }, 180_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    outbound?.close();
    if (platformHome) await fs.rm(platformHome, { recursive: true, force: true });
  });

  /** Every attack failed, and everything of its own worked; the failures read as what they are. */
  const expectContained = (result: ProbeResult, ownChecks: string[]) => {
    // A write to the engine's home "succeeds" where that path lies under /tmp (as in this test): into
    // the sandbox's own /tmp, where bubblewrap made the way down to the service's directories. What
    // counts is the host: no file appeared there.
    const illusory = (attack: Attempt) => attack.name === "write into the engine's home" && env.home.startsWith(`${os.tmpdir()}/`);
    expect(result.attacks.filter((attack) => attack.ok && !illusory(attack))).toEqual([]);
    expect(result.attacks.length).toBe(16);
    expect(result.own.filter((check) => !check.ok)).toEqual([]);
    expect(result.own.map((check) => check.name).sort()).toEqual([...ownChecks].sort());
    for (const written of [path.join(env.home, "pwned"), "/etc/pwned"]) expect(existsSync(written)).toBe(false);
    // Not the engine's user: a user of its own, the same for build, app and shell.
    expect(result.uid).not.toBe(process.getuid?.());
  };
  const ownChecks = ["read its own files", "read its variables", "write in its own directory", "write in its /tmp", "reach a server on 127.0.0.1"];

  it("contains the build: a dependency's install script is untrusted code", () => {
    expectContained(buildProbe, ownChecks);
  });

  it("contains the running app, which still reaches its own database", async () => {
    const response = await env.get("attacker-test.localhost", "/probe");
    const result = JSON.parse(response.body) as ProbeResult;
    expectContained(result, [...ownChecks, "query its database"]);
    expect(result.uid).toBe(buildProbe.uid);
    expect(result.own.find((check) => check.name === "query its database")?.detail).toBe(db.config.connection.user);
    // The victim still serves, untouched.
    expect((await env.get("victim-test.localhost")).status).toBe(200);
  });

  it("contains a shell of the app", async () => {
    const session = await engine.exec!(attacker.id, ["node", "probe.js", "shell"], { tty: false });
    let output = "";
    session.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    session.end();
    expect(await session.exited).toBe(0);
    const line = await eventually(() => output.split("\n").find((l) => l.startsWith("PROBE ")), 10_000, "the shell's probe");
    const result = JSON.parse(line.slice("PROBE ".length)) as ProbeResult;
    expectContained(result, [...ownChecks, "query its database"]);
    expect(result.uid).toBe(buildProbe.uid);
  });

  it("keeps the app's output private on disk: its runtime log and launch file are the engine's only", async () => {
    const paths = layout(env.home);
    const state = JSON.parse(await fs.readFile(paths.stateFile(attacker.id), "utf8")) as { current: { releaseId: string } };
    const releaseDir = paths.releaseDir(attacker.id, state.current.releaseId);
    for (const file of ["runtime.log", "runtime.stderr.log", "launch.json"]) expect((await fs.stat(path.join(releaseDir, file))).mode & 0o077).toBe(0);
    expect((await fs.stat(paths.stateFile(attacker.id))).mode & 0o077).toBe(0);
  });
});
