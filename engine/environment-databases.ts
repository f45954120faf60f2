import { z } from "zod";
import type { EngineFiles } from "./engine-files";
import type { Snapshot } from "./protocol";
import { readJson, writeJsonAtomic } from "./runtime/shared/files";

/** Per DATABASE service id, its TCP port. */
const stored = z.record(z.string(), z.number().int());

/**
 * The TCP ports of an environment's DATABASE services, as this engine last deployed them
 * (environments/<id>/databases.json), with those of the snapshot. A service fenced off the
 * host's loopback (issue 13) must still reach every database of its environment, and a
 * deployment of an application alone (a push) carries none of them: the engine remembers them
 * from the deployments that did. Recorded whether the cluster fences or not, so that turning
 * the fence on later finds them.
 */
export async function environmentDatabasePorts(paths: EngineFiles, snapshot: Snapshot): Promise<number[]> {
  const file = paths.databasesFile(snapshot.environment.id);
  const known = (await readJson(file, stored)) ?? {};
  const before = JSON.stringify(known);
  for (const service of snapshot.services) {
    if (service.kind !== "DATABASE") continue;
    if (snapshot.action === "DELETE") delete known[service.id];
    else known[service.id] = service.config.connection.port;
  }
  if (JSON.stringify(known) !== before) await writeJsonAtomic(file, known, 0o600);
  return [...new Set(Object.values(known))].sort((a, b) => a - b);
}
