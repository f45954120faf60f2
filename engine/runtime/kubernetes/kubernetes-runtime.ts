import fs from "node:fs/promises";
import path from "node:path";
import { quantityToScalar } from "@kubernetes/client-node/dist/util.js";
import type { KubernetesObject, V1Deployment, V1PersistentVolumeClaim, V1Job, V1Pod, V1ReplicaSet, V1Secret, V1StatefulSet } from "@kubernetes/client-node";
import type pino from "pino";
import type { DatabaseServiceSpec, DiskUsage, JobLifecycleEvent, RuntimeServiceState, ServiceKind, ServiceSpec } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import type { ExecOptions, ExecSession, JobRunResult, ReleaseHandle, Runtime, ServiceLog, ServiceSample, StepContext, StepResult } from "../runtime";
import { isServiceId } from "../release-runtime";
import { StepError } from "../runtime";
import { appDirectory, type ClonedSource, cloneRepository } from "../shared/git";
import { cloneNetworkEnv, engineBaseEnv } from "../shared/processes-env";
import type { ImageBuildOptions } from "../docker/service-image";
import { buildImage } from "./builds";
import {
  COPIED_FROM_ANNOTATION,
  copiedMarker,
  COPY_MANAGER,
  copyJobManifest,
  copyJobName,
  type CopySource,
  copySourceSecret,
  findCopySource,
} from "./copy-data";
import { EngineHostBuilds } from "./host-builds";
import { startPodExec } from "./exec-session";
import { lifecycleJobManifest, lifecycleJobName } from "./jobs";
import type { KubeApi, ObjectRef } from "./kube-api";
import { ANNOTATION, type EnvironmentScope, LABEL, MANAGED_BY, namespaceOf, type ReleaseMeta } from "./labels";
import { type ClusterFeatures, namespaceManifest, NO_FEATURES, releaseManifests } from "./manifests";
import { CNPG_API_VERSION, CNPG_HIBERNATION, CNPG_KIND, CNPG_LABEL, type CnpgCluster, cnpgClusterRollout, operatorDatabaseEnv } from "./cnpg";
import { METRICS_API_VERSION, POD_METRICS, type PodMetrics, serviceSample } from "./metrics";
import { observe, type ObserveOptions } from "./observe";
import { lastLines, PodLogFollower } from "./pod-logs";
import { deploymentRollout, describeProblems, jobRollout, podProblems, type RolloutState, statefulSetRollout } from "./rollout";
import { variablesSecret } from "./secrets";
import type { KubernetesSettings } from "./settings";
import { previousReplicaSet, rollbackManifest } from "./undo";

export type KubernetesRuntimeOptions = {
  api: KubeApi;
  settings: KubernetesSettings;
  /** Where the engine clones repositories to learn their exact commit (a build Job clones that commit again, in the cluster; a build on the engine's host uses the clone). */
  home: string;
  logger: pino.Logger;
  serviceLog: ServiceLog;
  /** Backoff between a watch's end and the next list; tests shorten it. */
  retry?: ObserveOptions["retry"];
  /** A DATABASE (StatefulSet) rollout's bound: no controller deadline marks it failed. */
  statefulSetTimeoutMs?: number;
  /** How images are built on the engine's host, when the cluster's setting says so (host-builds.ts): toolchains, pip, the plan builds' image and network. */
  images: ImageBuildOptions;
};

/** A service the cluster runs, as its labels and annotations say (not the engine's memory: issue 18, item 6). */
type Tracked = {
  serviceId: string;
  kind: ServiceKind;
  namespace: string;
  workload: WorkloadKind | null;
  name: string;
  releaseId: string;
  commit?: string;
  stopped: boolean;
  image?: string;
};
type WorkloadKind = "Deployment" | "StatefulSet" | "CronJob" | "Cluster";
type Pending = {
  scope: EnvironmentScope;
  meta: ReleaseMeta;
  kind: ServiceKind;
  name: string;
  dir: string;
  appDir?: string;
  image?: string;
  applied: boolean;
  undone: boolean;
  features: ClusterFeatures;
  /** A clone's database whose data is still to copy: where from (copy-data.ts). */
  copyFrom?: { serviceId: string; source: CopySource };
};

const WORKLOADS: Record<WorkloadKind, string> = { Deployment: "apps/v1", StatefulSet: "apps/v1", CronJob: "batch/v1", Cluster: CNPG_API_VERSION };
const RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt";
/** Field managers of the actions that change one field of what `slipway` applied: its next apply takes the field back. */
const SCALE_MANAGER = "slipway-scale";
const RESTART_MANAGER = "slipway-restart";

/**
 * The kubernetes runtime (issue 18): each release of a service is rendered to Kubernetes objects
 * (manifests.ts) and applied with server-side apply; rollouts are followed through watches
 * (observe.ts) and decided from the controllers' status (rollout.ts); one that does not progress
 * within its deadline is undone to the previous revision (undo.ts) and fails with its pods'
 * reasons. Orchestration (steps, events, cancel) is the engine's, as for every runtime; this
 * runtime talks to the cluster only through the KubeApi seam.
 */
