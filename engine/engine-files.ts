import path from "node:path";
import { z } from "zod";

/**
 * What the engine keeps under its home whatever its runtime (each runtime keeps its own files
 * beside these: engine/runtime/local/layout.ts, engine/runtime/docker/state.ts):
 *   deployments/<deploymentId>.json            a finished deployment's outcome
 *   environments/<environmentId>/outputs.json  outputs of the environment's lifecycle jobs
 *   environments/<environmentId>/databases.json the ports of its DATABASE services (engine/environment-databases.ts)
 *   outbox/journal.jsonl                       events and log lines not yet stored by the control plane (engine/outbox.ts)
 *   ssh/known_hosts                            host keys of repositories cloned with a deploy key (engine/runtime/shared/git.ts)
 */
export function engineFiles(home: string) {
  return {
    deploymentsDir: path.join(home, "deployments"),
    deploymentFile: (deploymentId: string) => path.join(home, "deployments", `${deploymentId}.json`),
    outputsFile: (environmentId: string) => path.join(home, "environments", environmentId, "outputs.json"),
    databasesFile: (environmentId: string) => path.join(home, "environments", environmentId, "databases.json"),
    outboxDir: path.join(home, "outbox"),
    sshKnownHostsFile: path.join(home, "ssh", "known_hosts"),
  };
}
export type EngineFiles = ReturnType<typeof engineFiles>;

export const deploymentOutcome = z.object({
  deploymentId: z.string(),
  status: z.enum(["succeeded", "failed", "canceled"]),
  message: z.string(),
  finishedAt: z.string(),
  /**
   * The seq of the deployment's last event, which says this outcome: a re-delivered task reports
   * the same event again, stored once. (Optional: outcomes written by older engines have none.)
   */
  seq: z.number().int().nonnegative().optional(),
});
export type DeploymentOutcome = z.infer<typeof deploymentOutcome>;
