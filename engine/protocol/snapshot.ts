import semver from "semver";
import { z } from "zod";
import { branchProblem, credentialsProblem, gitUrlProblem, parseGitUrl, repositoryPathProblem, SSH_KEY_MAX } from "./git-source";

/**
 * The snapshot: the full desired state a deployment carries, resolved variables included, so
 * the engine needs nothing else to do its work. Shared by the control plane (which renders it)
 * and the engine (which executes it).
 */

export const serviceKinds = ["APPLICATION", "CONTAINER", "DATABASE", "JOB"] as const;
export const serviceKind = z.enum(serviceKinds);
export type ServiceKind = z.infer<typeof serviceKind>;

export const environmentModes = ["PRODUCTION", "STAGING", "DEVELOPMENT", "PREVIEW"] as const;
export const environmentMode = z.enum(environmentModes);

export const deploymentActions = ["DEPLOY", "STOP", "RESTART", "DELETE"] as const;
export const deploymentAction = z.enum(deploymentActions);
export type DeploymentAction = z.infer<typeof deploymentAction>;

/** A DNS label: what service, environment and project names must be, since they form hostnames. */
export const dnsLabel = z
  .string()
  .min(1)
  .max(40)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "use lowercase letters, digits and inner hyphens");

/** Adds the message of a rule of git-source.ts as the value's issue. */
function rule(problem: (value: string) => string | null) {
  return (value: string, context: z.RefinementCtx) => {
    const message = problem(value);
    if (message) context.addIssue({ code: "custom", message });
  };
}

const relativePath = z.string().max(500).superRefine(rule(repositoryPathProblem));

/**
 * A git URL the engine may clone: https, http, ssh (URL or scp-like `user@host:path`) or git;
 * `file://` and absolute paths are local repositories, which the control plane and the engine
 * each allow only where they were told to (git-source.ts). An http(s) URL's `user:token@` is
 * accepted here and taken out of it by the control plane, to be kept as a secret.
 */
export const gitUrl = z.string().max(2000).superRefine(rule(gitUrlProblem));

/** A branch name git takes as a branch, and nothing it could read as an option (git-source.ts). */
export const gitBranch = z.string().superRefine(rule(branchProblem));

export const gitRef = z.union([z.object({ branch: gitBranch }), z.object({ commit: z.string().regex(/^[0-9a-f]{7,40}$/, "expected a commit hash") })]);

/**
 * A private repository's credentials: HTTP basic credentials of an http(s) repository (a token
 * alone is the username for GitHub, or the password beside `x-access-token` or `oauth2`), or the
 * deploy key of an ssh repository (an OpenSSH private key without a passphrase; its public half
 * is added to the repository). A secret, encrypted at rest by the control plane and shown as
 * "[secret]", plaintext only in the task handed to the engine, which gives it to git at clone
 * time and masks it in every line it reports. The key's format is checked where it is plaintext
 * (git-source.ts sshKeyProblem: when saved, and by the engine), not here: stored, it is sealed.
 */
export const gitCredentials = z.union([
  z.strictObject({ username: z.string().min(1).max(4096), password: z.string().max(4096) }),
  // Twice the longest key: sealed (in stored configs and snapshots), it is longer.
  z.strictObject({
    sshPrivateKey: z
      .string()
      .min(1)
      .max(2 * SSH_KEY_MAX),
  }),
]);

/** Where a service's code comes from. */
export const gitSource = z
  .object({
    url: gitUrl,
    /**
     * The branch to follow, or an exact commit. Absent: the repository's default branch (what its
     * HEAD names). The control plane records it when it checks the repository on saving; when it
     * did not (the check was skipped), the engine asks the remote at each deployment and says
     * which branch it cloned.
     */
    ref: gitRef.optional(),
    rootDirectory: relativePath.default(""),
    credentials: gitCredentials.optional(),
  })
  .superRefine((git, context) => {
    const parsed = parseGitUrl(git.url);
    if (!parsed.ok) return;
    if (git.credentials && parsed.value.credentials) {
      context.addIssue({ code: "custom", path: ["credentials"], message: "give the credentials in the URL or in credentials, not both" });
    }
    const kind = git.credentials && "sshPrivateKey" in git.credentials ? "deploy key" : "token";
    const problem = git.credentials || parsed.value.credentials ? credentialsProblem(parsed.value, kind) : null;
    if (problem) context.addIssue({ code: "custom", path: git.credentials ? ["credentials"] : ["url"], message: problem });
  });
export type GitSource = z.infer<typeof gitSource>;

/** An environment variable name, as build arguments and container environments need them. */
const variableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a variable name (letters, digits, underscores)")
  .max(200);

