/**
 * Test support: the KubeApi seam (kube-api.ts) held by the test. It is not an API server and does
 * not pretend to be one: no controller runs, nothing is validated or defaulted. It keeps the
 * objects the runtime applied and the ones the test wrote (from the Kubernetes API reference,
 * see api-objects.ts), answers lists from them, and delivers the watch events the test emits, or
 * ends a watch with the error the test chooses. It records every call, so tests assert what the
 * runtime asked of the cluster, in order.
 */
import type { Writable } from "node:stream";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ExecHandle, ExecStreams, KubeApi, ListOptions, LogOptions, ObjectRef, Stream, WatchEvent } from "../kube-api";

type Watcher = { kind: string; options: ListOptions; onEvent: (event: WatchEvent<KubernetesObject>) => void; fail: (error: Error) => void; stopped: boolean };

export class ScriptedKubeApi implements KubeApi {
  readonly objects = new Map<string, KubernetesObject>();
  readonly applied: { object: KubernetesObject; fieldManager: string }[] = [];
  readonly deleted: string[] = [];
  readonly lists: string[] = [];
  readonly execs: { pod: string; container: string; argv: string[]; tty: boolean }[] = [];
  /** Log lines by `<pod>/<container>` (`:previous` for the run before a restart). */
  readonly logLines = new Map<string, string[]>();
  /** Every log read, in order: `<pod>/<container>` and its options. */
  readonly logReads: { container: string; options: LogOptions }[] = [];
  private readonly watchers: Watcher[] = [];
  private readonly waiting: { kind: string; resolve: () => void }[] = [];
  /** The `<apiVersion> <kind>`s of API groups outside the core ones the cluster serves (a test installs an operator, a metrics server). */
  readonly served = new Set<string>();
  private version = 1;

  /** Puts objects in the store, as the cluster holds them when the runtime looks. */
  seed(...objects: KubernetesObject[]): void {
    for (const object of objects) this.objects.set(keyOf(object), structuredClone(object));
  }

  /** Delivers a watch event to the watches that match, after storing the object. */
  emit(type: "ADDED" | "MODIFIED" | "DELETED", object: KubernetesObject): void {
    if (type === "DELETED") this.objects.delete(keyOf(object));
    else this.objects.set(keyOf(object), structuredClone(object));
    for (const watcher of this.watchers)
      if (!watcher.stopped && watcher.kind === object.kind && matches(object, watcher.options)) watcher.onEvent({ type, object: structuredClone(object) });
  }

  /** Ends the open watches of `kind` with an error (a dropped connection, a 410 Gone). */
  failWatches(kind: string, error: Error): void {
    for (const watcher of this.watchers)
      if (!watcher.stopped && watcher.kind === kind) {
        watcher.stopped = true;
        watcher.fail(error);
      }
  }

