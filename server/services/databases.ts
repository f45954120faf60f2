import { randomBytes } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { kubernetesObjectName } from "../../engine/protocol/kubernetes-names";
import { databaseEngine, type DatabaseConfig, type DatabaseEngine, databaseVariablePrefix } from "../../engine/protocol/snapshot";
import type { Executor } from "../db/client";
import { AppError } from "../errors";
import { environments, services } from "../db/schema";
import type { OrganizationCipher } from "../secrets/keyring";

/**
 * DATABASE services. Users choose the engine; Slipway generates the connection (a port on the
 * cluster, a user, a password, a database name), anew for every clone. The password is a
 * secret: sealed inside the config, hidden in answers and audit entries, opened only to render
 * a deployment's snapshot and the built-in variables of the environment's services.
 */
export const databaseInput = z.object({ engine: databaseEngine });

const CONTEXT = "database-password";
export const HIDDEN_DATABASE_PASSWORD = "[secret]";

/** Databases listen on the engine's host: ports are chosen in this range, one per database of a cluster. */
export const PORT_RANGE = { from: 20_000, to: 30_000 };

/** A PostgreSQL identifier from a service name (DNS labels allow hyphens and a leading digit). */
function identifierOf(name: string): string {
  const identifier = name.replace(/-/g, "_");
  return /^[a-z_]/.test(identifier) ? identifier : `db_${identifier}`;
}

/**
 * A port no other database of the cluster uses. The transaction holds a lock per cluster, so
 * two databases created at once cannot pick the same one.
 */
export async function allocateDatabasePort(tx: Executor, clusterId: string, reserved: ReadonlySet<number> = new Set()): Promise<number> {
  const [port] = await allocateDatabasePorts(tx, clusterId, 1, reserved);
  return port!;
}

/** `count` distinct ports at once (a clone's databases): one lock and one read for all of them. */
export async function allocateDatabasePorts(tx: Executor, clusterId: string, count: number, reserved: ReadonlySet<number> = new Set()): Promise<number[]> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`database-ports:${clusterId}`}))`);
  const rows = await tx
    .select({ port: sql<string>`${services.config}->'connection'->>'port'` })
    .from(services)
    .innerJoin(environments, eq(environments.id, services.environmentId))
    .where(and(eq(environments.clusterId, clusterId), eq(services.kind, "DATABASE")));
  const used = new Set([...reserved, ...rows.map((row) => Number(row.port))]);
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const port = freePort(used);
    used.add(port);
    ports.push(port);
  }
  return ports;
}

function freePort(used: ReadonlySet<number>): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (!used.has(port)) return port;
  }
  // A nearly full range: look at every port before saying none is left.
  for (let port = PORT_RANGE.from; port < PORT_RANGE.to; port++) if (!used.has(port)) return port;
  throw new AppError(
    "CONFLICT",
    `Every database port of this cluster (${PORT_RANGE.from} to ${PORT_RANGE.to - 1}) is taken: delete a database it no longer needs`,
  );
}

/** A new database's configuration, its password sealed. */
export function newDatabaseConfig(
  cipher: OrganizationCipher,
  input: { engine: DatabaseEngine; serviceName: string; port: number; copyDataFrom?: string },
): DatabaseConfig {
  const identifier = identifierOf(input.serviceName);
  return {
    engine: input.engine,
    connection: {
      port: input.port,
      user: input.engine === "redis" ? "default" : identifier,
      password: cipher.encrypt(randomBytes(24).toString("base64url"), CONTEXT),
      database: input.engine === "redis" ? "0" : identifier,
    },
    ...(input.copyDataFrom ? { copyDataFrom: { serviceId: input.copyDataFrom } } : {}),
  };
}

const withPassword = (config: DatabaseConfig, password: (current: string) => string): DatabaseConfig => ({
  ...config,
  connection: { ...config.connection, password: password(config.connection.password) },
});
export const openDatabasePassword = (cipher: OrganizationCipher, config: DatabaseConfig) => withPassword(config, (sealed) => cipher.decrypt(sealed, CONTEXT));
/** For answers and audit entries. */
export const hideDatabasePassword = (config: DatabaseConfig) => withPassword(config, () => HIDDEN_DATABASE_PASSWORD);

/**
 * Where a database is reached from the services of its environment: the engine's host on
 * `local` and `docker` clusters; on `kubernetes` ones, its Service, in the environment's own
 * namespace (issue 18).
 */
function databaseHost(clusterKind: string, serviceName: string): string {
  return clusterKind === "kubernetes" ? kubernetesObjectName(serviceName) : "127.0.0.1";
}

export type DatabaseVariables = { values: Record<string, string>; secretKeys: Set<string> };

/**
 * The built-in variables every service of an environment receives for each of its databases:
 * SLIPWAY_<NAME>_URL, _HOST, _PORT, _USER, _PASSWORD and _DATABASE (NAME: the service's name in
 * capitals, hyphens as underscores). The URL and the password are secrets.
 */
export async function databaseVariables(db: Executor, cipher: OrganizationCipher, environmentId: string, clusterKind: string): Promise<DatabaseVariables> {
  const rows = await db
    .select({ name: services.name, kind: services.kind, config: services.config })
    .from(services)
    .where(and(eq(services.environmentId, environmentId), eq(services.kind, "DATABASE")));
  return databaseVariablesOf(cipher, rows, clusterKind);
}

/** {@link databaseVariables} of an environment whose services the caller has read already (a deployment's snapshot). */
export function databaseVariablesOf(
  cipher: OrganizationCipher,
  environmentServices: Pick<typeof services.$inferSelect, "name" | "kind" | "config">[],
  clusterKind: string,
): DatabaseVariables {
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  for (const row of environmentServices.filter((service) => service.kind === "DATABASE")) {
    const { engine, connection } = openDatabasePassword(cipher, row.config as DatabaseConfig);
    const prefix = databaseVariablePrefix(row.name);
    const password = encodeURIComponent(connection.password);
    const host = databaseHost(clusterKind, row.name);
    const url =
      engine === "redis"
        ? `redis://${connection.user}:${password}@${host}:${connection.port}/${connection.database}`
        : `postgresql://${connection.user}:${password}@${host}:${connection.port}/${connection.database}`;
    Object.assign(values, {
      [`${prefix}_URL`]: url,
      [`${prefix}_HOST`]: host,
      [`${prefix}_PORT`]: String(connection.port),
      [`${prefix}_USER`]: connection.user,
      [`${prefix}_PASSWORD`]: connection.password,
      [`${prefix}_DATABASE`]: connection.database,
    });
    secretKeys.add(`${prefix}_URL`).add(`${prefix}_PASSWORD`);
  }
  return { values, secretKeys };
}
