import { describe, expect, it } from "vitest";
import type { ServiceSpec, Snapshot } from "../../engine/protocol/snapshot";
import { compareUrl } from "../git/compare-url";
import { deploymentChanges, previousDeployments, type ComparedDeployment } from "./changes";

const WEB = "00000000-0000-4000-8000-000000000001";
const DB = "00000000-0000-4000-8000-000000000002";
const CACHE = "00000000-0000-4000-8000-000000000003";
const [OLD_SHA, NEW_SHA] = ["1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"];

type Variables = ServiceSpec["variables"];

function web(overrides: { variables?: Variables; config?: Record<string, unknown>; git?: Record<string, unknown> } = {}): ServiceSpec {
  return {
    id: WEB,
    name: "web",
    kind: "APPLICATION",
    domains: [],
    variables: overrides.variables ?? [],
    config: {
      git: { url: "https://github.com/acme/shop.git", ref: { branch: "main" }, rootDirectory: "", ...overrides.git },
      instances: 1,
      buildTimeoutSeconds: 900,
      healthCheckTimeoutSeconds: 60,
      ...overrides.config,
    },
  } as ServiceSpec;
}

function database(password: string): ServiceSpec {
  return {
    id: DB,
    name: "db",
    kind: "DATABASE",
    domains: [],
    variables: [],
    config: { engine: "postgresql", connection: { port: 5500, user: "app", password, database: "app" } },
  };
}

function deployment(id: string, minute: number, services: ServiceSpec[], commits: Record<string, string> = {}): ComparedDeployment {
  const snapshot = { version: 1, action: "DEPLOY", services } as unknown as Snapshot;
  return { id, createdAt: new Date(Date.UTC(2026, 0, 1, 0, minute)), snapshot, commits };
}

const variable = (key: string, value: string, secret = false) => ({ key, value, secret });

describe("deploymentChanges", () => {
  it("gives the commit range with the provider's compare page", () => {
    const before = deployment("a", 1, [web()], { [WEB]: OLD_SHA });
    const now = deployment("b", 2, [web()], { [WEB]: NEW_SHA });
    const [changes] = deploymentChanges(now, new Map([[WEB, before]]));
    expect(changes).toMatchObject({
      serviceId: WEB,
      previousDeploymentId: "a",
      commits: { from: OLD_SHA, to: NEW_SHA, compareUrl: `https://github.com/acme/shop/compare/${OLD_SHA}...${NEW_SHA}` },
      config: [],
      variables: [],
    });
  });

  it("has no link when the commit did not change, and no range before the clone of a branch", () => {
    const before = deployment("a", 1, [web()], { [WEB]: OLD_SHA });
    const same = deploymentChanges(deployment("b", 2, [web()], { [WEB]: OLD_SHA }), new Map([[WEB, before]]))[0]!;
    expect(same.commits).toEqual({ from: OLD_SHA, to: OLD_SHA, compareUrl: null });
    const queued = deploymentChanges(deployment("c", 3, [web()]), new Map([[WEB, before]]))[0]!;
    expect(queued.commits).toEqual({ from: OLD_SHA, to: null, compareUrl: null });
  });

  it("names the variable keys added, removed and changed, never their values", () => {
    const before = deployment("a", 1, [
      web({ variables: [variable("GREETING", "hello"), variable("OLD", "x"), variable("API_KEY", "s3cret-one", true), variable("SAME", "1")] }),
    ]);
    const now = deployment("b", 2, [
      web({ variables: [variable("GREETING", "bonjour"), variable("NEW", "y"), variable("API_KEY", "s3cret-two", true), variable("SAME", "1")] }),
    ]);
    const [changes] = deploymentChanges(now, new Map([[WEB, before]]));
    expect(changes!.variables).toEqual([
      { key: "API_KEY", change: "changed", secret: true },
      { key: "GREETING", change: "changed", secret: false },
      { key: "NEW", change: "added", secret: false },
      { key: "OLD", change: "removed", secret: false },
    ]);
    const text = JSON.stringify(changes);
    for (const value of ["hello", "bonjour", "s3cret-one", "s3cret-two"]) expect(text).not.toContain(value);
  });

  it("ignores the deployment id every deployment has its own of", () => {
    const before = deployment("a", 1, [web({ variables: [variable("SLIPWAY_DEPLOYMENT_ID", "a")] })]);
    const now = deployment("b", 2, [web({ variables: [variable("SLIPWAY_DEPLOYMENT_ID", "b")] })]);
    expect(deploymentChanges(now, new Map([[WEB, before]]))[0]!.variables).toEqual([]);
  });

  it("gives configuration fields with old and new values, and says only 'changed' for credentials and passwords", () => {
    const before = deployment("a", 1, [
      web({ config: { startCommand: "node server.js", port: 3000 }, git: { credentials: { username: "x-access-token", password: "ghp_old" } } }),
      database("db-pass-1"),
    ]);
    const now = deployment("b", 2, [
      web({ config: { startCommand: "node main.js", healthCheckPath: "/health" }, git: { credentials: { username: "x-access-token", password: "ghp_new" } } }),
      database("db-pass-2"),
    ]);
    const [app, db] = deploymentChanges(
      now,
      new Map([
        [WEB, before],
        [DB, before],
      ]),
    );
    expect(app!.config).toEqual([
      { path: "git.credentials.password", change: "changed", secret: true, from: null, to: null },
      { path: "healthCheckPath", change: "added", secret: false, from: null, to: "/health" },
      { path: "port", change: "removed", secret: false, from: "3000", to: null },
      { path: "startCommand", change: "changed", secret: false, from: "node server.js", to: "node main.js" },
    ]);
    expect(db!.config).toEqual([{ path: "connection.password", change: "changed", secret: true, from: null, to: null }]);
    expect(db!.commits).toBeNull();
    const text = JSON.stringify([app, db]);
    for (const value of ["ghp_old", "ghp_new", "db-pass-1", "db-pass-2"]) expect(text).not.toContain(value);
  });

  it("shows a change of branch, but not a pin to a commit (the range says that)", () => {
    const before = deployment("a", 1, [web()], { [WEB]: OLD_SHA });
    const branch = deployment("b", 2, [web({ git: { ref: { branch: "release" } } })], { [WEB]: NEW_SHA });
    expect(deploymentChanges(branch, new Map([[WEB, before]]))[0]!.config).toEqual([
      { path: "git.ref.branch", change: "changed", secret: false, from: "main", to: "release" },
    ]);
    const pinned = deployment("c", 3, [web({ git: { ref: { commit: NEW_SHA } } })]);
    const changes = deploymentChanges(pinned, new Map([[WEB, before]]))[0]!;
    expect(changes.config).toEqual([]);
    // Before its clone, a pinned deployment's range already ends at its pin.
    expect(changes.commits).toMatchObject({ from: OLD_SHA, to: NEW_SHA });
  });

  it("says when there is nothing to compare with: a first deployment lists its configuration and keys as added", () => {
    const now = deployment("a", 1, [web({ variables: [variable("GREETING", "hi")] })], { [WEB]: NEW_SHA });
    const [changes] = deploymentChanges(now, new Map());
    expect(changes).toMatchObject({ previousDeploymentId: null, commits: { from: null, to: NEW_SHA, compareUrl: null } });
    expect(changes!.variables).toEqual([{ key: "GREETING", change: "added", secret: false }]);
    expect(changes!.config).toContainEqual({ path: "git.url", change: "added", secret: false, from: null, to: "https://github.com/acme/shop.git" });
  });
});

