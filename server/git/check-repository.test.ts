import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { testPort } from "../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZodError } from "zod";
import { createTestDatabase } from "../../test/database";
import { type GitServer, startGitServer } from "../../test/git-server";
import { createFakeSsh, type FakeSsh, generateDeployKey } from "../../test/support/fake-ssh";
import { repositoryCheckSettings, seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { deployments, services as servicesTable } from "../db/schema";
import { openSnapshot } from "../deployments/snapshot";
import { cipherFor } from "../secrets/organization-cipher";

/**
 * Issue 14: a service's repository and branch are checked when it is saved, against real git
 * servers on 127.0.0.1 (test/git-server.ts), through the API as a DEVELOPER calls it.
 */
const USER = "deploy-bot";
const TOKEN = "glpat-ch3ck-t0ken-5521";
const TIMEOUT_MS = 1_500;

let dir: string;
let services: Services;
let org: SeededOrganization;
let open: GitServer;
let privateServer: GitServer;
let ssh: FakeSsh;
let silent: net.Server;
let silentUrl: string;
let closedUrl: string;
let redirecting: http.Server;
let redirectingUrl: string;
const quiet: net.Socket[] = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-check-test-"));
  const app = path.join(dir, "app");
  await fs.mkdir(app);
  await fs.writeFile(path.join(app, "index.html"), "hello\n");
  open = await startGitServer();
  await open.createRepo("legacy", app, {}, "master");
  await open.createRepo("trunk", app, {}, "trunk");
  for (const branch of ["main", "feature-1", "feature-2", "feature-3", "feature-4", "feature-5"]) await open.pushDirectory("trunk", app, {}, branch);
  privateServer = await startGitServer({ basicAuth: { username: USER, password: TOKEN } });
  await privateServer.createRepo("private", app, {}, "main");
  await privateServer.pushDirectory("private", app, {}, "release");
  ssh = await createFakeSsh(dir);

  // A host that accepts connections and never answers: the check must give up on it, saying so.
  silent = net.createServer((socket) => void quiet.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentUrl = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/app.git`;
  closedUrl = `http://127.0.0.1:${await testPort()}/app.git`;
  // An http repository that redirects to https: a check of an http URL speaks http only.
  redirecting = http.createServer((req, res) => res.writeHead(302, { location: `https://127.0.0.1:1${req.url}` }).end());
  await new Promise<void>((resolve) => redirecting.listen(0, "127.0.0.1", resolve));
  redirectingUrl = `http://127.0.0.1:${(redirecting.address() as net.AddressInfo).port}/app.git`;

  const repositoryCheck = repositoryCheckSettings({
    enabled: true,
    timeoutMs: TIMEOUT_MS,
    sshKnownHostsFile: path.join(dir, "control-plane", "ssh", "known_hosts"),
    env: { PATH: `${ssh.dir}:${process.env.PATH}`, HOME: dir },
  });
  services = testServices((await createTestDatabase()).db, { repositoryCheck });
  org = await seedOrganization(services, "repository-check");
});

