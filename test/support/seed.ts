import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import type { Actor } from "../../server/auth/actor";
import { issueToken } from "../../server/auth/tokens";
import type { Services } from "../../server/context";
import type { RepositoryCheckSettings } from "../../server/git/check-repository";
import type { Database } from "../../server/db/client";
import { apiTokens, clusters, memberships, users, type Role } from "../../server/db/schema";
import { createOrganization } from "../../server/organizations/create-organization";
import { createMasterKeyring } from "../../server/secrets/keyring";
import { generateKey } from "../../server/secrets/envelope";

/**
 * The repository check as the control plane runs it, but off: most tests save services of
 * repositories that do not exist (example.test). Tests of the check turn it on
 * (server/git/check-repository.test.ts).
 */
export function repositoryCheckSettings(overrides: Partial<RepositoryCheckSettings> = {}): RepositoryCheckSettings {
  return {
    enabled: false,
    timeoutMs: 10_000,
    sshKnownHostsFile: path.join(os.tmpdir(), `slipway-test-known-hosts-${process.pid}`, "known_hosts"),
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: os.tmpdir() },
    // As under `npm start`, whose engine shares the control plane's host.
    readsLocalPaths: true,
    ...overrides,
  };
}

export function testServices(db: Database, overrides: Partial<Services> = {}): Services {
  return {
    db,
    keyring: createMasterKeyring(generateKey()),
    now: () => new Date(),
    leaseSeconds: 30,
    publicUrl: "http://localhost:3000",
    repositoryCheck: repositoryCheckSettings(),
    // As an instance is by default: tests whose receivers listen on 127.0.0.1 allow it explicitly.
    notifications: { allowPrivateTargets: false, engineDisconnectGraceMs: 60_000 },
    ...overrides,
  };
}

export type SeededOrganization = {
  organizationId: string;
  clusterId: string;
  engineToken: string;
  /** An actor of this organization with the given role (a user). */
  as(role: Role): Actor;
  /** A real API token of this organization with the given role, created by its owner. */
  apiToken(role: Role): Promise<string>;
  /** Another user, a member with the given role; their tokens act with at most that role. */
  member(role: Role): Promise<SeededMember>;
};

export type SeededMember = {
  userId: string;
  email: string;
  /** The member as the actor of their own requests. */
  actor: Actor;
  /** A real API token this member created, with the given role. */
  apiToken(role: Role): Promise<string>;
};

/** An organization with a `local` cluster (as `npm start` creates it) and users of every role, as a test's starting point. */
export async function seedOrganization(services: Services, name = `org-${randomBytes(3).toString("hex")}`): Promise<SeededOrganization> {
  const { db } = services;
  const organization = await createOrganization(db, services.keyring, { name });
  const engine = issueToken("engine");
  const [cluster] = await db
    .insert(clusters)
    // As `npm start` creates it (server/bootstrap.ts): local repositories allowed.
    .values({
      organizationId: organization.id,
      name: "local",
      kind: "local",
      domainSuffix: "localhost",
      engineTokenHash: engine.hash,
      allowLocalRepositories: true,
    })
    .returning();
  const [user] = await db
    .insert(users)
    .values({ email: `${name}@example.test`, name })
    .returning();
  await db.insert(memberships).values({ organizationId: organization.id, userId: user!.id, role: "OWNER" });
  return {
    organizationId: organization.id,
    clusterId: cluster!.id,
    engineToken: engine.token,
    as: (role) => ({ type: "user", id: user!.id, label: `${name}-${role.toLowerCase()}`, organizationId: organization.id, role, origin: "API" }),
    apiToken: (role) => insertApiToken(db, organization.id, user!.id, role),
    async member(role) {
      const email = `${name}-${role.toLowerCase()}-${randomBytes(3).toString("hex")}@example.test`;
      const [member] = await db.insert(users).values({ email, name: email }).returning();
      await db.insert(memberships).values({ organizationId: organization.id, userId: member!.id, role });
      return {
        userId: member!.id,
        email,
        actor: { type: "user", id: member!.id, label: email, organizationId: organization.id, role, origin: "API" },
        apiToken: (tokenRole) => insertApiToken(db, organization.id, member!.id, tokenRole),
      };
    },
  };
}

async function insertApiToken(db: Database, organizationId: string, createdById: string, role: Role): Promise<string> {
  const issued = issueToken("api");
  await db.insert(apiTokens).values({ organizationId, createdById, name: `test-${role}`, role, tokenHash: issued.hash, prefix: issued.prefix });
  return issued.token;
}

/** The git source of a service the API returned, failing the test when it is not an application. */
export function gitOf(service: { config: object }) {
  if (!("git" in service.config)) throw new Error("expected an application service with a git source");
  return (service.config as { git: { url: string; ref: { branch: string } | { commit: string }; rootDirectory: string } }).git;
}

/** The application configuration of a service the API returned. */
export function applicationOf<T extends { config: object }>(service: T) {
  gitOf(service);
  return service.config as Extract<T["config"], { git: unknown }>;
}