describe("previousDeployments", () => {
  it("compares each service with the newest earlier deployment that deployed it", () => {
    const all = deployment("all", 1, [web(), database("p")]);
    const webOnly = deployment("web-only", 2, [web()]);
    const other = { ...deployment("cache", 3, []), snapshot: { services: [{ id: CACHE }] } } as unknown as ComparedDeployment;
    const chosen = previousDeployments(deployment("now", 4, [web(), database("p")]), [other, all, webOnly]);
    expect(chosen.get(WEB)?.id).toBe("web-only");
    expect(chosen.get(DB)?.id).toBe("all");
  });
});

describe("compareUrl", () => {
  it("builds the compare page of known providers from an https URL", () => {
    expect(compareUrl("https://github.com/o/r.git", "a", "b")).toBe("https://github.com/o/r/compare/a...b");
    expect(compareUrl("https://gitlab.com/group/sub/r", "a", "b")).toBe("https://gitlab.com/group/sub/r/-/compare/a...b");
    expect(compareUrl("https://gitlab.example.com/g/r.git", "a", "b")).toBe("https://gitlab.example.com/g/r/-/compare/a...b");
    expect(compareUrl("https://bitbucket.org/team/r.git", "a", "b")).toBe("https://bitbucket.org/team/r/branches/compare/b%0Da");
    expect(compareUrl("https://codeberg.org/o/r.git", "a", "b")).toBe("https://codeberg.org/o/r/compare/a...b");
    expect(compareUrl("https://gitea.example.org/o/r", "a", "b")).toBe("https://gitea.example.org/o/r/compare/a...b");
  });

  it("gives no link for other hosts, other transports, or a URL without a repository path", () => {
    expect(compareUrl("https://git.example.com/o/r.git", "a", "b")).toBeNull();
    expect(compareUrl("http://127.0.0.1:9418/o/r.git", "a", "b")).toBeNull();
    expect(compareUrl("git@github.com:o/r.git", "a", "b")).toBeNull();
    expect(compareUrl("file:///srv/repos/r.git", "a", "b")).toBeNull();
    expect(compareUrl("https://github.com/o", "a", "b")).toBeNull();
  });
});