afterAll(async () => {
  for (const socket of quiet) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await new Promise((resolve) => redirecting?.close(resolve));
  await open?.close();
  await privateServer?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const api = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function environment(name: string) {
  const project = await api().projects.create({ name });
  return (await api().environments.create({ projectId: project.id, name: "dev" })).id;
}

/** What a user is told when the API refuses: its message, or the schema's `path: message`. */
async function refusal(call: Promise<unknown>): Promise<string> {
  const error = (await call.then(
    () => null,
    (caught: unknown) => caught,
  )) as { code?: string; message: string; cause?: unknown } | null;
  expect(error, "expected the API to refuse").not.toBeNull();
  expect(error!.code).toBe("BAD_REQUEST");
  if (error!.cause instanceof ZodError) return error!.cause.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ");
  return error!.message;
}

const gitOf = (service: { config: unknown }) => (service.config as { git: Record<string, unknown> }).git;

describe("a service's repository, checked when it is saved", () => {
  let environmentId: string;
  let count = 0;
  beforeAll(async () => {
    environmentId = await environment("checks");
  });
  const create = (git: Record<string, unknown>, extra: { checkRepository?: boolean } = {}) =>
    api().services.create({ environmentId, name: `web-${++count}`, config: { git: git as { url: string } }, ...extra });

  it("records the repository's default branch when the service names none (master, trunk)", async () => {
    expect(gitOf(await create({ url: open.url("legacy") })).ref).toEqual({ branch: "master" });
    expect(gitOf(await create({ url: open.url("trunk") })).ref).toEqual({ branch: "trunk" });
    // A branch or a commit given is kept as given.
    expect(gitOf(await create({ url: open.url("trunk"), ref: { branch: "main" } })).ref).toEqual({ branch: "main" });
    expect(gitOf(await create({ url: open.url("trunk"), ref: { commit: "abc1234" } })).ref).toEqual({ commit: "abc1234" });
  });

  it("refuses a branch the repository does not have, naming some it has (the default one first)", async () => {
    expect(await refusal(create({ url: open.url("trunk"), ref: { branch: "develop" } }))).toBe(
      `config.git.ref.branch: branch "develop" not found in ${open.url("trunk")}; it has trunk, feature-1, feature-2, feature-3, feature-4 and 2 more`,
    );
    expect(await refusal(create({ url: open.url("legacy"), ref: { branch: "main" } }))).toBe(
      `config.git.ref.branch: branch "main" not found in ${open.url("legacy")}; it has master`,
    );
  });

  it("refuses a repository it cannot reach, saying why", async () => {
    const missing = open.url("missing");
    expect(await refusal(create({ url: missing }))).toBe(`config.git.url: repository ${missing} is unreachable: repository not found`);
    const port = new URL(closedUrl).port;
    expect(await refusal(create({ url: closedUrl }))).toBe(`config.git.url: repository ${closedUrl} is unreachable: could not connect to 127.0.0.1:${port}`);
    expect(await refusal(create({ url: "https://nonexistent.invalid/acme/app.git" }))).toBe(
      "config.git.url: repository https://nonexistent.invalid/acme/app.git is unreachable: host nonexistent.invalid not found (DNS)",
    );
  });

  it("follows no redirect to another scheme", async () => {
    expect(await refusal(create({ url: redirectingUrl }))).toBe(
      `config.git.url: repository ${redirectingUrl} is unreachable: it redirects to another scheme (https), which the check does not follow: give the URL it redirects to`,
    );
  });

  it("gives up on a host that never answers within its timeout, with a 400 that says so", async () => {
    const started = performance.now();
    expect(await refusal(create({ url: silentUrl }))).toBe(`config.git.url: repository ${silentUrl} is unreachable: no answer within 1.5 s`);
    // Bounded: the timeout and the time to kill git, not git's own idea of a timeout (minutes).
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 3_000);
  });

  it("saves unchecked with checkRepository: false, and then names no branch (the engine clones the default one)", async () => {
    const unchecked = await create({ url: silentUrl }, { checkRepository: false });
    expect(gitOf(unchecked)).not.toHaveProperty("ref");
    // Settings other than the git source do not check it again; a changed source does.
    const id = unchecked.id;
    expect(await api().services.update({ serviceId: id, config: { buildCommand: "true" } })).toMatchObject({ config: { buildCommand: "true" } });
    expect(await refusal(api().services.update({ serviceId: id, config: { git: { url: closedUrl } } }))).toMatch(/is unreachable: could not connect/);
    const moved = await api().services.update({ serviceId: id, config: { git: { url: open.url("legacy") } } });
    expect(gitOf(moved).ref).toEqual({ branch: "master" });
    expect(await refusal(api().services.update({ serviceId: id, config: { git: { url: open.url("legacy"), ref: { branch: "gone" } } } }))).toMatch(
      /branch "gone" not found/,
    );
    expect(
      gitOf(await api().services.update({ serviceId: id, config: { git: { url: open.url("legacy"), ref: { branch: "gone" } } }, checkRepository: false })),
    ).toMatchObject({ ref: { branch: "gone" } });
  });

  it("checks a local repository only when its path is on this host too (the engine's host may be another)", async () => {
    const here = `file://${open.repoPath("legacy")}`;
    expect(gitOf(await create({ url: here })).ref).toEqual({ branch: "master" });
    expect(await refusal(create({ url: open.repoPath("legacy"), ref: { branch: "main" } }))).toMatch(
      /branch "main" not found in \/.*legacy\.git; it has master/,
    );
    const elsewhere = await create({ url: "file:///srv/only-on-the-engine/app.git" });
    expect(gitOf(elsewhere)).not.toHaveProperty("ref");
  });

  it("reads no repository on its own host where it does not share the host with the engine", async () => {
    const apart = testServices(services.db, { keyring: services.keyring, repositoryCheck: { ...services.repositoryCheck, readsLocalPaths: false } });
    const create = (git: { url: string; ref?: { branch: string } }) =>
      createCaller({ services: apart, actor: org.as("DEVELOPER") }).services.create({ environmentId, name: `apart-${++count}`, config: { git } });
    // A branch that is not there is not found out, nor the default one: the path was not read.
    const here = `file://${open.repoPath("legacy")}`;
    expect(gitOf(await create({ url: here }))).not.toHaveProperty("ref");
    expect(gitOf(await create({ url: here, ref: { branch: "no-such-branch" } })).ref).toEqual({ branch: "no-such-branch" });
  });

  it("refuses an empty repository unless asked not to check (a repository pushed later)", async () => {
    const { execFile } = await import("node:child_process");
    await new Promise((resolve, reject) =>
      execFile("git", ["init", "--quiet", "--bare", "--initial-branch", "main", open.repoPath("later")], (error) => (error ? reject(error) : resolve(null))),
    );
    expect(await refusal(create({ url: open.url("later") }))).toBe(
      `${open.url("later")} has no branch yet (an empty repository): push a first commit, or save the service with checkRepository: false (slipway service create --no-check) to deploy it once pushed`,
    );
    expect(gitOf(await create({ url: open.url("later") }, { checkRepository: false }))).not.toHaveProperty("ref");
  });
});

describe("a private repository, checked with its credentials", () => {
  it("needs them, refuses wrong ones, and keeps using the stored ones when the branch changes", async () => {
    const environmentId = await environment("private-check");
    const url = privateServer.url("private");
    const create = (name: string, credentials?: { username: string; password: string }) =>
      api().services.create({ environmentId, name, config: { git: { url, ...(credentials ? { credentials } : {}) } } });
    expect(await refusal(create("anonymous"))).toBe(
      `config.git.url: repository ${url} is unreachable: authentication required: the repository is private (or does not exist); give a token (--git-token-stdin) or, for an ssh URL, a deploy key`,
    );
    expect(await refusal(create("wrong", { username: USER, password: "not-the-token" }))).toBe(
      `config.git.url: repository ${url} is unreachable: authentication failed: the repository refused the credentials`,
    );
    const created = await create("web", { username: USER, password: TOKEN });
    expect(gitOf(created)).toMatchObject({ ref: { branch: "main" }, credentials: { username: "[secret]", password: "[secret]" } });

    // The stored credentials (sealed) are opened for the check of a changed branch.
    expect(await refusal(api().services.update({ serviceId: created.id, config: { git: { url, ref: { branch: "nope" } } } }))).toBe(
      `config.git.ref.branch: branch "nope" not found in ${url}; it has main, release`,
    );
    const release = await api().services.update({ serviceId: created.id, config: { git: { url, ref: { branch: "release" } } } });
    expect(gitOf(release)).toMatchObject({ ref: { branch: "release" }, credentials: { username: "[secret]", password: "[secret]" } });
  });
});

describe("deploy keys", () => {
  let key: string;
  let environmentId: string;
  beforeAll(async () => {
    key = await generateDeployKey(dir, "deploy_key");
    environmentId = await environment("deploy-keys");
  });

  it("check an ssh repository with the key, are kept sealed and hidden, and reach the engine's task", async () => {
    const url = `ssh://git@fake-host${open.repoPath("trunk")}`;
    const before = (await ssh.runs()).length;
    const created = await api().services.create({ environmentId, name: "web", config: { git: { url, credentials: { sshPrivateKey: key } } } });
    expect(gitOf(created)).toEqual({ url, ref: { branch: "trunk" }, rootDirectory: "", credentials: { sshPrivateKey: "[secret]" } });

    // Checked through ssh with the key in a 0600 file, gone afterwards, and the control plane's known_hosts.
    const run = (await ssh.runs())[before]!;
    expect(run.args).toEqual(
      expect.arrayContaining(["IdentitiesOnly=yes", "StrictHostKeyChecking=accept-new", `UserKnownHostsFile="${services.repositoryCheck.sshKnownHostsFile}"`]),
    );
    expect(run.keyMode).toBe("600");
    await expect(fs.stat(run.identityFile!)).rejects.toMatchObject({ code: "ENOENT" });

    const keyLine = key.split("\n")[1]!;
    const [row] = await services.db.select().from(servicesTable).where(eq(servicesTable.id, created.id));
    expect(JSON.stringify(row!.config)).not.toContain(keyLine);
    expect(JSON.stringify(await api().services.get({ serviceId: created.id }))).not.toContain(keyLine);

    const { deployment } = await api().deployments.create({ environmentId, action: "DEPLOY" });
    const [stored] = await services.db.select().from(deployments).where(eq(deployments.id, deployment.id));
    expect(JSON.stringify(stored!.snapshot)).not.toContain(keyLine);
    const task = openSnapshot(await cipherFor(services.db, services.keyring, org.organizationId), deployment.id, stored!.snapshot).services[0]!;
    expect(task.kind === "APPLICATION" && task.config.git.credentials).toEqual({ sshPrivateKey: key });

    // Another branch keeps the key; another host does not take it along.
    const moved = await api().services.update({ serviceId: created.id, config: { git: { url: open.url("legacy") } } });
    expect(gitOf(moved)).not.toHaveProperty("credentials");
  });

  it("are refused when they cannot work, on their field", async () => {
    const url = `ssh://git@fake-host${open.repoPath("trunk")}`;
    const withPassphrase = await generateDeployKey(dir, "protected_key", "a passphrase");
    const create = (credentials: Record<string, string>, gitUrl = url) =>
      api().services.create({ environmentId, name: "refused", config: { git: { url: gitUrl, credentials: credentials as { sshPrivateKey: string } } } });
    expect(await refusal(create({ sshPrivateKey: withPassphrase }))).toBe(
      "config.git.credentials.sshPrivateKey: the key has a passphrase, which nobody can type at deploy time: remove it (ssh-keygen -p -N '' -f <file>) or make a key without one",
    );
    expect(await refusal(create({ sshPrivateKey: "hunter2" }))).toBe(
      "config.git.credentials.sshPrivateKey: expected a private key file as ssh-keygen writes it (-----BEGIN OPENSSH PRIVATE KEY----- …)",
    );
    expect(await refusal(create({ sshPrivateKey: key }, open.url("trunk")))).toBe(
      "config.git.credentials: a deploy key is for ssh URLs (ssh://… or git@host:path); an https URL takes a token",
    );
  });

  it("leave an ssh repository without one unchecked: the engine's own ssh keys are not the control plane's", async () => {
    const created = await api().services.create({ environmentId, name: "engine-keys", config: { git: { url: "git@git.example.com:acme/app.git" } } });
    expect(gitOf(created)).not.toHaveProperty("ref");
  });
});

describe("the installation's switch", () => {
  it("SLIPWAY_CHECK_REPOSITORIES=0 saves services unchecked", async () => {
    const unchecked = testServices(services.db, { keyring: services.keyring, repositoryCheck: repositoryCheckSettings({ enabled: false }) });
    const caller = createCaller({ services: unchecked, actor: org.as("DEVELOPER") });
    const environmentId = await environment("switch-off");
    const created = await caller.services.create({ environmentId, name: "web", config: { git: { url: closedUrl } } });
    expect(gitOf(created)).toEqual({ url: closedUrl, rootDirectory: "" });
  });
});