export class KubernetesRuntime implements Runtime<ServiceSpec> {
  readonly name = "kubernetes";
  readonly serviceKinds: readonly ServiceKind[] = ["APPLICATION", "CONTAINER", "DATABASE", "JOB"];
  private readonly tracked = new Map<string, Tracked>();
  private readonly pending = new Map<string, Pending>();
  private readonly logs: PodLogFollower;
  private readonly hostBuilds: EngineHostBuilds;
  private readonly stopping = new AbortController();
  private metricsServed: { value: boolean; at: number } | null = null;

  constructor(private readonly options: KubernetesRuntimeOptions) {
    this.logs = new PodLogFollower({ api: options.api, serviceLog: options.serviceLog, logger: options.logger, retry: options.retry });
    this.hostBuilds = new EngineHostBuilds({ home: options.home, api: options.api, settings: options.settings, images: options.images });
  }

  /** Recovers what runs from the cluster: every workload the engine labelled, in every namespace (a restarted engine forgets nothing). */
  async start(): Promise<void> {
    const operator = await this.servesCloudNativePg();
    for (const kind of Object.keys(WORKLOADS) as WorkloadKind[]) {
      if (kind === "Cluster" && !operator) continue;
      const { items } = await this.options.api.list<KubernetesObject & { spec?: { replicas?: number; suspend?: boolean } }>(WORKLOADS[kind], kind, {
        labelSelector: selector(MANAGED_BY),
      });
      for (const item of items) {
        const labels = item.metadata?.labels ?? {};
        const annotations = item.metadata?.annotations ?? {};
        const serviceId = labels[LABEL.service];
        if (!serviceId) continue;
        this.tracked.set(serviceId, {
          serviceId,
          kind: labels[LABEL.serviceKind] as ServiceKind,
          namespace: item.metadata!.namespace!,
          workload: kind,
          name: item.metadata!.name!,
          releaseId: annotations[ANNOTATION.release] ?? labels[LABEL.release] ?? "unknown",
          ...(annotations[ANNOTATION.commit] ? { commit: annotations[ANNOTATION.commit] } : {}),
          stopped: kind === "CronJob" ? item.spec?.suspend === true : kind === "Cluster" ? annotations[CNPG_HIBERNATION] === "on" : item.spec?.replicas === 0,
        });
      }
    }
    this.logs.start([...new Set([...this.tracked.values()].map((service) => service.namespace))]);
  }

  async shutdown(): Promise<void> {
    this.stopping.abort();
    this.logs.stop();
  }

  services(): RuntimeServiceState[] {
    return [...this.tracked.values()].map((service) => ({
      serviceId: service.serviceId,
      releaseId: service.releaseId,
      state: service.stopped ? "stopped" : service.kind === "JOB" ? "idle" : "running",
      restarts: 0,
      ...(service.commit ? { commit: service.commit } : {}),
    }));
  }

  // ---- deploy steps -------------------------------------------------------------------------

  async newRelease(ctx: StepContext<ServiceSpec>): Promise<ReleaseHandle> {
    const scope = scopeOf(ctx);
    const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const releaseId = `${stamp}-${ctx.deploymentId.slice(0, 8)}`;
    const dir = path.join(this.options.home, "kubernetes", ctx.service.id, releaseId);
    const features = await this.featuresFor(ctx.service, namespaceOf(scope));
    this.pending.set(releaseId, {
      scope,
      meta: { releaseId, deploymentId: ctx.deploymentId },
      kind: ctx.service.kind,
      name: kubernetesObjectName(ctx.service.name),
      dir,
      applied: false,
      undone: false,
      features,
    });
    return { serviceId: ctx.service.id, releaseId };
  }