/**
 * Memory and CPU limits of a service's containers. Enforced by the container runtimes (`docker`);
 * the `local` runtime does not limit processes yet.
 */
export const resourceLimits = z.object({
  /** Hard memory limit; the kernel kills the container's process beyond it (no swap on top). Docker's minimum is 6 MiB. */
  memoryMb: z.number().int().min(6).max(1_048_576).optional(),
  /** CPUs the container may use, fractions allowed (0.5 = half a core). */
  cpus: z.number().min(0.01).max(256).optional(),
});
export type ResourceLimits = z.infer<typeof resourceLimits>;

/**
 * How an APPLICATION service is built into an image on container runtimes: a Dockerfile in the
 * repository. Paths follow Compose (https://docs.docker.com/reference/compose-file/build/):
 * `context` is relative to the service's root directory, `dockerfile` relative to the context.
 */
export const dockerBuildConfig = z.object({
  dockerfile: relativePath.default("Dockerfile"),
  context: relativePath.default(""),
  /** A stage of a multi-stage Dockerfile to stop at (`docker build --target`). */
  target: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "expected a stage name")
    .optional(),
  /** Names of the service's variables passed as build arguments (their values are part of the image's build inputs). */
  buildArgs: z.array(variableName).max(100).default([]),
});
export type DockerBuildConfig = z.infer<typeof dockerBuildConfig>;

/** The install step's command (dependencies), replacing the package manager's detected one; a shell command, as the build's. */
export const installCommand = z.string().max(2000).optional();

/** The Node an app runs on, as a semver range (`22`, `>=20 <23`): wins over engines.node, .nvmrc and the engine's default. */
export const nodeVersion = z
  .string()
  .max(200)
  .refine((text) => text.trim() !== "" && semver.validRange(text) !== null, "expected a Node version or semver range, such as 22 or >=20 <23")
  .optional();

/**
 * The Python an app runs on (`3.12`, `3.11.9`): wins over .python-version and runtime.txt. The
 * engine uses its host's interpreters (engine/runtime/toolchains/python.ts): one that matches must be installed there.
 */
export const pythonVersion = z
  .string()
  .max(50)
  .regex(/^3(\.\d+){0,2}$/, "expected a Python version such as 3.12 or 3.11.9")
  .optional();

/**
 * Sleep when idle (issue 16) of a service that serves through the router (an APPLICATION or a
 * CONTAINER): minutes without a request after which its release is stopped, to start again on
 * the next request; 0: never. Absent from a service's settings: its environment's default, which
 * the control plane resolves into the snapshot (absent there: never).
 */
export const sleepAfterMinutes = z.number().int().min(0).max(43_200).optional();

/** Configuration of an APPLICATION service: where its code is and how it is built and run. */
export const applicationConfig = z.object({
  git: gitSource,
  installCommand,
  buildCommand: z.string().max(2000).optional(),
  nodeVersion,
  pythonVersion,
  startCommand: z.string().max(2000).optional(),
  /** A static site's output directory (relative to the root directory), overriding the one detected; it is then served as a static site. */
  outputDirectory: relativePath.optional(),
  port: z.number().int().min(1).max(65535).optional(),
  healthCheckPath: z.string().max(500).regex(/^\//, "must start with /").optional(),
  instances: z.number().int().min(1).max(1).default(1),
  buildTimeoutSeconds: z.number().int().min(10).max(3600).default(900),
  healthCheckTimeoutSeconds: z.number().int().min(1).max(600).default(60),
  /** Dockerfile build settings, used on container runtimes (which build from `Dockerfile` at the root when this is absent). */
  docker: dockerBuildConfig.optional(),
  resources: resourceLimits.optional(),
  sleepAfterMinutes,
});
export type ApplicationConfig = z.infer<typeof applicationConfig>;

/** An image name as `docker pull` takes it, registry host included when not Docker Hub: `nginx`, `ghcr.io/acme/api`, `localhost/base`. */
export const imageName = z
  .string()
  .min(1)
  .max(255)
  .regex(
    /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/,
    "expected an image name such as nginx or ghcr.io/acme/api (lowercase, no tag)",
  );

/** Container restart policies (https://docs.docker.com/engine/containers/start-containers-automatically/). */
export const restartPolicies = ["no", "on-failure", "always", "unless-stopped"] as const;
export const restartPolicy = z.enum(restartPolicies);

/**
 * The registry an image is pulled from, as `docker pull` reads its name: the first component
 * when it looks like a host (a dot, a port, or `localhost`), else Docker Hub (`nginx`,
 * `user/app` → docker.io; `ghcr.io/x/y` → ghcr.io; `localhost:5000/x` → localhost:5000).
 * Registry credentials go to this host only. Docker's rule: splitDockerDomain in
 * https://github.com/distribution/reference/blob/main/normalize.go.
 */
export function registryHostOf(image: string): string {
  const slash = image.indexOf("/");
  const first = slash < 0 ? "" : image.slice(0, slash);
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : "docker.io";
}

/** Configuration of a CONTAINER service: an image that already exists, run as it is. */
export const containerConfig = z.object({
  image: z.object({
    name: imageName,
    tag: z
      .string()
      .max(128)
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, "expected an image tag")
      .default("latest"),
    /**
     * Registry credentials, used only to pull an image missing on the engine's host. The
     * password is a secret: encrypted at rest by the control plane, plaintext only in the task
     * handed to the engine, masked in every line the engine reports.
     */
    credentials: z.object({ username: z.string().min(1).max(255), password: z.string().min(1).max(4096) }).optional(),
  }),
  /** Replaces the image's command (argv, no shell). */
  command: z.array(z.string().max(4000)).min(1).max(100).optional(),
  /** The port the container listens on; by default the image's only exposed port, else 8080. `PORT` is set to it. */
  port: z.number().int().min(1).max(65535).optional(),
  healthCheckPath: z.string().max(500).regex(/^\//, "must start with /").optional(),
  healthCheckTimeoutSeconds: z.number().int().min(1).max(600).default(60),
  resources: resourceLimits.optional(),
  restartPolicy: restartPolicy.default("unless-stopped"),
  /**
   * The user the container runs as (`uid`, `uid:gid` or a name the image knows) instead of the
   * image's `USER`: runs an image built to start as root without root. As root, a container
   * keeps only a few capabilities (engine/runtime/docker/hardening.ts); as any other user, none.
   */
  user: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/, "expected a user: uid, uid:gid or a name")
    .optional(),
  /** The container's root file system is read-only, with a fresh tmpfs at /tmp: for images that write nowhere else. */
  readOnlyRootFilesystem: z.boolean().optional(),
  /** Asleep, the container is stopped, not removed: its files are there when the next request starts it again. */
  sleepAfterMinutes,
});
export type ContainerConfig = z.infer<typeof containerConfig>;

