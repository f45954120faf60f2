import { and, eq, inArray, or, sql } from "drizzle-orm";
import { mapCredentials } from "../../engine/protocol/git-source";
import { serviceSpec, type ApplicationConfig, type GitSource, type Snapshot } from "../../engine/protocol/snapshot";
import type { DeploymentAction } from "../../engine/protocol/snapshot";
import { stepsOf } from "../../engine/protocol/steps";
import type { Executor } from "../db/client";
import { preparedOnce } from "../db/prepared";
import { clusters, deploymentStages, environments, organizations, projects, services, variables } from "../db/schema";
import { notFound } from "../errors";
import type { OrganizationCipher } from "../secrets/keyring";
import { applicationConfigOf, containerConfigOf, databaseConfigOf, jobConfigOf } from "../services/configs";
import { databaseVariablesOf, openDatabasePassword } from "../services/databases";
import { isLocalRepository, localRepositoryRefused } from "../git/local-repositories";
import { openGitCredentials } from "../services/git-credentials";
import { openRegistryPassword } from "../services/registry-credentials";
import { serviceDomain } from "../services/domains";
import { builtInVariables, resolveVariables } from "../variables/resolve";
import { environmentVariableScopes, variableContext } from "../variables/variables";
import { deploymentStagesOf } from "../environments/stages";

type ServiceRow = typeof services.$inferSelect;

export function snapshotContext(deploymentId: string): string {
  return `snapshot:${deploymentId}`;
}

/** Where a deployment goes: its environment, with its project and cluster. */
export type SnapshotPlace = Awaited<ReturnType<typeof lockSnapshotPlace>>;

/**
 * Locks the environment's row for the transaction (requests for one environment are serialised
 * by it) and reads what a snapshot needs of it, its project and its cluster, with the
 * organization's wrapped data key (see unwrapCipher), in one statement: a deployment request is
 * on the path of every dispatch. Only an environment of the organization.
 */
export async function lockSnapshotPlace(tx: Executor, organizationId: string, environmentId: string) {
  const [row] = await snapshotStatements(tx).place.execute({ organizationId, environmentId });
  if (!row) throw notFound("Environment");
  return row;
}

/** What a snapshot is rendered from besides its place: the environment's services, their stages, and variables. */
export type SnapshotInputs = Awaited<ReturnType<typeof readSnapshotInputs>>;

/**
 * The environment's services, each with its stage, and the variables of its project, of itself
 * and of its services: two statements, side by side when `db` is the pool (each on a connection
 * of its own; a transaction's one connection would run them one after the other). Services and
 * their stages come in one statement, so that they agree (a service is never in a stage the
 * read does not see). Variables are looked up by scope and target, the leading columns of their
 * unique index. Empty for an environment of another organization.
 */
export async function readSnapshotInputs(db: Executor, organizationId: string, environmentId: string) {
  const statements = snapshotStatements(db);
  const [rows, stored] = await Promise.all([
    statements.services.execute({ organizationId, environmentId }),
    statements.variables.execute({ organizationId, environmentId }),
  ]);
  const stages = new Map(rows.flatMap(({ stage }) => (stage ? [[stage.id, stage] as const] : [])));
  return { services: rows.map(({ service }) => service), stages: [...stages.values()], variables: stored };
}

/** The statements of every deployment request (see preparedOnce): each is on the path of every dispatch. */
const snapshotStatements = preparedOnce((db) => {
  const organizationId = sql.placeholder("organizationId");
  const environmentId = sql.placeholder("environmentId");
  const projectOf = db.select({ id: environments.projectId }).from(environments).where(eq(environments.id, environmentId));
  return {
    place: db
      .select({ environment: environments, project: projects, cluster: clusters, wrappedDataKey: organizations.wrappedDataKey })
      .from(environments)
      .innerJoin(projects, eq(projects.id, environments.projectId))
      .innerJoin(clusters, eq(clusters.id, environments.clusterId))
      .innerJoin(organizations, eq(organizations.id, environments.organizationId))
      .where(and(eq(environments.id, environmentId), eq(environments.organizationId, organizationId)))
      .for("update", { of: environments })
      .prepare("snapshot_place"),
    services: db
      .select({ service: services, stage: deploymentStages })
      .from(services)
      .leftJoin(deploymentStages, eq(deploymentStages.id, services.stageId))
      .where(and(eq(services.environmentId, environmentId), eq(services.organizationId, organizationId)))
      .prepare("snapshot_services"),
    variables: db
      .select()
      .from(variables)
      .where(
        and(
          eq(variables.organizationId, organizationId),
          or(and(eq(variables.scope, "PROJECT"), inArray(variables.targetId, projectOf)), ...environmentVariableScopes(db, organizationId, environmentId)),
        ),
      )
      .prepare("snapshot_variables"),
  };
});

