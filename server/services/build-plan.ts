import { z } from "zod";
import { describePlan, detectBuildPlan, planOverrides } from "../../engine/runtime/build-plan";
import type { DomainContext } from "../context";
import { getEnvironment } from "../environments/environments";
import { AppError } from "../errors";
import { readRepositoryFacts } from "../git/read-repository";
import { assertRepositoryAllowed } from "../git/local-repositories";
import { cipherFor } from "../secrets/organization-cipher";
import { applicationConfigOf, jobConfigOf } from "./configs";
import { openGitCredentials } from "./git-credentials";
import { getService } from "./services";

export const buildPlanOutput = z.object({
  serviceId: z.string(),
  /**
   * detected: the plan below. undetected: the branch's files say nothing the engine can build
   * (`error` says why and what to set). unreadable: the control plane could not read the
   * repository (`error` says why); the engine still detects at build time and logs it.
   */
  status: z.enum(["detected", "undetected", "unreadable"]),
  /** The commit the plan was made from: the branch's last one now (null when unreadable). */
  commit: z.string().nullable(),
  error: z.string().nullable(),
  framework: z.string().nullable(),
  reasons: z.array(z.string()),
  /** Install and build commands in order, with where they run ("." the app's directory). */
  steps: z.array(z.object({ command: z.string(), directory: z.string() })),
  start: z.discriminatedUnion("type", [
    z.object({ type: z.literal("command"), command: z.string() }),
    z.object({ type: z.literal("static"), directory: z.string(), spa: z.boolean() }),
    z.object({ type: z.literal("none") }),
  ]),
  /**
   * The toolchains the app runs on: the version asked for and where the request came from (the
   * service's nodeVersion or pythonVersion, engines.node, .nvmrc, .python-version…), or null
   * for the engine's default.
   */
  toolchains: z.array(z.object({ name: z.enum(["Node", "Python"]), version: z.string().nullable(), source: z.string().nullable() })),
  /** The line the build log shows. */
  summary: z.string(),
});
export type BuildPlanView = z.infer<typeof buildPlanOutput>;

/**
 * The build plan a deployment of the service would follow now, for reading before deploying
 * (issue 14): the branch's last commit read from the control plane (git/read-repository.ts) and
 * the engine's own detection (engine/runtime/build-plan.ts) with the service's overrides. The
 * engine decides again at build time from its checkout, with the same code, and logs it.
 */
export async function serviceBuildPlan(ctx: DomainContext, serviceId: string): Promise<BuildPlanView> {
  const service = await getService(ctx, serviceId);
  const app = applicationConfigOf(service);
  const job = jobConfigOf(service);
  const built = app ? { kind: "APPLICATION" as const, config: app } : job ? { kind: "JOB" as const, config: job } : null;
  if (!built) throw new AppError("INVALID", `a ${service.kind} service is not built from a repository: it has no build plan`);
  const environment = await getEnvironment(ctx, service.environmentId);
  await assertRepositoryAllowed(ctx.db, environment.clusterId, built.config.git.url);
  const git = openGitCredentials(await cipherFor(ctx.db, ctx.keyring, ctx.actor.organizationId), built.config.git);
  const none = { framework: null, reasons: [], steps: [], start: { type: "none" as const }, toolchains: [] };
  const read = await readRepositoryFacts(ctx.repositoryCheck, git, git.credentials ?? null);
  if (!read.ok) return { serviceId, status: "unreadable", commit: null, error: read.reason, ...none, summary: read.reason };
  if (!read.facts) return { serviceId, status: "undetected", commit: read.commit, error: read.reason, ...none, summary: read.reason };
  const { commit, facts } = read;
  // Every setting the engine applies over detection, from the same list the engine reads, so the plan shown is the one built.
  const detected = detectBuildPlan(facts, planOverrides(built));
  if (!detected.ok) return { serviceId, status: "undetected", commit, error: detected.reason, ...none, summary: detected.reason };
  const { plan } = detected;
  return {
    serviceId,
    status: "detected",
    commit,
    error: null,
    framework: plan.framework,
    reasons: plan.reasons.filter(Boolean),
    steps: plan.steps.map((step) => ({ command: step.display, directory: step.cwd ?? "." })),
    start:
      plan.start.type === "static"
        ? { type: "static", directory: plan.start.directory, spa: plan.start.spa }
        : { type: "command", command: plan.start.display },
    toolchains: [
      ...(plan.node ? [{ name: "Node" as const, version: plan.node.stated?.spec ?? null, source: plan.node.stated?.source ?? null }] : []),
      ...(plan.python ? [{ name: "Python" as const, version: plan.python.version?.spec ?? null, source: plan.python.version?.source ?? null }] : []),
    ],
    summary: describePlan(plan),
  };
}
