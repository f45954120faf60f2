import type { Readable, Writable } from "node:stream";
import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * The seam between the kubernetes runtime's logic and the Kubernetes API (issue 18): the few
 * calls the runtime makes, and nothing else. client-node-api.ts implements it with
 * @kubernetes/client-node; the runtime's tests drive its logic through it with API objects
 * written from the Kubernetes API reference, and claim no more than that.
 */
export type ObjectRef = { apiVersion: string; kind: string; namespace?: string; name: string };

export type ListOptions = { namespace?: string; labelSelector?: string; fieldSelector?: string };

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
export type WatchEvent<T> = { type: WatchEventType; object: T };

/** A running watch or log stream: `done` settles when the server ends it (resolves) or it fails (rejects); `stop` ends it from our side. */
export type Stream = { stop(): void; done: Promise<void> };

export type LogOptions = { follow?: boolean; tailLines?: number; previous?: boolean; sinceTime?: string; timestamps?: boolean };

export type ExecStreams = { stdin: Readable | null; stdout: Writable; stderr: Writable | null; tty: boolean };
export type ExecHandle = { exited: Promise<number | null>; resize(size: { cols: number; rows: number }): void; close(): void };

export interface KubeApi {
  /**
   * Whether the cluster serves `kind` in an API group (`postgresql.cnpg.io/v1` Cluster once the
   * CloudNativePG operator is installed, `metrics.k8s.io/v1beta1` PodMetrics with a metrics
   * server), from API discovery; false when the group or the kind is not served.
   */
  serves(apiVersion: string, kind: string): Promise<boolean>;
  /** Server-side apply (`fieldManager`, `slipway` by default; conflicts forced: the engine is the source of the fields it sets). */
  apply<T extends KubernetesObject>(object: T, options?: { fieldManager?: string }): Promise<T>;
  /** The object, or null when it does not exist. */
  get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | null>;
  list<T extends KubernetesObject>(apiVersion: string, kind: string, options?: ListOptions): Promise<{ items: T[]; resourceVersion: string }>;
  /** Watches from `resourceVersion` (a list's); a 410 Gone or a dropped connection rejects `done`, and the caller lists again. */
  watch<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    options: ListOptions & { resourceVersion: string },
    onEvent: (event: WatchEvent<T>) => void,
  ): Promise<Stream>;
  /** Deletes the object (its dependents in the background); false when it did not exist. */
  delete(ref: ObjectRef): Promise<boolean>;
  logs(namespace: string, pod: string, container: string, options: LogOptions, out: Writable): Promise<Stream>;
  exec(namespace: string, pod: string, container: string, argv: string[], streams: ExecStreams): Promise<ExecHandle>;
}
