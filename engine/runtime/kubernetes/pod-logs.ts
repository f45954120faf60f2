import { Writable } from "node:stream";
import type { V1Pod } from "@kubernetes/client-node";
import type pino from "pino";
import type { ServiceLog } from "../runtime";
import type { KubeApi, Stream } from "./kube-api";
import { LABEL } from "./labels";
import { observe, type ObserveOptions } from "./observe";

/** A container's log being followed; `since`: the time of its last line, where a new follow starts. */
type Following = { active: boolean; stream: Stream | null; since?: string };

/** A Writable that hands over complete lines. */
export function lineWriter(onLine: (line: string) => void): Writable {
  let rest = "";
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const lines = (rest + chunk.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) onLine(line.replace(/\r$/, ""));
      callback();
    },
    final(callback) {
      if (rest) onLine(rest);
      callback();
    },
  });
}

/** The last `count` lines a container wrote (`previous`: its run before the last restart, what a crash loop leaves to read). */
export async function lastLines(
  api: KubeApi,
  namespace: string,
  pod: string,
  container: string,
  options: { previous: boolean; count: number },
): Promise<string[]> {
  const lines: string[] = [];
  try {
    const stream = await api.logs(
      namespace,
      pod,
      container,
      { tailLines: options.count, previous: options.previous },
      lineWriter((line) => lines.push(line)),
    );
    await stream.done;
  } catch (error) {
    return [`(its log could not be read: ${(error as Error).message})`];
  }
  return lines;
}

/** `2026-12-06T09:30:00.123456789Z text`, as the API writes lines with `timestamps=true`. */
export function splitTimestamp(line: string): { at: string | undefined; text: string } {
  const space = line.indexOf(" ");
  const stamp = space > 0 ? line.slice(0, space) : "";
  const at = /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(stamp) ? new Date(stamp.replace(/(\.\d{3})\d+Z$/, "$1Z")).toISOString() : undefined;
  return at ? { at, text: line.slice(space + 1) } : { at: undefined, text: line };
}

/**
 * Runtime logs (issue 18, item 5): every container of every pod of the services in the
 * namespaces the engine deploys to is followed, each line tagged with its pod's name and shipped
 * with the pod's release. Pods are found through a watch (reconnected and re-listed after an
 * error); a follow that ends (the container restarted, the connection dropped) starts again from
 * the last line's time while the pod runs.
 */
export class PodLogFollower {
  private readonly controller = new AbortController();
  private readonly namespaces = new Set<string>();
  private readonly following = new Map<string, Following>();

  constructor(private readonly options: { api: KubeApi; serviceLog: ServiceLog; logger: pino.Logger; retry?: ObserveOptions["retry"] }) {}

  start(namespaces: string[]): void {
    for (const namespace of namespaces) this.watchNamespace(namespace);
  }

  watchNamespace(namespace: string): void {
    if (this.namespaces.has(namespace) || this.controller.signal.aborted) return;
    this.namespaces.add(namespace);
    observe<V1Pod, never>(
      this.options.api,
      { apiVersion: "v1", kind: "Pod", namespace, labelSelector: LABEL.service },
      (pods) => {
        for (const pod of pods) this.followPod(pod);
        return null;
      },
      {
        signal: this.controller.signal,
        retry: this.options.retry,
        onReconnect: (reason) => this.options.logger.info({ namespace, reason }, "pod watch ended; listing again"),
      },
    ).catch((error: unknown) => {
      if (!this.controller.signal.aborted) this.options.logger.error({ err: error, namespace }, "pod log follower stopped");
    });
  }

  stop(): void {
    this.controller.abort();
    for (const follow of this.following.values()) follow.stream?.stop();
  }

  private followPod(pod: V1Pod): void {
    const serviceId = pod.metadata?.labels?.[LABEL.service];
    const releaseId = pod.metadata?.labels?.[LABEL.release] ?? "";
    const podName = pod.metadata?.name;
    if (!serviceId || !podName || pod.metadata?.labels?.[LABEL.run] === "build") return;
    for (const status of pod.status?.containerStatuses ?? []) {
      const key = `${pod.metadata?.namespace}/${podName}/${status.name}`;
      const existing = this.following.get(key);
      if (!status.state?.running || existing?.active) continue;
      const entry: Following = existing ?? { active: true, stream: null };
      entry.active = true;
      this.following.set(key, entry);
      const writer = lineWriter((line) => {
        const { at, text } = splitTimestamp(line);
        if (at) entry.since = at;
        this.options.serviceLog(serviceId, releaseId, `[${podName}] ${text}`, "stdout", at);
      });
      this.options.api
        .logs(pod.metadata!.namespace!, podName, status.name, { follow: true, timestamps: true, ...(entry.since ? { sinceTime: entry.since } : {}) }, writer)
        .then((stream) => {
          entry.stream = stream;
          return stream.done;
        })
        .catch((error: unknown) => this.options.logger.info({ err: error, pod: podName }, "log follow ended"))
        .finally(() => {
          entry.active = false;
          entry.stream = null;
        });
    }
  }
}
