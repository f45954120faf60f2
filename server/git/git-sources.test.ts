import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { ZodError } from "zod";
import type { ApplicationConfig } from "../../engine/protocol";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { auditEvents, deployments, services as servicesTable } from "../db/schema";
import { openSnapshot } from "../deployments/snapshot";
import { cipherFor } from "../secrets/organization-cipher";

let services: Services;
let org: SeededOrganization;
const TOKEN = "ghp_s3cr3tT0kenValue9931";

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "git-sources");
});

const as = (role: "VIEWER" | "DEVELOPER" | "ADMIN") => createCaller({ services, actor: org.as(role) });
const api = () => as("DEVELOPER");

/** What a user is told: the API's `path: message` per refused field (as the CLI and the dashboard show it), or the domain's message. */
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

async function environmentOn(name: string, clusterId?: string) {
  const project = await api().projects.create({ name });
  return api().environments.create({ projectId: project.id, name: "dev", ...(clusterId ? { clusterId } : {}) });
}

/** The task the engine gets for a deployment: its snapshot opened, as pullTask hands it over. */
async function engineTask(deploymentId: string) {
  const [row] = await services.db.select().from(deployments).where(eq(deployments.id, deploymentId));
  const spec = openSnapshot(await cipherFor(services.db, services.keyring, org.organizationId), deploymentId, row!.snapshot).services[0]!;
  if (spec.kind !== "APPLICATION") throw new Error("expected an application");
  return { stored: JSON.stringify(row!.snapshot), git: spec.config.git };
}

describe("git input the API refuses, with the message a user sees", () => {
  let environmentId: string;
  beforeAll(async () => {
    environmentId = (await environmentOn("refusals")).id;
  });
  const create = (git: Record<string, unknown>) => api().services.create({ environmentId, name: "web", config: { git: git as { url: string } } });

  it("refuses ext:: and every transport git would run a command for", async () => {
    expect(await refusal(create({ url: "ext::sh -c touch% /tmp/pwned" }))).toBe(
      'config.git.url: "ext::" URLs are refused: git runs a command for them; use an https, ssh or git URL',
    );
    expect(await refusal(create({ url: "fd::3" }))).toBe('config.git.url: "fd::" URLs are refused: git runs a command for them; use an https, ssh or git URL');
    expect(await refusal(create({ url: "persistent-https://example.com/app.git" }))).toBe(
      'config.git.url: "persistent-https://" URLs are refused: use an https, ssh or git URL (file:// only on a cluster whose ADMIN allowed local repositories)',
    );
  });

  it("refuses URLs that git would read as options, and relative paths", async () => {
    expect(await refusal(create({ url: "--upload-pack=touch /tmp/pwned" }))).toBe("config.git.url: must not start with '-': git would read it as an option");
    expect(await refusal(create({ url: "ssh://-oProxyCommand=touch%20pwned/app.git" }))).toBe(
      "config.git.url: the host must not start with '-': git would read it as an option",
    );
    expect(await refusal(create({ url: "git@-oProxyCommand=pwned:app.git" }))).toBe(
      "config.git.url: the host must not start with '-': git would read it as an option",
    );
    expect(await refusal(create({ url: "../another/repo" }))).toBe(
      "config.git.url: expected an https, ssh or git URL (file:// only on a cluster whose ADMIN allowed local repositories)",
    );
  });

  it("refuses branches, commits and root directories that start with -, contain .. or leave the repository", async () => {
    const url = "https://github.com/acme/app.git";
    expect(await refusal(create({ url, ref: { branch: "--upload-pack=touch /tmp/pwned" } }))).toBe(
      "config.git.ref.branch: must not start with '-': git would read it as an option",
    );
    expect(await refusal(create({ url, ref: { branch: "main/../../HEAD" } }))).toBe("config.git.ref.branch: must not contain '..'");
    expect(await refusal(create({ url, ref: { commit: "-abc1234" } }))).toBe("config.git.ref.commit: expected a commit hash");
    expect(await refusal(create({ url, rootDirectory: "-rf" }))).toBe("config.git.rootDirectory: must not start with '-'");
    expect(await refusal(create({ url, rootDirectory: "apps/../../etc" }))).toBe(
      "config.git.rootDirectory: must not contain '..': the path must stay inside the repository",
    );
    expect(await refusal(create({ url, rootDirectory: "/etc" }))).toBe("config.git.rootDirectory: must be a path inside the repository, relative to its root");
  });

  it("refuses credentials that would cross the network in clear, or that an ssh URL cannot use", async () => {
    expect(await refusal(create({ url: `http://bot:${TOKEN}@git.example.com/app.git` }))).toBe(
      "config.git.url: credentials are sent only over https: use an https URL",
    );
    expect(await refusal(create({ url: `ssh://git:${TOKEN}@git.example.com/app.git` }))).toBe(
      "config.git.url: ssh URLs take no password: give a deploy key (sshPrivateKey), or the engine's own ssh keys are used",
    );
    expect(await refusal(create({ url: "git@git.example.com:app.git", credentials: { username: "bot", password: TOKEN } }))).toBe(
      "config.git.credentials: a token is for https URLs; an ssh URL takes a deploy key (sshPrivateKey), or the engine's own ssh keys are used",
    );
  });

  it("refuses the same input when a service is changed", async () => {
    const service = await create({ url: "https://github.com/acme/app.git" });
    expect(await refusal(api().services.update({ serviceId: service.id, config: { git: { url: "ext::sh -c touch% /tmp/pwned" } } }))).toBe(
      'git.url: "ext::" URLs are refused: git runs a command for them; use an https, ssh or git URL',
    );
    expect(
      await refusal(api().services.update({ serviceId: service.id, config: { git: { url: "https://github.com/acme/app.git", rootDirectory: "../x" } } })),
    ).toBe("git.rootDirectory: must not contain '..': the path must stay inside the repository");
  });
});