/** Database engines a DATABASE service may run; which of them a cluster runs, its engine reports. */
export const databaseEngines = ["postgresql", "redis"] as const;
export const databaseEngine = z.enum(databaseEngines);
export type DatabaseEngine = z.infer<typeof databaseEngine>;

/**
 * How applications reach a database. Generated by the control plane when the service is
 * created (anew for a clone), never set by users; the password is sealed at rest and in
 * stored snapshots, plaintext only in the task handed to the engine.
 */
export const databaseConnection = z.object({
  port: z.number().int().min(1024).max(65535),
  user: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/),
  password: z.string().min(1).max(4096),
  /** The database name (PostgreSQL), or number (Redis: 0). */
  database: z.string().regex(/^[a-z0-9_]{1,63}$/),
});
export type DatabaseConnection = z.infer<typeof databaseConnection>;

/** The prefix of the variables every service of an environment receives for one of its databases: SLIPWAY_<NAME> (hyphens as underscores). */
export function databaseVariablePrefix(serviceName: string): string {
  return `SLIPWAY_${serviceName.toUpperCase().replace(/-/g, "_")}`;
}

/** Configuration of a DATABASE service. */
export const databaseConfig = z.object({
  engine: databaseEngine,
  connection: databaseConnection,
  /**
   * A clone made with data: the database (a service on the same cluster) whose data the
   * clone's first deployment copies, once, into its own empty data directory.
   */
  copyDataFrom: z.object({ serviceId: z.string().uuid() }).optional(),
});
export type DatabaseConfig = z.infer<typeof databaseConfig>;

export const jobLifecycleEvents = ["start", "stop", "delete"] as const;
export const jobLifecycleEvent = z.enum(jobLifecycleEvents);
export type JobLifecycleEvent = z.infer<typeof jobLifecycleEvent>;

/**
 * When a JOB runs: on a cron schedule in a time zone (the engine keeps time, so jobs run while
 * the control plane is down), or when its environment starts (a deployment that includes it),
 * stops or is deleted.
 */
/**
 * What a cron JOB does about the scheduled times that passed while no engine ran it (the engine
 * was stopped, its host rebooted): "run-once" runs it once on the engine's return, "skip" only
 * records them. Either way the job's runtime state reports them (`missed`, protocol/messages.ts).
 */
export const missedRunPolicies = ["run-once", "skip"] as const;
export const missedRunPolicy = z.enum(missedRunPolicies);
export type MissedRunPolicy = z.infer<typeof missedRunPolicy>;