  /** Resolves once a watch of `kind` is open. */
  watching(kind: string): Promise<void> {
    if (this.watchers.some((watcher) => !watcher.stopped && watcher.kind === kind)) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ kind, resolve }));
  }

  stored<T extends KubernetesObject>(kind: string, namespace: string, name: string): T | undefined {
    return this.objects.get(`${kind}/${namespace}/${name}`) as T | undefined;
  }

  /**
   * Stores what was applied. The `slipway` manager always sends whole objects, which replace the
   * stored one (its status kept); another manager's partial object (a scale, a restart
   * annotation) is merged into it, as server-side apply merges the fields that manager sets.
   * `metadata.generation` goes up when the spec changes, as the API reference says the system
   * does (ObjectMeta.generation, https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/, v1.33).
   */
  async apply<T extends KubernetesObject>(object: T, options?: { fieldManager?: string }): Promise<T> {
    const fieldManager = options?.fieldManager ?? "slipway";
    this.applied.push({ object: structuredClone(object), fieldManager });
    const existing = this.objects.get(keyOf(object)) as (T & { spec?: unknown; status?: unknown }) | undefined;
    const stored = (
      existing && fieldManager !== "slipway"
        ? merge(structuredClone(existing) as never, structuredClone(object) as never)
        : { ...structuredClone(object), ...(existing?.status ? { status: existing.status } : {}) }
    ) as T & { spec?: unknown };
    const generation = existing?.metadata?.generation ?? 0;
    stored.metadata = {
      ...stored.metadata,
      generation: existing && JSON.stringify(existing.spec) === JSON.stringify(stored.spec) ? generation : generation + 1,
    };
    this.objects.set(keyOf(object), stored);
    return structuredClone(stored);
  }

  async serves(apiVersion: string, kind: string): Promise<boolean> {
    return this.served.has(`${apiVersion} ${kind}`);
  }

  async get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | null> {
    return (this.objects.get(`${ref.kind}/${ref.namespace ?? ""}/${ref.name}`) as T | undefined) ?? null;
  }

  async list<T extends KubernetesObject>(_apiVersion: string, kind: string, options: ListOptions = {}): Promise<{ items: T[]; resourceVersion: string }> {
    this.lists.push(`${kind} ${JSON.stringify(options)}`);
    const items = [...this.objects.values()].filter((object) => object.kind === kind && matches(object, options));
    return { items: structuredClone(items) as T[], resourceVersion: String(this.version++) };
  }

  async watch<T extends KubernetesObject>(
    _apiVersion: string,
    kind: string,
    options: ListOptions & { resourceVersion: string },
    onEvent: (event: WatchEvent<T>) => void,
  ): Promise<Stream> {
    let fail!: (error: Error) => void;
    const done = new Promise<void>((_, reject) => (fail = reject));
    done.catch(() => undefined);
    const watcher: Watcher = { kind, options, onEvent: onEvent as Watcher["onEvent"], fail, stopped: false };
    this.watchers.push(watcher);
    for (const waiter of this.waiting.filter((candidate) => candidate.kind === kind)) waiter.resolve();
    return { stop: () => (watcher.stopped = true), done };
  }

  async delete(ref: ObjectRef): Promise<boolean> {
    const key = `${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;
    this.deleted.push(key);
    return this.objects.delete(key);
  }

  async logs(_namespace: string, pod: string, container: string, options: LogOptions, out: Writable): Promise<Stream> {
    this.logReads.push({ container: `${pod}/${container}`, options });
    const lines = this.logLines.get(`${pod}/${container}${options.previous ? ":previous" : ""}`) ?? [];
    const tail = options.tailLines ? lines.slice(-options.tailLines) : lines;
    out.end(tail.map((line) => `${line}\n`).join(""));
    return { stop: () => undefined, done: new Promise((resolve) => out.once("finish", resolve)) };
  }

  async exec(_namespace: string, pod: string, container: string, argv: string[], streams: ExecStreams): Promise<ExecHandle> {
    this.execs.push({ pod, container, argv, tty: streams.tty });
    streams.stdout.write("$ ");
    return { exited: Promise.resolve(0), resize: () => undefined, close: () => undefined };
  }
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(from)) {
    const current = into[key];
    into[key] =
      value && typeof value === "object" && !Array.isArray(value) && current && typeof current === "object"
        ? merge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return into;
}

function keyOf(object: KubernetesObject): string {
  return `${object.kind}/${object.metadata?.namespace ?? ""}/${object.metadata?.name}`;
}

/** The selectors the runtime uses: `key=value` and `key` (exists) labels; `metadata.name=` and `status.phase=` fields. */
function matches(object: KubernetesObject, options: ListOptions): boolean {
  if (options.namespace && object.metadata?.namespace !== options.namespace) return false;
  const labels = object.metadata?.labels ?? {};
  for (const term of options.labelSelector?.split(",").filter(Boolean) ?? []) {
    const [key, value] = term.split("=");
    if (value === undefined ? !(key! in labels) : labels[key!] !== value) return false;
  }
  for (const term of options.fieldSelector?.split(",").filter(Boolean) ?? []) {
    const [field, value] = term.split("=");
    if (field === "metadata.name" && object.metadata?.name !== value) return false;
    if (field === "status.phase" && (object as { status?: { phase?: string } }).status?.phase !== value) return false;
  }
  return true;
}