/**
 * Renders the full desired state of a deployment from what the caller read (the place under its
 * lock, the inputs). Every variable value in the stored snapshot is sealed with the
 * organization's data key under the deployment's id: the plaintext exists only in the task
 * handed to the engine of the environment's cluster (see openSnapshot).
 */
export function renderSnapshot(
  cipher: OrganizationCipher,
  place: SnapshotPlace,
  inputs: SnapshotInputs,
  input: {
    deploymentId: string;
    action: DeploymentAction;
    /** The services deployed: some or all of the inputs'. */
    services: ServiceRow[];
    /** Per service id, the git ref deployed instead of the configured one (a webhook's exact commit). */
    refs?: Record<string, ApplicationConfig["git"]["ref"]>;
    /** Builds without the build cache (engine/protocol/snapshot.ts). */
    noCache?: boolean;
  },
): Snapshot {
  const { environment, project, cluster } = place;

  // Only the variables the deployed services receive are opened.
  const deployed = new Set(input.services.map((s) => s.id));
  const stored = inputs.variables.filter((v) => v.scope !== "SERVICE" || deployed.has(v.targetId));
  const plain = stored.map((v) => ({ ...v, value: cipher.decrypt(v.encryptedValue, variableContext(v.scope, v.targetId, v.key)) }));
  const seal = (value: string) => cipher.encrypt(value, snapshotContext(input.deploymentId));
  // A service that serves through the router and says nothing of sleep follows its environment's default (an environment's schedule stops it regardless).
  const withSleepDefault = <C extends { sleepAfterMinutes?: number | undefined }>(config: C): C => {
    const sleepAfterMinutes = config.sleepAfterMinutes ?? environment.sleepAfterMinutes ?? undefined;
    return sleepAfterMinutes ? { ...config, sleepAfterMinutes } : config;
  };
  // Every service of the environment reaches every database of it, deployed now or not.
  const databases = databaseVariablesOf(cipher, inputs.services, cluster.kind);

  // Only a DEPLOY clones (engine/protocol/steps.ts): the plan of a kind built from git says so.
  const clones = stepsOf(input.action, "APPLICATION").includes("clone");

  // Stage by stage, and by kind inside a stage (server/environments/stages.ts); the engine runs them in this order.
  const ordered = deploymentStagesOf(inputs.stages, input.services, input.action);
  const specs = ordered.services.map((service) => {
    const domain = serviceDomain(service.name, environment.name, project.name, cluster.domainSuffix);
    const builtIn = builtInVariables({
      project: project.name,
      environment: environment.name,
      mode: environment.mode,
      service: service.name,
      serviceId: service.id,
      domain,
      deploymentId: input.deploymentId,
    });
    const resolved = resolveVariables(
      plain,
      { projectId: project.id, environmentId: environment.id, serviceId: service.id },
      { ...builtIn, ...databases.values },
      databases.secretKeys,
    );
    const common = {
      id: service.id,
      name: service.name,
      variables: resolved.map(({ key, value, secret }) => ({ key, value: seal(value), secret })),
      // Only what serves HTTP gets a route.
      domains: service.kind === "APPLICATION" || service.kind === "CONTAINER" ? [domain] : [],
    };
    const container = containerConfigOf(service);
    if (container) {
      // The registry password travels like a secret variable: sealed for this deployment.
      const password = container.image.credentials && openRegistryPassword(cipher, container).image.credentials!.password;
      const config = password
        ? { ...container, image: { ...container.image, credentials: { ...container.image.credentials!, password: seal(password) } } }
        : container;
      return serviceSpec.parse({ ...common, kind: "CONTAINER", config: withSleepDefault(config) });
    }
    const database = databaseConfigOf(service);
    if (database) {
      // The database's password travels like the registry password: sealed for this deployment.
      const { connection } = openDatabasePassword(cipher, database);
      return serviceSpec.parse({ ...common, kind: "DATABASE", config: { ...database, connection: { ...connection, password: seal(connection.password) } } });
    }
    // The repository's credentials travel like the registry password: sealed for this deployment.
    const forEngine = <C extends { git: GitSource }>(config: C): C => {
      const git = openGitCredentials(cipher, config.git);
      // Checked at every deployment that clones too: an ADMIN may have disallowed local repositories
      // since the service was saved. A STOP, RESTART or DELETE reads no repository, and must not
      // be refused for it: a service that can no longer be built can still be deleted.
      if (clones && isLocalRepository(git.url) && !cluster.allowLocalRepositories) throw localRepositoryRefused(cluster.name, git.url);
      const credentials = git.credentials && mapCredentials(git.credentials, seal);
      return withRef({ ...config, git: credentials ? { ...git, credentials } : git }, input.refs?.[service.id]);
    };
    const job = jobConfigOf(service);
    if (job) return serviceSpec.parse({ ...common, kind: "JOB", config: forEngine(job) });
    return serviceSpec.parse({ ...common, kind: "APPLICATION", config: forEngine(withSleepDefault(applicationConfigOf(service)!)) });
  });

  return {
    version: 1,
    action: input.action,
    organizationId: environment.organizationId,
    project: { id: project.id, name: project.name },
    environment: { id: environment.id, name: environment.name, mode: environment.mode },
    cluster: { id: cluster.id, domainSuffix: cluster.domainSuffix },
    services: specs,
    stages: ordered.stages,
    ...(input.noCache ? { noCache: true } : {}),
  };
}