describe("local repositories", () => {
  it("are allowed only on a cluster an ADMIN allowed them on, and checked again at deployment and on copy", async () => {
    const { cluster } = await as("ADMIN").clusters.create({ name: "remote", kind: "local" });
    expect(cluster.allowLocalRepositories).toBe(false);
    const environment = await environmentOn("local-repos", cluster.id);
    const refused = (url: string) =>
      `${url} is a repository on the engine's host, and cluster "remote" does not allow local repositories: use an https, ssh or git URL, or ask an ADMIN to allow them (slipway cluster update remote --local-repositories on)`;
    const create = (url: string) => api().services.create({ environmentId: environment.id, name: "web", config: { git: { url } } });
    expect(await refusal(create("file:///srv/git/app.git"))).toBe(refused("file:///srv/git/app.git"));
    expect(await refusal(create("/srv/git/app.git"))).toBe(refused("/srv/git/app.git"));

    // Only an ADMIN decides, and the decision is on the record.
    await expect(api().clusters.update({ clusterId: cluster.id, allowLocalRepositories: true })).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await as("ADMIN").clusters.update({ clusterId: cluster.id, allowLocalRepositories: true })).toMatchObject({ allowLocalRepositories: true });
    const [audit] = await services.db.select().from(auditEvents).where(eq(auditEvents.action, "cluster.update"));
    expect(audit).toMatchObject({
      targetId: cluster.id,
      actorType: "user",
      changes: { before: { allowLocalRepositories: false }, after: { allowLocalRepositories: true } },
    });
    const service = await create("file:///srv/git/app.git");

    // Disallowed again: the service stays, its next deployment is refused, and so is pointing another one at a path.
    await as("ADMIN").clusters.update({ clusterId: cluster.id, allowLocalRepositories: false });
    expect(await refusal(api().deployments.create({ environmentId: environment.id, action: "DEPLOY" }))).toBe(refused("file:///srv/git/app.git"));
    expect(await refusal(api().services.update({ serviceId: service.id, config: { git: { url: "/srv/git/other.git" } } }))).toBe(refused("/srv/git/other.git"));

    // A copy onto a cluster that does not allow them is refused; the source's own cluster (npm start's `local`) allows them.
    const source = await environmentOn("local-source");
    await api().services.create({ environmentId: source.id, name: "web", config: { git: { url: "file:///srv/git/app.git" } } });
    expect(await refusal(api().environments.clone({ environmentId: source.id, name: "copy", clusterId: cluster.id }))).toBe(refused("file:///srv/git/app.git"));
    expect(await api().environments.clone({ environmentId: source.id, name: "copy" })).toMatchObject({ environment: { clusterId: org.clusterId } });
  });
});