export const jobTrigger = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("cron"),
    /** Five or six fields (seconds first when six), as croner reads them. */
    schedule: z.string().min(9).max(200),
    timeZone: z.string().min(1).max(100).default("UTC"),
    /** Defaulted, so snapshots and job states written before the policy existed still parse. */
    missedRuns: missedRunPolicy.default("run-once"),
  }),
  z.object({ type: z.literal("lifecycle"), on: z.array(jobLifecycleEvent).min(1).max(3) }),
]);
export type JobTrigger = z.infer<typeof jobTrigger>;

/**
 * Configuration of a JOB service: code from git, built like an application, whose `command`
 * runs to completion. A run that fails or exceeds `timeoutSeconds` is retried `retries` times.
 * A run may write a JSON object of strings to `$SLIPWAY_OUTPUT_FILE`: those become variables of
 * the services deployed after it.
 */
export const jobConfig = z.object({
  git: gitSource,
  installCommand,
  buildCommand: z.string().max(2000).optional(),
  nodeVersion,
  pythonVersion,
  command: z.string().min(1).max(2000),
  trigger: jobTrigger,
  timeoutSeconds: z.number().int().min(1).max(86_400).default(600),
  retries: z.number().int().min(0).max(10).default(0),
  buildTimeoutSeconds: z.number().int().min(10).max(3600).default(900),
});
export type JobConfig = z.infer<typeof jobConfig>;

export const resolvedVariable = z.object({
  key: z.string(),
  value: z.string(),
  secret: z.boolean(),
});
export type ResolvedVariable = z.infer<typeof resolvedVariable>;

const serviceFields = {
  id: z.string().uuid(),
  name: dnsLabel,
  /** Variables after scope resolution, built-in ones included. */
  variables: z.array(resolvedVariable),
  /** Hostnames the router sends to this service. */
  domains: z.array(z.string()),
};

export const applicationServiceSpec = z.object({ ...serviceFields, kind: z.literal("APPLICATION"), config: applicationConfig });
export const containerServiceSpec = z.object({ ...serviceFields, kind: z.literal("CONTAINER"), config: containerConfig });

export const databaseServiceSpec = z.object({ ...serviceFields, kind: z.literal("DATABASE"), config: databaseConfig });
export const jobServiceSpec = z.object({ ...serviceFields, kind: z.literal("JOB"), config: jobConfig });

/** A service as the engine receives it; the kind decides the shape of its config. */
export const serviceSpec = z.discriminatedUnion("kind", [applicationServiceSpec, containerServiceSpec, databaseServiceSpec, jobServiceSpec]);
export type ServiceSpec = z.infer<typeof serviceSpec>;
export type ApplicationServiceSpec = z.infer<typeof applicationServiceSpec>;
export type ContainerServiceSpec = z.infer<typeof containerServiceSpec>;
export type DatabaseServiceSpec = z.infer<typeof databaseServiceSpec>;
export type JobServiceSpec = z.infer<typeof jobServiceSpec>;
/** The kinds of service whose code comes from git. */
export type GitServiceSpec = ApplicationServiceSpec | JobServiceSpec;

/** A stage's name (its place in the order is its position in the snapshot's list). */
export const stageName = dnsLabel;

/**
 * The implicit first stage of every environment: the services placed in no stage (all of them
 * until stages are added), and the one stage of a snapshot written before stages existed.
 */
export const DEFAULT_STAGE = "default";

/** The name of a stage a user adds: any stage name but the implicit one's. */
export const newStageName = stageName.refine((name) => name !== DEFAULT_STAGE, {
  message: `"${DEFAULT_STAGE}" is the stage of services placed in no other: pick another name`,
});

export const deploymentStage = z.object({ name: stageName, serviceIds: z.array(z.string().uuid()) });
export type DeploymentStage = z.infer<typeof deploymentStage>;

export const snapshot = z.object({
  version: z.literal(1),
  action: deploymentAction,
  organizationId: z.string().uuid(),
  project: z.object({ id: z.string().uuid(), name: z.string() }),
  environment: z.object({ id: z.string().uuid(), name: z.string(), mode: environmentMode }),
  cluster: z.object({ id: z.string().uuid(), domainSuffix: z.string() }),
  /** The services this deployment acts on, in the order the engine must act on them. */
  services: z.array(serviceSpec),
  /**
   * The deployment's stages, in the order the engine acts on them (issue 16): a stage starts
   * once the one before it is done, and not at all when it failed. Every service is in exactly
   * one. Optional: older snapshots have none, and then all their services form one stage.
   */
  stages: z.array(deploymentStage).optional(),
  /** Build without the build cache (`--no-cache`): nothing is restored, the fresh result is saved. Optional: older snapshots have none. */
  noCache: z.boolean().optional(),
});
export type Snapshot = z.infer<typeof snapshot>;