function withRef<C extends { git: ApplicationConfig["git"] }>(config: C, ref: ApplicationConfig["git"]["ref"] | undefined): C {
  return ref ? { ...config, git: { ...config.git, ref } } : config;
}

/** The snapshot with plaintext values, for the engine of the deployment's cluster only. */
export function openSnapshot(cipher: OrganizationCipher, deploymentId: string, stored: Snapshot): Snapshot {
  const context = snapshotContext(deploymentId);
  return mapSealed(stored, (sealed) => cipher.decrypt(sealed, context));
}

/**
 * A stored snapshot sealed again for another deployment (a rollback redeploys an earlier one as
 * it was): every sealed value is opened under the old deployment's context and sealed under the
 * new one's, and the deployment id the services see is the new one.
 */
export function resealSnapshot(cipher: OrganizationCipher, from: string, to: string, stored: Snapshot): Snapshot {
  const [fromContext, toContext] = [snapshotContext(from), snapshotContext(to)];
  const resealed = mapSealed(stored, (sealed) => cipher.encrypt(cipher.decrypt(sealed, fromContext), toContext));
  const deploymentId = cipher.encrypt(to, toContext);
  return {
    ...resealed,
    services: resealed.services.map((service) => ({
      ...service,
      variables: service.variables.map((variable) => (variable.key === "SLIPWAY_DEPLOYMENT_ID" ? { ...variable, value: deploymentId } : variable)),
    })),
  };
}

/** The snapshot with `map` applied to every sealed value: variables, database and registry passwords, repository credentials. */
function mapSealed(stored: Snapshot, map: (sealed: string) => string): Snapshot {
  const mapGit = <C extends { git: GitSource }>(config: C): C => {
    const credentials = config.git.credentials;
    return credentials ? { ...config, git: { ...config.git, credentials: mapCredentials(credentials, map) } } : config;
  };
  return {
    ...stored,
    services: stored.services.map((service) => {
      const variables = service.variables.map((variable) => ({ ...variable, value: map(variable.value) }));
      if (service.kind === "DATABASE") {
        return {
          ...service,
          variables,
          config: { ...service.config, connection: { ...service.config.connection, password: map(service.config.connection.password) } },
        };
      }
      if (service.kind === "APPLICATION") return { ...service, variables, config: mapGit(service.config) };
      if (service.kind === "JOB") return { ...service, variables, config: mapGit(service.config) };
      if (service.kind !== "CONTAINER" || !service.config.image.credentials) return { ...service, variables };
      const credentials = { ...service.config.image.credentials, password: map(service.config.image.credentials.password) };
      return { ...service, variables, config: { ...service.config, image: { ...service.config.image, credentials } } };
    }),
  };
}
