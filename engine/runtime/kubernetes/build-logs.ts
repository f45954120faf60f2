import type { V1Pod } from "@kubernetes/client-node";
import type { KubeApi, Stream } from "./kube-api";
import { observe, type ObserveOptions } from "./observe";
import { lineWriter } from "./pod-logs";

/** How long the follows may take to hand over a finished build's last lines. */
const DRAIN_MS = 10_000;

/**
 * A build Job's output, live (issue 18, item 4): its pods are found through a watch, and each
 * container's log (the clone, then the build) is followed from the moment it starts, each line
 * handed over as it comes, as the other runtimes show a build's output. `finish` (the Job ended)
 * follows what started and was not seen yet, lets the follows end with the containers, and stops.
 */
export class BuildLogFollower {
  private readonly controller = new AbortController();
  private readonly followed = new Map<string, { stream: Stream | null; done: Promise<void> }>();

  constructor(
    private readonly options: {
      api: KubeApi;
      namespace: string;
      job: string;
      onLine: (line: string) => void;
      retry?: ObserveOptions["retry"];
    },
  ) {}

  start(): void {
    observe<V1Pod, never>(
      this.options.api,
      { apiVersion: "v1", kind: "Pod", namespace: this.options.namespace, labelSelector: this.selector() },
      (pods) => {
        for (const pod of pods) this.followPod(pod);
        return null;
      },
      { signal: this.controller.signal, retry: this.options.retry },
    ).catch(() => undefined);
  }

  async finish(): Promise<void> {
    const { items } = await this.options.api
      .list<V1Pod>("v1", "Pod", { namespace: this.options.namespace, labelSelector: this.selector() })
      .catch(() => ({ items: [] as V1Pod[] }));
    for (const pod of items) this.followPod(pod);
    this.controller.abort();
    const drained = Promise.allSettled([...this.followed.values()].map((follow) => follow.done));
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, DRAIN_MS).unref())]);
    for (const follow of this.followed.values()) follow.stream?.stop();
  }

  /** Aborted without finishing (the build was canceled): the follows stop where they are. */
  stop(): void {
    this.controller.abort();
    for (const follow of this.followed.values()) follow.stream?.stop();
  }

  private selector(): string {
    return `batch.kubernetes.io/job-name=${this.options.job}`;
  }

  /** Follows each container of the pod that started (running, or already terminated), once. */
  private followPod(pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name || this.controller.signal.aborted) return;
    for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const key = `${name}/${status.name}`;
      if (this.followed.has(key) || !(status.state?.running || status.state?.terminated)) continue;
      const entry: { stream: Stream | null; done: Promise<void> } = { stream: null, done: Promise.resolve() };
      entry.done = this.options.api
        .logs(this.options.namespace, name, status.name, { follow: true }, lineWriter(this.options.onLine))
        .then((stream) => {
          entry.stream = stream;
          return stream.done;
        })
        .catch((error: unknown) => this.options.onLine(`(the log of ${status.name} could not be followed: ${(error as Error).message})`));
      this.followed.set(key, entry);
    }
  }
}
