import { z } from "zod";

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

const relativePath = z
  .string()
  .max(500)
  .refine((value) => !value.startsWith("/") && !value.split("/").includes(".."), "must be a path inside the repository");

/** A git URL the engine may clone: http(s), ssh (URL or scp-like `user@host:path`) or file. */
export const gitUrl = z
  .string()
  .min(1)
  .max(2000)
  .refine(
    (value) => /^(https?|ssh|git|file):\/\//.test(value) || /^[\w.-]+@[\w.-]+:[^\s]+$/.test(value),
    "expected an http(s), ssh, git or file URL",
  )
  .refine((value) => !value.startsWith("-"), "must not start with '-'");

export const gitRef = z.union([
  z.object({ branch: z.string().min(1).max(250).regex(/^[^\s~^:?*[\\-][^\s~^:?*[\\]*$/, "invalid branch name") }),
  z.object({ commit: z.string().regex(/^[0-9a-f]{7,40}$/, "expected a commit hash") }),
]);

/** Configuration of an APPLICATION service: where its code is and how it is built and run. */
export const applicationConfig = z.object({
  git: z.object({
    url: gitUrl,
    ref: gitRef.default({ branch: "main" }),
    rootDirectory: relativePath.default(""),
  }),
  buildCommand: z.string().max(2000).optional(),
  startCommand: z.string().max(2000).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  healthCheckPath: z
    .string()
    .max(500)
    .regex(/^\//, "must start with /")
    .optional(),
  instances: z.number().int().min(1).max(1).default(1),
  buildTimeoutSeconds: z.number().int().min(10).max(3600).default(900),
  healthCheckTimeoutSeconds: z.number().int().min(1).max(600).default(60),
});
export type ApplicationConfig = z.infer<typeof applicationConfig>;

export const resolvedVariable = z.object({
  key: z.string(),
  value: z.string(),
  secret: z.boolean(),
});
export type ResolvedVariable = z.infer<typeof resolvedVariable>;

export const serviceSpec = z.object({
  id: z.string().uuid(),
  name: dnsLabel,
  kind: serviceKind,
  config: applicationConfig,
  /** Variables after scope resolution, built-in ones included. */
  variables: z.array(resolvedVariable),
  /** Hostnames the router sends to this service. */
  domains: z.array(z.string()),
});
export type ServiceSpec = z.infer<typeof serviceSpec>;

export const snapshot = z.object({
  version: z.literal(1),
  action: deploymentAction,
  organizationId: z.string().uuid(),
  project: z.object({ id: z.string().uuid(), name: z.string() }),
  environment: z.object({ id: z.string().uuid(), name: z.string(), mode: environmentMode }),
  cluster: z.object({ id: z.string().uuid(), domainSuffix: z.string() }),
  /** The services this deployment acts on, in the order the engine must act on them. */
  services: z.array(serviceSpec),
});
export type Snapshot = z.infer<typeof snapshot>;