  /** The engine clones to learn the exact commit (and the repository's default branch); the build Job builds that commit. */
  async clone(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<ClonedSource> {
    const release = this.pendingOf(handle);
    const service = ctx.service;
    if (service.kind !== "APPLICATION" && service.kind !== "JOB") throw new Error(`${service.kind} services have no repository`);
    const checkout = path.join(release.dir, "src");
    const cloned = await cloneRepository({
      git: service.config.git,
      policy: ctx.git ?? { allowLocalRepositories: false },
      dir: checkout,
      env: { ...engineBaseEnv(), ...cloneNetworkEnv() },
      timeoutMs: service.config.buildTimeoutSeconds * 1000,
      signal: ctx.signal,
      output: ctx.output,
    });
    release.meta.commit = cloned.commit;
    release.appDir = await appDirectory(checkout, service.config.git.rootDirectory);
    return cloned;
  }

  async build(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<void | StepResult> {
    const release = this.pendingOf(handle);
    const service = ctx.service;
    switch (service.kind) {
      case "CONTAINER":
        release.image = `${service.config.image.name}:${service.config.image.tag}`;
        return { message: `image ${release.image}, pulled by the cluster's nodes` };
      case "DATABASE":
        return {
          message: release.features.cloudNativePg
            ? `${service.config.engine} as a CloudNativePG Cluster`
            : release.features.keptStatefulSet
              ? `${service.config.engine} in its StatefulSet: CloudNativePG is installed, but the data is in the StatefulSet's volume`
              : `${service.config.engine} in a StatefulSet`,
        };
      case "APPLICATION":
      case "JOB": {
        if (!release.appDir || !release.meta.commit) throw new Error("build before clone");
        const where = ctx.kubernetesBuild ?? { location: "cluster" };
        try {
          release.image =
            where.location === "engine-host"
              ? await this.hostBuilds.build({
                  ctx,
                  service,
                  dockerHost: where.dockerHost,
                  scope: release.scope,
                  commit: release.meta.commit,
                  releaseDir: release.dir,
                  appDir: release.appDir,
                })
              : await buildImage({
                  api: this.options.api,
                  settings: this.options.settings,
                  ctx,
                  service,
                  scope: release.scope,
                  release: release.meta,
                  appDir: release.appDir,
                  retry: this.options.retry,
                });
        } finally {
          // The image (or the build Job's own clone) holds what the release needs: the engine's checkout is not needed any more.
          await fs.rm(release.dir, { recursive: true, force: true });
        }
        return { message: `image ${release.image}${where.location === "engine-host" ? ", built on the engine's host" : ""}` };
      }
    }
  }

  async startRelease(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingOf(handle);
    // Before anything is applied: a source that is not there fails the deployment with nothing made.
    if (ctx.service.kind === "DATABASE") await this.planCopy(ctx as StepContext<DatabaseServiceSpec>, release);
    const objects = releaseManifests(release.scope, ctx.service, release.meta, this.options.settings, release.image ?? "", release.features).filter(
      (object) => !isRoute(object),
    );
    await this.applyAll(ctx, [namespaceManifest(release.scope), ...objects]);
    release.applied = true;
    this.logs.watchNamespace(namespaceOf(release.scope));
  }

  async healthCheck(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingOf(handle);
    const namespace = namespaceOf(release.scope);
    const name = kubernetesObjectName(ctx.service.name);
    if (ctx.service.kind === "DATABASE") {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(this.options.statefulSetTimeoutMs ?? 600_000)]);
      const operator = release.features.cloudNativePg;
      const following = operator
        ? this.follow<CnpgCluster>(ctx, CNPG_API_VERSION, CNPG_KIND, namespace, name, cnpgClusterRollout, signal)
        : this.follow<V1StatefulSet>(ctx, "apps/v1", "StatefulSet", namespace, name, statefulSetRollout, signal);
      const state = await following.catch((error: unknown) => {
        if (ctx.signal.aborted || !signal.aborted) throw error;
        return { state: "failed", message: `${name} was not ready within ${(this.options.statefulSetTimeoutMs ?? 600_000) / 1000}s` } as const;
      });
      if (state.state === "failed")
        throw new StepError(
          `${state.message}\n${operator ? await this.operatorPodReasons(namespace, name) : await this.podReasons(namespace, ctx.service.id, release.meta.releaseId)}`,
        );
      // The new database is ready: a clone's gets its source's data before it goes live.
      if (release.copyFrom) await this.copyData(ctx as StepContext<DatabaseServiceSpec>, release, release.copyFrom);
      return;
    }
    const state = await this.follow<V1Deployment>(ctx, "apps/v1", "Deployment", namespace, name, deploymentRollout, ctx.signal);
    if (state.state === "available") return;
    // Read before the undo, which replaces the failing pods.
    const reasons = await this.podReasons(namespace, ctx.service.id, release.meta.releaseId);
    const undone = await this.undo(namespace, name);
    release.undone = true;
    throw new StepError(`${state.message}; ${undone}\n${reasons}`);
  }

  async switchTo(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const release = this.pendingOf(handle);
    const service = ctx.service;
    const objects = releaseManifests(release.scope, service, release.meta, this.options.settings, release.image ?? "", release.features);
    if (service.kind === "JOB") await this.applyAll(ctx, [namespaceManifest(release.scope), ...objects]);
    else await this.applyAll(ctx, objects.filter(isRoute));
    if (service.kind === "APPLICATION" || service.kind === "CONTAINER")
      ctx.output(
        "system",
        service.domains.length > 0
          ? `${service.domains.join(", ")} now reach ${kubernetesObjectName(service.name)}`
          : "No domains: the service is reachable inside the cluster only",
      );
    const cron = service.kind === "JOB" && service.config.trigger.type === "cron";
    this.tracked.set(service.id, {
      serviceId: service.id,
      kind: service.kind,
      namespace: namespaceOf(release.scope),
      workload:
        service.kind === "DATABASE"
          ? release.features.cloudNativePg
            ? "Cluster"
            : "StatefulSet"
          : service.kind === "JOB"
            ? cron
              ? "CronJob"
              : null
            : "Deployment",
      name: kubernetesObjectName(service.name),
      releaseId: release.meta.releaseId,
      ...(release.meta.commit ? { commit: release.meta.commit } : {}),
      ...(release.image ? { image: release.image } : {}),
      stopped: false,
    });
    this.pending.delete(release.meta.releaseId);
  }

