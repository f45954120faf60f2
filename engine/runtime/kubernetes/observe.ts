import { setTimeout as sleep } from "node:timers/promises";
import type { KubernetesObject } from "@kubernetes/client-node";
import { createBackoff } from "../../protocol/backoff";
import type { KubeApi, ListOptions, Stream } from "./kube-api";

export type ObserveTarget = { apiVersion: string; kind: string } & ListOptions;

export type ObserveOptions = {
  signal: AbortSignal;
  /** Told each time the watch ended and the objects are listed again (issue 18, item 6). */
  onReconnect?: (reason: string) => void;
  /** Backoff between a watch's end and the next list; tests shorten it. */
  retry?: { baseMs: number; maxMs: number };
};

/**
 * Waits until `decide` returns a result for the target's objects: lists them, then follows a watch
 * from the list's resourceVersion, deciding after each change. When the watch ends (the server
 * closes it, the connection drops, a 410 Gone) the objects are listed again and a new watch
 * starts: what the cluster says after the gap is the truth, whatever was missed in it. Never
 * polls: between a list and the next, only watch events wake it.
 */
export async function observe<T extends KubernetesObject, R>(
  api: KubeApi,
  target: ObserveTarget,
  decide: (objects: T[]) => R | null,
  options: ObserveOptions,
): Promise<R> {
  const { apiVersion, kind, ...listOptions } = target;
  const backoff = createBackoff({ baseMs: options.retry?.baseMs ?? 500, maxMs: options.retry?.maxMs ?? 15_000 });
  for (;;) {
    options.signal.throwIfAborted();
    let listed: { items: T[]; resourceVersion: string };
    try {
      listed = await api.list<T>(apiVersion, kind, listOptions);
    } catch (error) {
      options.onReconnect?.(`listing ${kind} failed: ${(error as Error).message}`);
      await sleep(backoff.next(), undefined, { signal: options.signal });
      continue;
    }
    backoff.reset();
    const objects = new Map(listed.items.map((item) => [keyOf(item), item]));
    const first = decide([...objects.values()]);
    if (first !== null) return first;
    const outcome = await followWatch(api, target, listed.resourceVersion, objects, decide, options.signal);
    if ("result" in outcome) return outcome.result;
    options.signal.throwIfAborted();
    options.onReconnect?.(outcome.ended);
    await sleep(backoff.next(), undefined, { signal: options.signal });
  }
}

function followWatch<T extends KubernetesObject, R>(
  api: KubeApi,
  target: ObserveTarget,
  resourceVersion: string,
  objects: Map<string, T>,
  decide: (objects: T[]) => R | null,
  signal: AbortSignal,
): Promise<{ result: R } | { ended: string }> {
  const { apiVersion, kind, ...listOptions } = target;
  return new Promise((resolve) => {
    let stream: Stream | null = null;
    let finished = false;
    const finish = (outcome: { result: R } | { ended: string }) => {
      if (finished) return;
      finished = true;
      signal.removeEventListener("abort", onAbort);
      stream?.stop();
      resolve(outcome);
    };
    const onAbort = () => finish({ ended: "canceled" });
    signal.addEventListener("abort", onAbort, { once: true });
    api
      .watch<T>(apiVersion, kind, { ...listOptions, resourceVersion }, (event) => {
        if (finished || event.type === "BOOKMARK") return;
        if (event.type === "DELETED") objects.delete(keyOf(event.object));
        else objects.set(keyOf(event.object), event.object);
        const result = decide([...objects.values()]);
        if (result !== null) finish({ result });
      })
      .then(
        (started) => {
          stream = started;
          if (finished) started.stop();
          started.done.then(
            () => finish({ ended: `the API server closed the watch of ${kind}` }),
            (error: unknown) => finish({ ended: `the watch of ${kind} failed: ${(error as Error).message}` }),
          );
        },
        (error: unknown) => finish({ ended: `the watch of ${kind} could not start: ${(error as Error).message}` }),
      );
  });
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}