describe("repository credentials", () => {
  it("come out of the URL, stay sealed and hidden, and reach only the engine's task", async () => {
    const environment = await environmentOn("private-repo");
    const created = await api().services.create({
      environmentId: environment.id,
      name: "web",
      config: { git: { url: `https://x-access-token:${TOKEN}@github.com/acme/private.git`, ref: { branch: "main" } } },
    });
    const hidden = {
      url: "https://github.com/acme/private.git",
      ref: { branch: "main" },
      rootDirectory: "",
      credentials: { username: "[secret]", password: "[secret]" },
    };
    expect(created.config).toMatchObject({ git: hidden });
    // VIEWERs read the service without the token, and nothing stores it in clear.
    expect(JSON.stringify(await as("VIEWER").services.get({ serviceId: created.id }))).not.toContain(TOKEN);
    expect((await as("VIEWER").services.get({ serviceId: created.id })).config).toMatchObject({ git: hidden });
    const [row] = await services.db.select().from(servicesTable).where(eq(servicesTable.id, created.id));
    expect(JSON.stringify(row!.config)).not.toContain(TOKEN);
    expect(JSON.stringify(row!.config)).not.toContain("x-access-token");

    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const task = await engineTask(deployment.id);
    expect(task.stored).not.toContain(TOKEN);
    expect(task.git).toEqual({
      url: "https://github.com/acme/private.git",
      ref: { branch: "main" },
      rootDirectory: "",
      credentials: { username: "x-access-token", password: TOKEN },
    });

    // Another branch keeps them; another host does not get them; null clears them.
    await api().services.update({ serviceId: created.id, config: { git: { url: "https://github.com/acme/private.git", ref: { branch: "next" } } } });
    const sameOrigin = await engineTask((await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).deployment.id);
    expect(sameOrigin.git).toMatchObject({ ref: { branch: "next" }, credentials: { username: "x-access-token", password: TOKEN } });
    const moved = await api().services.update({ serviceId: created.id, config: { git: { url: "https://git.attacker.example/acme/private.git" } } });
    expect(moved.config).toMatchObject({ git: { url: "https://git.attacker.example/acme/private.git" } });
    expect((moved.config as { git: object }).git).not.toHaveProperty("credentials");
    const elsewhere = await engineTask((await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" })).deployment.id);
    expect(elsewhere.git.credentials).toBeUndefined();

    // Given apart from the URL (as `slipway service create --git-token-stdin` sends them), then cleared.
    const given = await api().services.update({
      serviceId: created.id,
      config: { git: { url: "https://github.com/acme/private.git", ref: { branch: "main" }, credentials: { username: "oauth2", password: TOKEN } } },
    });
    expect(given.config).toMatchObject({ git: hidden });
    const cleared = await api().services.update({ serviceId: created.id, config: { git: { url: "https://github.com/acme/private.git", credentials: null } } });
    expect((cleared.config as { git: object }).git).not.toHaveProperty("credentials");

    const audit = await as("ADMIN").organization.audit({ limit: 100 });
    expect(JSON.stringify(audit)).not.toContain(TOKEN);
  });

  it("of a URL stored before they were taken out are hidden in answers and sealed for the engine", async () => {
    const environment = await environmentOn("older-row");
    const service = await api().services.create({ environmentId: environment.id, name: "web", config: { git: { url: "https://github.com/acme/old.git" } } });
    const [row] = await services.db.select().from(servicesTable).where(eq(servicesTable.id, service.id));
    const config = row!.config as ApplicationConfig;
    await services.db
      .update(servicesTable)
      .set({ config: { ...config, git: { ...config.git, url: `https://bot:${TOKEN}@github.com/acme/old.git` } } })
      .where(eq(servicesTable.id, service.id));
    expect(JSON.stringify(await as("VIEWER").services.list({ environmentId: environment.id }))).not.toContain(TOKEN);
    const { deployment } = await api().deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const task = await engineTask(deployment.id);
    expect(task.stored).not.toContain(TOKEN);
    expect(task.git).toMatchObject({ url: "https://github.com/acme/old.git", credentials: { username: "bot", password: TOKEN } });
  });
});