  /** The rolling update replaced the previous pods before the rollout was available (maxUnavailable 0): only their variables are left to remove. */
  async drain(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle): Promise<void> {
    const tracked = this.tracked.get(ctx.service.id);
    if (!tracked) return;
    const keep = new Set([handle.releaseId]);
    if (tracked.workload === "Deployment") {
      const deployment = await this.options.api.get<V1Deployment>({
        apiVersion: "apps/v1",
        kind: "Deployment",
        namespace: tracked.namespace,
        name: tracked.name,
      });
      const { items } = await this.options.api.list<V1ReplicaSet>("apps/v1", "ReplicaSet", {
        namespace: tracked.namespace,
        labelSelector: selector({ [LABEL.service]: ctx.service.id }),
      });
      const previous = deployment && previousReplicaSet(deployment, items);
      const previousRelease = previous?.spec?.template?.metadata?.annotations?.[ANNOTATION.release];
      // The previous revision's variables stay: an undo brings back its pods, which read them.
      if (previousRelease) keep.add(previousRelease);
    }
    const removed = await this.removeVariables(tracked.namespace, ctx.service.id, keep);
    ctx.output("system", `The rolling update replaced the previous pods${removed > 0 ? `; removed the variables of ${removed} older release(s)` : ""}`);
  }

  async discard(handle: ReleaseHandle): Promise<void> {
    const release = this.pending.get(handle.releaseId);
    this.pending.delete(handle.releaseId);
    if (!release) return;
    await fs.rm(release.dir, { recursive: true, force: true });
    if (!release.applied || release.undone) return;
    // Canceled or failed after the apply: the previous revision serves again (a first release is removed).
    if (release.kind === "APPLICATION" || release.kind === "CONTAINER") await this.undo(namespaceOf(release.scope), release.name);
  }

  // ---- whole-service actions ----------------------------------------------------------------

  /** Scales to zero (a CronJob is suspended); the objects and volumes stay for RESTART. */
  async stop(ctx: StepContext<ServiceSpec>): Promise<void> {
    const tracked = this.tracked.get(ctx.service.id);
    if (!tracked?.workload) return ctx.output("system", "The service has nothing running in the cluster: nothing to stop");
    await this.options.api.apply(scaleManifest(tracked, 0), { fieldManager: SCALE_MANAGER });
    tracked.stopped = true;
    ctx.output(
      "system",
      tracked.workload === "CronJob"
        ? `CronJob ${tracked.name} suspended`
        : tracked.workload === "Cluster"
          ? `Cluster ${tracked.name} hibernated: its instances stop, its volume stays`
          : `${tracked.workload} ${tracked.name} scaled to 0`,
    );
  }

  /** A stopped service scales back up; a running one gets a rollout restart (new pods replace the old ones, none unavailable). */
  async restart(ctx: StepContext<ServiceSpec>): Promise<void> {
    const tracked = this.tracked.get(ctx.service.id);
    if (!tracked?.workload) throw new StepError("the service has no release to restart: deploy it first");
    if (tracked.workload === "CronJob") {
      await this.options.api.apply(scaleManifest(tracked, 1), { fieldManager: SCALE_MANAGER });
      tracked.stopped = false;
      return ctx.output("system", `CronJob ${tracked.name} resumed`);
    }
    const ref = { apiVersion: WORKLOADS[tracked.workload], kind: tracked.workload };
    const restartedAt = { [RESTART_ANNOTATION]: new Date().toISOString() };
    if (tracked.stopped) await this.options.api.apply(scaleManifest(tracked, replicasOf(ctx.service)), { fieldManager: SCALE_MANAGER });
    else
      await this.options.api.apply(
        {
          ...ref,
          // The operator restarts a Cluster's instances on the annotation of the Cluster itself (`kubectl cnpg restart` sets it).
          metadata: { name: tracked.name, namespace: tracked.namespace, ...(tracked.workload === "Cluster" ? { annotations: restartedAt } : {}) },
          ...(tracked.workload === "Cluster" ? {} : { spec: { template: { metadata: { annotations: restartedAt } } } }),
        } as KubernetesObject,
        { fieldManager: RESTART_MANAGER },
      );
    const state =
      tracked.workload === "Deployment"
        ? await this.follow<V1Deployment>(ctx, "apps/v1", "Deployment", tracked.namespace, tracked.name, deploymentRollout, ctx.signal)
        : tracked.workload === "Cluster"
          ? await this.follow<CnpgCluster>(ctx, CNPG_API_VERSION, CNPG_KIND, tracked.namespace, tracked.name, cnpgClusterRollout, ctx.signal)
          : await this.follow<V1StatefulSet>(ctx, "apps/v1", "StatefulSet", tracked.namespace, tracked.name, statefulSetRollout, ctx.signal);
    if (state.state === "failed")
      throw new StepError(
        `${state.message}\n${tracked.workload === "Cluster" ? await this.operatorPodReasons(tracked.namespace, tracked.name) : await this.podReasons(tracked.namespace, ctx.service.id, tracked.releaseId)}`,
      );
    tracked.stopped = false;
  }

