import { pidsListeningOn } from "../../engine/runtime/local/processes";

/**
 * The pid, as this host sees it, of the app listening on `port`. A sandboxed app knows only its
 * pid inside its own PID namespace (1 or 2), which names some other process out here.
 */
export function appPid(port: number | undefined): number {
  if (port === undefined) throw new Error("the service has no port");
  const [pid, ...more] = pidsListeningOn(port);
  if (pid === undefined) throw new Error(`nothing listens on port ${port}`);
  if (more.length > 0) throw new Error(`several processes listen on port ${port}: ${[pid, ...more].join(", ")}`);
  return pid;
}
