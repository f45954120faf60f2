import type { ServiceKind, ServiceSpec, Snapshot } from "../../engine/protocol/snapshot";
import { compareUrl } from "../git/compare-url";

/**
 * What a deployment changes, per service, since the last successful DEPLOY that deployed that
 * service before it (issue 15, item 2): the commit range, the configuration fields and the
 * variable keys added, removed or changed. Pure: the caller opens the two snapshots' sealed
 * values, so that a secret's change can be seen; what comes out never holds a variable's value
 * nor any secret material of the configuration (credentials, passwords): those say "changed".
 */

/** One side of the comparison: a deployment with its snapshot opened (plaintext values). */
export type ComparedDeployment = { id: string; createdAt: Date; snapshot: Snapshot; commits: Record<string, string> };

export type Change = "added" | "removed" | "changed";

export type ConfigChange = {
  /** Dotted path in the service's configuration: `startCommand`, `git.ref.branch`, `image.tag`. */
  path: string;
  change: Change;
  /** Secret material (credentials, passwords): its values are never given. */
  secret: boolean;
  /** The values as text (JSON for non-strings); null when absent on that side or secret. */
  from: string | null;
  to: string | null;
};

export type VariableChange = { key: string; change: Change; secret: boolean };

export type CommitRange = {
  /** What the previous deployment ran; null on a first deployment. */
  from: string | null;
  /** What this deployment runs: the commit its clone resolved, or its pin before the clone; null until known. */
  to: string | null;
  /** The provider's compare page, when the repository is on a known host and both ends differ. */
  compareUrl: string | null;
};

export type ServiceChanges = {
  serviceId: string;
  name: string;
  kind: ServiceKind;
  /** The deployment compared against; null when none deployed this service successfully before. */
  previousDeploymentId: string | null;
  /** Null for kinds not built from git. */
  commits: CommitRange | null;
  config: ConfigChange[];
  variables: VariableChange[];
};

/** Differs on every deployment by design: comparing it would say nothing. */
const PER_DEPLOYMENT_VARIABLES = new Set(["SLIPWAY_DEPLOYMENT_ID"]);

/**
 * For each service of `current`, the deployment to compare it with: the newest of `earlier`
 * (successful DEPLOYs of the same environment created before it) that deployed that service.
 * A deployment of some services only is thus compared service by service with what last ran.
 */
export function previousDeployments<D extends Pick<ComparedDeployment, "createdAt"> & { snapshot: Pick<Snapshot, "services"> }>(
  current: { snapshot: Pick<Snapshot, "services"> },
  earlier: readonly D[],
): Map<string, D> {
  const newestFirst = [...earlier].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const chosen = new Map<string, D>();
  for (const service of current.snapshot.services) {
    const previous = newestFirst.find((deployment) => deployment.snapshot.services.some((s) => s.id === service.id));
    if (previous) chosen.set(service.id, previous);
  }
  return chosen;
}

/** The changes of every service `current` deploys, against the deployment chosen for it (by service id). */
export function deploymentChanges(current: ComparedDeployment, previous: ReadonlyMap<string, ComparedDeployment>): ServiceChanges[] {
  return current.snapshot.services.map((service) => serviceChanges(service, current, previous.get(service.id) ?? null));
}

function serviceChanges(service: ServiceSpec, current: ComparedDeployment, candidate: ComparedDeployment | null): ServiceChanges {
  const old = candidate?.snapshot.services.find((s) => s.id === service.id) ?? null;
  // A deployment that did not deploy this service is nothing to compare it with.
  const previous = old ? candidate : null;
  return {
    serviceId: service.id,
    name: service.name,
    kind: service.kind,
    previousDeploymentId: previous?.id ?? null,
    commits: commitRange(service, current, previous),
    config: configChanges(old, service),
    variables: variableChanges(old?.variables ?? [], service.variables),
  };
}

function commitRange(service: ServiceSpec, current: ComparedDeployment, previous: ComparedDeployment | null): CommitRange | null {
  if (service.kind !== "APPLICATION" && service.kind !== "JOB") return null;
  const ref = service.config.git.ref;
  const to = current.commits[service.id] ?? (ref && "commit" in ref ? ref.commit : null);
  const from = previous?.commits[service.id] ?? null;
  const link = from && to && from !== to ? compareUrl(service.config.git.url, from, to) : null;
  return { from, to, compareUrl: link };
}

/**
 * The configuration fields that differ. A ref pinned to a commit (a push, a rollback, a
 * promotion) is a choice of the deployment, not of the configuration, and hides the branch the
 * service follows: when either side is pinned, the ref is left out and the commit range says it.
 */
function configChanges(before: ServiceSpec | null, after: ServiceSpec): ConfigChange[] {
  const dropRef = isPinned(before) || isPinned(after);
  const [old, now] = [before ? flatten(before.config) : new Map<string, string>(), flatten(after.config)];
  const paths = [...new Set([...old.keys(), ...now.keys()])].filter((path) => !(dropRef && path.startsWith("git.ref."))).sort();
  const changes: ConfigChange[] = [];
  for (const path of paths) {
    const [a, b] = [old.get(path), now.get(path)];
    if (a === b) continue;
    const change: Change = a === undefined ? "added" : b === undefined ? "removed" : "changed";
    const secret = isSecretPath(path);
    changes.push({ path, change, secret, from: secret || a === undefined ? null : a, to: secret || b === undefined ? null : b });
  }
  return changes;
}

function isPinned(service: ServiceSpec | null): boolean {
  if (!service || (service.kind !== "APPLICATION" && service.kind !== "JOB")) return false;
  const ref = service.config.git.ref;
  return !!ref && "commit" in ref;
}

/** Credentials (of a repository or a registry) and passwords (of a database) are secret material. */
function isSecretPath(path: string): boolean {
  const segments = path.split(".");
  return segments.includes("credentials") || segments.at(-1) === "password";
}

/** Leaf values by dotted path, as text; arrays are one value (a command's argv reads as one). */
function flatten(value: object, prefix = "", into = new Map<string, string>()): Map<string, string> {
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined) continue;
    const path = prefix ? `${prefix}.${key}` : key;
    if (child !== null && typeof child === "object" && !Array.isArray(child)) flatten(child as Record<string, unknown>, path, into);
    else into.set(path, typeof child === "string" ? child : JSON.stringify(child));
  }
  return into;
}

function variableChanges(before: ServiceSpec["variables"], after: ServiceSpec["variables"]): VariableChange[] {
  const old = new Map(before.map((variable) => [variable.key, variable]));
  const now = new Map(after.map((variable) => [variable.key, variable]));
  const keys = [...new Set([...old.keys(), ...now.keys()])].filter((key) => !PER_DEPLOYMENT_VARIABLES.has(key)).sort();
  const changes: VariableChange[] = [];
  for (const key of keys) {
    const [a, b] = [old.get(key), now.get(key)];
    const secret = (a?.secret ?? false) || (b?.secret ?? false);
    if (!a) changes.push({ key, change: "added", secret });
    else if (!b) changes.push({ key, change: "removed", secret });
    else if (a.value !== b.value || a.secret !== b.secret) changes.push({ key, change: "changed", secret });
  }
  return changes;
}