  /** Removes every object of the service in its namespace, its volumes included (only a delete removes them). */
  async delete(ctx: StepContext<ServiceSpec>): Promise<void> {
    const namespace = this.tracked.get(ctx.service.id)?.namespace ?? namespaceOf(scopeOf(ctx));
    const removed = await this.removeObjects(ctx.service.id, namespace);
    ctx.output("system", removed.length > 0 ? `Deleted ${removed.join(", ")}` : "Nothing of the service was left in the cluster");
  }

  // ---- leftovers ----------------------------------------------------------------------------

  /**
   * Every service the cluster holds objects of, by their service label, in any namespace (the
   * control plane reports those of services that no longer exist as leftovers, as for every
   * runtime); its size: what its volumes hold, their capacity (their request while unbound).
   */
  async inventory(): Promise<DiskUsage[]> {
    const bytes = new Map<string, number>();
    for (const [apiVersion, kind] of await this.objectKinds()) {
      const { items } = await this.options.api.list<V1PersistentVolumeClaim>(apiVersion, kind, { labelSelector: LABEL.service });
      for (const item of items) {
        const serviceId = item.metadata?.labels?.[LABEL.service];
        if (!serviceId || !isServiceId(serviceId)) continue;
        const size = kind === "PersistentVolumeClaim" ? (item.status?.capacity?.storage ?? item.spec?.resources?.requests?.storage) : undefined;
        bytes.set(serviceId, (bytes.get(serviceId) ?? 0) + (size ? Number(quantityToScalar(size)) : 0));
      }
    }
    return [...bytes].map(([serviceId, size]) => ({ serviceId, bytes: size }));
  }

  /** Removes everything of services that no longer exist (the control plane's leftovers), volumes included, wherever it is. */
  async purge(serviceIds: string[]): Promise<void> {
    for (const serviceId of serviceIds.filter(isServiceId)) {
      const removed = await this.removeObjects(serviceId, undefined);
      this.options.logger.info({ serviceId, removed }, "removed the objects of a service that no longer exists");
    }
  }

  /** A lifecycle JOB's run: a Job, awaited through a watch; its outputs come back in its container's termination message. */
  async runJob(ctx: StepContext<ServiceSpec>, handle: ReleaseHandle | null, trigger: JobLifecycleEvent): Promise<JobRunResult> {
    const service = ctx.service;
    if (service.kind !== "JOB") throw new Error("only JOB services run");
    const release = handle ? this.pendingOf(handle) : null;
    const tracked = this.tracked.get(service.id);
    const image = release?.image ?? tracked?.image;
    if (!image) throw new StepError("the job has no image to run: deploy it first");
    const scope = release?.scope ?? scopeOf(ctx);
    const meta = release?.meta ?? { releaseId: tracked!.releaseId, deploymentId: ctx.deploymentId, ...(tracked?.commit ? { commit: tracked.commit } : {}) };
    const name = lifecycleJobName(service.name, trigger, ctx.deploymentId.slice(0, 8));
    const namespace = namespaceOf(scope);
    const features = release?.features ?? (await this.featuresFor(service, namespace));
    // The same Job for a re-delivered task: its name comes from the deployment.
    await this.applyAll(ctx, [
      namespaceManifest(scope),
      variablesSecret(scope, service, meta),
      lifecycleJobManifest(scope, service, meta, image, trigger, ctx.deploymentId.slice(0, 8), operatorDatabaseEnv(features.operatorDatabases)),
    ]);
    const state = await this.follow<V1Job>(ctx, "batch/v1", "Job", namespace, name, jobRollout, ctx.signal);
    const { items: pods } = await this.options.api.list<V1Pod>("v1", "Pod", { namespace, labelSelector: selector({ "batch.kubernetes.io/job-name": name }) });
    if (state.state === "failed") throw new StepError(`job ${name} failed: ${state.message}\n${await this.describePods(namespace, pods)}`);
    const succeeded = pods.find((pod) => pod.status?.phase === "Succeeded");
    const message = succeeded?.status?.containerStatuses?.[0]?.state?.terminated?.message ?? "";
    return { message: state.message, outputs: parseOutputs(message) };
  }

  /**
   * A metrics sample of the service's pods, from the resource metrics API (metrics.ts). A cluster
   * without a metrics server has none: the sample says so, and the engine's log once.
   */
  async sample(serviceId: string): Promise<ServiceSample> {
    const tracked = this.tracked.get(serviceId);
    if (!tracked || tracked.stopped) throw new StepError("the service has no running release");
    if (!(await this.servesMetrics())) throw new StepError("no metrics server: the cluster does not serve metrics.k8s.io");
    const options = { namespace: tracked.namespace, labelSelector: selector({ [LABEL.service]: serviceId }) };
    const { items: metrics } = await this.options.api.list<PodMetrics>(METRICS_API_VERSION, POD_METRICS, options);
    const { items: pods } = await this.options.api.list<V1Pod>("v1", "Pod", options);
    return serviceSample(metrics, pods);
  }

