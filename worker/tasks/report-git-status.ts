import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { gitStatusKey, reportPreviewStatus } from "../../server/webhooks/previews";
import { taskCatalog } from "../../server/jobs/catalog";

/** How often a running preview deployment is checked, and for how long at most. */
const CHECK_EVERY_MS = 2_000;
const GIVE_UP_AFTER_MS = 2 * 3600 * 1000;

/**
 * Reports a preview's deployment to the git provider: a pending commit status when it is
 * requested, then the final status and the pull request comment when it ends. It checks again
 * by re-adding itself (one job per preview, by job key: a newer deployment replaces it; one queue
 * per preview, so its reports run one after the other).
 */
export function reportGitStatus(services: Services): Task {
  return async (payload, helpers) => {
    const input = taskCatalog.report_git_status.parse(payload);
    const since = input.since ?? Date.now();
    const result = await reportPreviewStatus(services, input);
    if (result === "wait" && Date.now() - since < GIVE_UP_AFTER_MS) {
      await helpers.addJob(
        "report_git_status",
        { ...input, stage: "final", since },
        { jobKey: gitStatusKey(input.previewId), queueName: gitStatusKey(input.previewId), runAt: new Date(Date.now() + CHECK_EVERY_MS), maxAttempts: 5 },
      );
    }
  };
}
