import { eq } from "drizzle-orm";
import picomatch from "picomatch";
import { z } from "zod";
import { recordAudit } from "../audit/record-audit";
import type { DomainContext } from "../context";
import { services, type GitTriggers } from "../db/schema";
import { getService } from "../services/services";

/** What a service without stored triggers does: deploy on every push to the branch it follows, ignore tags. */
export const defaultGitTriggers: GitTriggers = { autoDeploy: true, includePaths: [], excludePaths: [], followTags: false };

const glob = z.string().min(1).max(500);

export const setGitTriggersInput = z.object({
  serviceId: z.string().uuid(),
  autoDeploy: z.boolean(),
  /** Globs (picomatch) over repository paths: a push deploys only when a changed file matches one; empty means any file. */
  includePaths: z.array(glob).max(50).default([]),
  /** Globs of files whose changes alone never deploy (docs, tests …). */
  excludePaths: z.array(glob).max(50).default([]),
  /** Also deploy when a tag is pushed, at the tag's commit. */
  followTags: z.boolean().default(false),
});

export function triggersOf(service: { gitTriggers: GitTriggers | null }): GitTriggers {
  return service.gitTriggers ?? defaultGitTriggers;
}

export async function getGitTriggers(ctx: DomainContext, serviceId: string) {
  const service = await getService(ctx, serviceId);
  return { serviceId: service.id, ...triggersOf(service) };
}

export async function setGitTriggers(ctx: DomainContext, input: z.infer<typeof setGitTriggersInput>) {
  const service = await getService(ctx, input.serviceId);
  const triggers: GitTriggers = {
    autoDeploy: input.autoDeploy,
    includePaths: input.includePaths,
    excludePaths: input.excludePaths,
    followTags: input.followTags,
  };
  return ctx.db.transaction(async (tx) => {
    await tx.update(services).set({ gitTriggers: triggers }).where(eq(services.id, service.id));
    await recordAudit(tx, ctx.actor, {
      action: "service.git_triggers",
      targetType: "service",
      targetId: service.id,
      changes: { before: triggersOf(service), after: triggers },
    });
    return { serviceId: service.id, ...triggers };
  });
}

/**
 * Whether the changed files of a push concern the service: some file matches an include glob
 * (any file when there are none) and no exclude glob. Unknown files (the provider did not list
 * them, or listed only the first commits) deploy: missing a deploy is worse than an extra one.
 */
export function pathsAllow(triggers: GitTriggers, changedFiles: string[] | null): boolean {
  if (changedFiles === null || !hasPathFilters(triggers)) return true;
  const included = triggers.includePaths.length > 0 ? picomatch(triggers.includePaths, { dot: true }) : () => true;
  const excluded = triggers.excludePaths.length > 0 ? picomatch(triggers.excludePaths, { dot: true }) : () => false;
  return changedFiles.some((file) => included(file) && !excluded(file));
}

export function hasPathFilters(triggers: GitTriggers): boolean {
  return triggers.includePaths.length > 0 || triggers.excludePaths.length > 0;
}

/** A head commit whose message says `[skip deploy]` (any case) is not deployed. */
export function skipsDeploy(message: string | null): boolean {
  return message !== null && /\[skip deploy\]/i.test(message);
}