  async exec(serviceId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
    const tracked = this.tracked.get(serviceId);
    if (!tracked || tracked.kind === "JOB") throw new StepError("the service has no running release to open a shell in");
    const { items } = await this.options.api.list<V1Pod>("v1", "Pod", {
      namespace: tracked.namespace,
      labelSelector: selector({ [LABEL.service]: serviceId }),
      fieldSelector: "status.phase=Running",
    });
    const pod = items
      .filter((candidate) => !candidate.metadata?.deletionTimestamp)
      .sort((a, b) => String(b.metadata?.creationTimestamp).localeCompare(String(a.metadata?.creationTimestamp)))[0];
    if (!pod) throw new StepError(`no pod of ${tracked.name} is running`);
    return startPodExec(this.options.api, { namespace: tracked.namespace, pod: pod.metadata!.name!, container: pod.spec!.containers[0]!.name }, argv, options);
  }

  // ---- a clone's data -----------------------------------------------------------------------

  /**
   * Whether this release copies a source's data (a clone made with data, whose database has not
   * had it copied yet: its workload has no copy annotation), and from where.
   */
  private async planCopy(ctx: StepContext<DatabaseServiceSpec>, release: Pending): Promise<void> {
    const { config } = ctx.service;
    if (!config.copyDataFrom) return;
    const current = await this.options.api.get({ ...databaseWorkload(release), namespace: namespaceOf(release.scope), name: release.name });
    if (current?.metadata?.annotations?.[COPIED_FROM_ANNOTATION]) return;
    // Only PostgreSQL runs as an operator's Cluster: a Redis source is a StatefulSet.
    const operatorServed = config.engine === "postgresql" && (await this.servesCloudNativePg());
    const source = await findCopySource(this.options.api, config.copyDataFrom.serviceId, config.engine, operatorServed);
    release.copyFrom = { serviceId: config.copyDataFrom.serviceId, source };
    ctx.output("system", `The data of ${source.name} (namespace ${source.namespace}) will be copied into this database once it is ready`);
  }

