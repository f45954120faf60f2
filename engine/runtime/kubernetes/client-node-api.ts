import { existsSync } from "node:fs";
import { PassThrough, type Writable } from "node:stream";
import {
  ApiException,
  CustomObjectsApi,
  Exec,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  Log,
  PatchStrategy,
  type V1Status,
  Watch,
} from "@kubernetes/client-node";
import type { ExecHandle, ExecStreams, KubeApi, ListOptions, LogOptions, ObjectRef, Stream, WatchEvent } from "./kube-api";
import { FIELD_MANAGER } from "./labels";

/**
 * How the engine finds its cluster (issue 18, item 1): inside it, the pod's service account
 * (`loadFromCluster`); beside it, a kubeconfig (KUBECONFIG or ~/.kube/config) and a context.
 * Never client-node's fallback of an unauthenticated localhost:8080.
 */
export function loadKubeConfig(options: { inCluster: boolean; kubeconfig: string; context?: string }): KubeConfig {
  const config = new KubeConfig();
  if (options.inCluster) config.loadFromCluster();
  else if (!existsSync(options.kubeconfig))
    throw new Error(`no Kubernetes cluster: run the engine in one, or give it a kubeconfig (${options.kubeconfig} does not exist; set KUBECONFIG)`);
  else config.loadFromFile(options.kubeconfig);
  if (options.context) {
    if (!config.getContexts().some((context) => context.name === options.context)) throw new Error(`the kubeconfig has no context ${options.context}`);
    config.setCurrentContext(options.context);
  }
  if (!config.getCurrentCluster()) throw new Error("no Kubernetes cluster: run the engine in one, or give it a kubeconfig with a current context");
  return config;
}

/** The seam (kube-api.ts) over @kubernetes/client-node. */
export function clientNodeApi(config: KubeConfig): KubeApi {
  const objects = KubernetesObjectApi.makeApiClient(config);
  const watcher = new Watch(config);
  const logs = new Log(config);
  const exec = new Exec(config);
  const discovery = config.makeApiClient(CustomObjectsApi);

  /** The collection's URL path: /api/v1/… for the core group, /apis/<group>/<version>/… for the others. */
  const collectionPath = (apiVersion: string, kind: string, namespace?: string) => {
    const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return `${base}${namespace ? `/namespaces/${namespace}` : ""}/${plural(kind)}`;
  };

  return {
    async serves(apiVersion, kind) {
      const [group, version] = apiVersion.split("/");
      if (!group || !version) throw new Error(`${apiVersion} is not an API group's version`);
      try {
        // GET /apis/<group>/<version>: the group's APIResourceList (a 404 when the group is not served).
        const { resources } = await discovery.getAPIResources({ group, version });
        return resources.some((resource) => resource.kind === kind);
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return false;
        throw error;
      }
    },

    apply: (object, options) => objects.patch(object, undefined, undefined, options?.fieldManager ?? FIELD_MANAGER, true, PatchStrategy.ServerSideApply),

    async get<T extends KubernetesObject>(ref: ObjectRef) {
      try {
        return (await objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } })) as T;
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return null;
        throw error;
      }
    },

    async list<T extends KubernetesObject>(apiVersion: string, kind: string, options: ListOptions = {}) {
      const list = await objects.list<T>(apiVersion, kind, options.namespace, undefined, undefined, undefined, options.fieldSelector, options.labelSelector);
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
    },

    async watch<T extends KubernetesObject>(
      apiVersion: string,
      kind: string,
      options: ListOptions & { resourceVersion: string },
      onEvent: (event: WatchEvent<T>) => void,
    ) {
      let settle!: { resolve: () => void; reject: (error: Error) => void };
      const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
      const controller = await watcher.watch(
        collectionPath(apiVersion, kind, options.namespace),
        { resourceVersion: options.resourceVersion, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector, allowWatchBookmarks: true },
        (type, object: T & V1Status) => {
          // An ERROR event carries a Status (410 Gone when the resourceVersion is too old): the caller lists again.
          if (type === "ERROR")
            settle.reject(new Error(`watch of ${kind} failed: ${object.message ?? object.reason ?? "error event"} (${object.code ?? "?"})`));
          else onEvent({ type: type as WatchEvent<T>["type"], object });
        },
        (error: unknown) => (error ? settle.reject(error instanceof Error ? error : new Error(String(error))) : settle.resolve()),
      );
      return { stop: () => controller.abort(), done };
    },

    async delete(ref) {
      try {
        await objects.delete(
          { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } },
          undefined,
          undefined,
          undefined,
          undefined,
          "Background",
        );
        return true;
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) return false;
        throw error;
      }
    },

    async logs(namespace: string, pod: string, container: string, options: LogOptions, out: Writable): Promise<Stream> {
      const ended = new Promise<void>((resolve, reject) => {
        out.once("finish", resolve);
        out.once("error", reject);
      });
      const controller = await logs.log(namespace, pod, container, out, options);
      return { stop: () => controller.abort(), done: ended };
    },

    async exec(namespace: string, pod: string, container: string, argv: string[], streams: ExecStreams): Promise<ExecHandle> {
      // client-node sends the terminal's size when stdout is "resizable" (columns, rows and a resize event).
      const stdout = Object.assign(new PassThrough(), { columns: 80, rows: 24 });
      stdout.pipe(streams.stdout);
      let exit!: (code: number | null) => void;
      const exited = new Promise<number | null>((resolve) => (exit = resolve));
      const socket = await exec.exec(namespace, pod, container, argv, stdout, streams.stderr, streams.stdin, streams.tty, (status) => exit(exitCodeOf(status)));
      socket.on("close", () => exit(null));
      return {
        exited,
        resize: ({ cols, rows }) => {
          Object.assign(stdout, { columns: cols, rows });
          stdout.emit("resize");
        },
        close: () => socket.close(),
      };
    },
  };

  function plural(kind: string): string {
    const lower = kind.toLowerCase();
    if (lower.endsWith("ss")) return `${lower}es`;
    if (lower.endsWith("y")) return `${lower.slice(0, -1)}ies`;
    return `${lower}s`;
  }
}

/** The exit code in the Status the exec channel ends with (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/). */
export function exitCodeOf(status: V1Status): number | null {
  if (status.status === "Success") return 0;
  const cause = status.details?.causes?.find((candidate) => candidate.reason === "ExitCode");
  return cause?.message ? Number(cause.message) : null;
}