  /**
   * Copies the source's data into the new database with a Job in its namespace (copy-data.ts),
   * awaited through a watch; then marks the database as copied (its own field manager), so that
   * no later deployment copies again. The source's credentials leave the clone's namespace when
   * the Job is done. A failed copy fails the deployment with the Job pod's last lines.
   */
  private async copyData(ctx: StepContext<DatabaseServiceSpec>, release: Pending, { serviceId, source }: NonNullable<Pending["copyFrom"]>): Promise<void> {
    const { api } = this.options;
    const service = ctx.service;
    const namespace = namespaceOf(release.scope);
    const operator = release.features.cloudNativePg;
    const credentials = await api.get<V1Secret>({ apiVersion: "v1", kind: "Secret", namespace: source.namespace, name: source.secret.name });
    if (!credentials) throw new StepError(`the database to copy data from (${source.name} in ${source.namespace}) has no Secret ${source.secret.name}`);
    const runId = ctx.deploymentId.slice(0, 8);
    const name = copyJobName(service.name, runId);
    const secret = copySourceSecret(release.scope, service, release.meta, source, credentials);
    let ended = false;
    try {
      await this.applyAll(ctx, [secret, copyJobManifest(release.scope, service, release.meta, source, { operator }, runId)]);
      ctx.output("system", `Copying the data of ${source.name} (namespace ${source.namespace}) into this database with ${source.image}`);
      const state = await this.follow<V1Job>(ctx, "batch/v1", "Job", namespace, name, jobRollout, ctx.signal);
      ended = true;
      const { items: pods } = await api.list<V1Pod>("v1", "Pod", { namespace, labelSelector: selector({ "batch.kubernetes.io/job-name": name }) });
      if (state.state === "failed")
        throw new StepError(`copying the data of ${source.name} failed: job ${name} ${state.message}\n${await this.describePods(namespace, pods)}`);
      const succeeded = pods.find((pod) => pod.status?.phase === "Succeeded");
      if (succeeded)
        for (const line of await lastLines(api, namespace, succeeded.metadata!.name!, "copy", { previous: false, count: 20 })) ctx.output("stdout", line);
      await api.apply(copiedMarker(databaseWorkload(release), release.name, namespace, serviceId), { fieldManager: COPY_MANAGER });
      ctx.output("system", `The data of ${source.name} is copied: later deployments of this database copy nothing`);
    } finally {
      // Cleaning up does not hide what happened to the copy: a removal the cluster refuses is the engine log's.
      const remove = (ref: ObjectRef) =>
        api.delete(ref).catch((error: unknown) => this.options.logger.warn({ err: error, ref }, "could not remove an object of a database copy"));
      await remove({ apiVersion: "v1", kind: "Secret", namespace, name: secret.metadata!.name! });
      // Canceled while it ran: the Job goes too (it could not read the source's credentials any more).
      if (!ended) await remove({ apiVersion: "batch/v1", kind: "Job", namespace, name });
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  private pendingOf(handle: ReleaseHandle): Pending {
    const release = this.pending.get(handle.releaseId);
    if (!release) throw new Error(`unknown release ${handle.releaseId}`);
    return release;
  }

  /** Applies in order, each object after the one it depends on, and says what it applied. */
  private async applyAll(ctx: StepContext<ServiceSpec>, objects: KubernetesObject[]): Promise<void> {
    for (const object of objects) {
      try {
        await this.options.api.apply(object);
      } catch (error) {
        throw new StepError(`the cluster refused ${object.kind} ${object.metadata?.name}: ${(error as Error).message}`, { cause: error });
      }
      ctx.output("system", `Applied ${object.kind} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata?.name}`);
    }
  }

  /** Follows one object's rollout through list and watch, telling each new progress message, until it is available or failed. */
  private follow<T extends KubernetesObject>(
    ctx: StepContext<ServiceSpec>,
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
    decide: (object: T) => RolloutState,
    signal: AbortSignal,
  ): Promise<RolloutState> {
    let told = "";
    return observe<T, RolloutState>(
      this.options.api,
      { apiVersion, kind, namespace, fieldSelector: `metadata.name=${name}` },
      ([object]) => {
        if (!object) return null;
        const state = decide(object);
        if (state.message !== told) ctx.output("system", `${kind} ${name}: ${state.message}`);
        told = state.message;
        return state.state === "progressing" ? null : state;
      },
      { signal, retry: this.options.retry, onReconnect: (reason) => ctx.output("system", `${reason}; listing ${kind} ${name} again`) },
    );
  }

  /** Undoes a Deployment's rollout to its previous revision, or removes it when there is none; says which. */
  private async undo(namespace: string, name: string): Promise<string> {
    const { api } = this.options;
    const deployment = await api.get<V1Deployment>({ apiVersion: "apps/v1", kind: "Deployment", namespace, name });
    if (!deployment) return "nothing to undo";
    const { items } = await api.list<V1ReplicaSet>("apps/v1", "ReplicaSet", {
      namespace,
      labelSelector: selector(deployment.spec!.selector.matchLabels ?? {}),
    });
    const previous = previousReplicaSet(deployment, items);
    if (!previous) {
      await api.delete({ apiVersion: "apps/v1", kind: "Deployment", namespace, name });
      return "no previous revision: the Deployment was removed";
    }
    const rollback = rollbackManifest(deployment, previous);
    await api.apply(rollback);
    return `undone to the previous revision (release ${rollback.metadata?.annotations?.[ANNOTATION.release] ?? "unknown"})`;
  }

  /** Whether a metrics server serves PodMetrics, asked again after a minute (one may be installed, or go). */
  private async servesMetrics(): Promise<boolean> {
    if (this.metricsServed && Date.now() - this.metricsServed.at < 60_000) return this.metricsServed.value;
    const value = await this.options.api.serves(METRICS_API_VERSION, POD_METRICS).catch((error: unknown) => {
      // Registered but not answering (an APIService whose metrics server is down): no sample this time, asked again next time.
      throw new StepError(`the metrics API did not answer: ${(error as Error).message}`);
    });
    if (!value && this.metricsServed?.value !== false)
      this.options.logger.warn("no metrics server: the cluster does not serve metrics.k8s.io, so services show no CPU or memory (install metrics-server)");
    this.metricsServed = { value, at: Date.now() };
    return value;
  }

  private servesCloudNativePg(): Promise<boolean> {
    return this.options.api.serves(CNPG_API_VERSION, CNPG_KIND);
  }

  /**
   * What a release's manifests depend on in the cluster: a PostgreSQL DATABASE is a CloudNativePG
   * Cluster when the operator is installed, unless it already runs as a StatefulSet (its data is
   * in that volume: moving it is the user's call, not a redeploy's); every service reads the
   * connection variables of the environment's operator-run databases from the operator's Secrets.
   */
  private async featuresFor(service: ServiceSpec, namespace: string): Promise<ClusterFeatures> {
    if (!(await this.servesCloudNativePg())) return NO_FEATURES;
    const { items } = await this.options.api.list<CnpgCluster>(CNPG_API_VERSION, CNPG_KIND, { namespace, labelSelector: selector(MANAGED_BY) });
    const operatorDatabases = items.map((cluster) => cluster.metadata.annotations?.[ANNOTATION.service]).filter((name): name is string => Boolean(name));
    if (service.kind !== "DATABASE" || service.config.engine !== "postgresql") return { cloudNativePg: false, operatorDatabases };
    const statefulSet = await this.options.api.get({ apiVersion: "apps/v1", kind: "StatefulSet", namespace, name: kubernetesObjectName(service.name) });
    return statefulSet ? { cloudNativePg: false, operatorDatabases, keptStatefulSet: true } : { cloudNativePg: true, operatorDatabases };
  }

  /** The reasons of the operator's instance pods (they carry its cluster label, not the release's). */
  private async operatorPodReasons(namespace: string, name: string): Promise<string> {
    const { items } = await this.options.api.list<V1Pod>("v1", "Pod", { namespace, labelSelector: selector({ [CNPG_LABEL.cluster]: name }) });
    return this.describePods(namespace, items);
  }

  private async podReasons(namespace: string, serviceId: string, releaseId: string): Promise<string> {
    const { items } = await this.options.api.list<V1Pod>("v1", "Pod", {
      namespace,
      labelSelector: selector({ [LABEL.service]: serviceId, [LABEL.release]: releaseId }),
    });
    return this.describePods(namespace, items);
  }

  /** The pods' reasons, with the last log lines of each crashed container (its previous run's, for a restarted one). */
  private async describePods(namespace: string, pods: V1Pod[]): Promise<string> {
    const problems = podProblems(pods);
    const lines = new Map<string, string[]>();
    for (const problem of problems) {
      if (!problem.crashedContainer) continue;
      const restarted = problem.reason === "CrashLoopBackOff";
      lines.set(problem.pod, await lastLines(this.options.api, namespace, problem.pod, problem.crashedContainer, { previous: restarted, count: 20 }));
    }
    return describeProblems(problems, lines);
  }

  /** The kinds of objects a service has, in the order to remove them: what routes to it first, its volumes last. */
  private async objectKinds(): Promise<[string, string][]> {
    return [
      this.options.settings.routing.kind === "gateway" ? ["gateway.networking.k8s.io/v1", "HTTPRoute"] : ["networking.k8s.io/v1", "Ingress"],
      ["v1", "Service"],
      ["apps/v1", "Deployment"],
      ["apps/v1", "StatefulSet"],
      ...((await this.servesCloudNativePg()) ? [[CNPG_API_VERSION, CNPG_KIND] as [string, string]] : []),
      ["batch/v1", "CronJob"],
      ["batch/v1", "Job"],
      ["v1", "Secret"],
      ["v1", "PersistentVolumeClaim"],
    ];
  }

  /** Deletes every object of the service (in `namespace`, or in any); says which. */
  private async removeObjects(serviceId: string, namespace: string | undefined): Promise<string[]> {
    const removed: string[] = [];
    for (const [apiVersion, kind] of await this.objectKinds()) {
      const { items } = await this.options.api.list(apiVersion, kind, {
        ...(namespace ? { namespace } : {}),
        labelSelector: selector({ [LABEL.service]: serviceId }),
      });
      for (const item of items)
        if (await this.options.api.delete({ apiVersion, kind, namespace: item.metadata!.namespace, name: item.metadata!.name! }))
          removed.push(`${kind} ${item.metadata!.name}`);
    }
    this.tracked.delete(serviceId);
    return removed;
  }

  private async removeVariables(namespace: string, serviceId: string, keep: Set<string>): Promise<number> {
    const { items } = await this.options.api.list("v1", "Secret", {
      namespace,
      labelSelector: selector({ [LABEL.service]: serviceId, [LABEL.part]: "variables" }),
    });
    let removed = 0;
    for (const secret of items) {
      const release = secret.metadata?.labels?.[LABEL.release];
      if (release && !keep.has(release) && (await this.options.api.delete({ apiVersion: "v1", kind: "Secret", namespace, name: secret.metadata!.name! })))
        removed += 1;
    }
    return removed;
  }
}

function scopeOf(ctx: StepContext<ServiceSpec>): EnvironmentScope {
  if (!ctx.scope) throw new Error("the kubernetes runtime needs the deployment's scope");
  return ctx.scope;
}

/** The kind of a DATABASE release's workload: a CloudNativePG Cluster or a StatefulSet. */
function databaseWorkload(release: Pending): { apiVersion: string; kind: string } {
  return release.features.cloudNativePg ? { apiVersion: CNPG_API_VERSION, kind: CNPG_KIND } : { apiVersion: "apps/v1", kind: "StatefulSet" };
}

function isRoute(object: KubernetesObject): boolean {
  return object.kind === "Ingress" || object.kind === "HTTPRoute";
}

function replicasOf(service: ServiceSpec): number {
  return service.kind === "APPLICATION" ? service.config.instances : 1;
}

/** The one field a stop or a restart changes: replicas, a CronJob's suspension, or a Cluster's hibernation. */
function scaleManifest(tracked: Tracked, replicas: number): KubernetesObject {
  const workload = tracked.workload!;
  if (workload === "Cluster")
    return {
      apiVersion: CNPG_API_VERSION,
      kind: CNPG_KIND,
      metadata: { name: tracked.name, namespace: tracked.namespace, annotations: { [CNPG_HIBERNATION]: replicas === 0 ? "on" : "off" } },
    };
  return {
    apiVersion: WORKLOADS[workload],
    kind: workload,
    metadata: { name: tracked.name, namespace: tracked.namespace },
    spec: workload === "CronJob" ? { suspend: replicas === 0 } : { replicas },
  } as KubernetesObject;
}

export function selector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

/** A run's outputs: the JSON object of strings it wrote to $SLIPWAY_OUTPUT_FILE, nothing when it wrote none. */
function parseOutputs(message: string): Record<string, string> {
  if (message.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw new StepError("the job's $SLIPWAY_OUTPUT_FILE is not JSON: write an object of strings");
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || Object.values(parsed).some((value) => typeof value !== "string"))
    throw new StepError("the job's $SLIPWAY_OUTPUT_FILE must hold an object of strings");
  return parsed as Record<string, string>;
}
