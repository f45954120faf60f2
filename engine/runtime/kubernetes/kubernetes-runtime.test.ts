/**
 * The kubernetes runtime's logic (issue 18) through the engine's real orchestration, against the
 * KubeApi seam held by the test (testing/scripted-api.ts) with API objects written from the
 * Kubernetes API reference (testing/api-objects.ts). No API server runs here: these tests show
 * what the runtime asks of a cluster and how it decides from what a cluster reports, not that a
 * cluster accepts it (manifests.test.ts checks the objects against the API's schemas).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import type { KubernetesObject, V1Deployment, V1Job, V1Secret, V1StatefulSet } from "@kubernetes/client-node";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { recordingReporter, task } from "../../../test/engine-harness";
import { testToolchains } from "../../../test/support/toolchains";
import { createKubernetesEngine } from "../../kubernetes-engine";
import type { Engine } from "../../orchestrator";
import type { ContainerServiceSpec, DatabaseServiceSpec, EngineTask, JobServiceSpec, ServiceSpec } from "../../protocol";
import { kubernetesNamespace } from "../../protocol/kubernetes-names";
import { KubernetesRuntime } from "./kubernetes-runtime";
import { defaultKubernetesSettings, type KubernetesSettings } from "./settings";
import type { CnpgCluster } from "./cnpg";
import {
  boundClaim,
  cnpgAppSecret,
  copyPod,
  pod,
  podMetrics,
  replicaSetOf,
  withCnpgClusterStatus,
  withDeploymentStatus,
  withJobStatus,
} from "./testing/api-objects";
import { ScriptedKubeApi } from "./testing/scripted-api";
import { container as containerFixture, database as databaseFixture, lifecycleJob as lifecycleJobFixture, redis as redisFixture } from "./testing/services";

const settings: KubernetesSettings = { ...defaultKubernetesSettings, routing: { kind: "ingress", className: "nginx" } };

let home: string;
let api: ScriptedKubeApi;
let engine: Engine;
let recording: ReturnType<typeof recordingReporter>;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-k8s-"));
  api = new ScriptedKubeApi();
  recording = recordingReporter();
  engine = newEngine();
});

afterEach(async () => {
  await engine.shutdown();
  await fs.rm(home, { recursive: true, force: true });
});

function newEngine(): Engine {
  return createKubernetesEngine({
    home,
    routerPort: 0,
    reporter: recording.reporter,
    api,
    settings,
    toolchains: testToolchains,
    tuning: { retry: { baseMs: 1, maxMs: 5 }, statefulSetTimeoutMs: 2_000 },
  });
}

/** A CONTAINER service (no clone, no build Job): what the rollout logic acts on. */
function web(overrides: Partial<ContainerServiceSpec> = {}): ContainerServiceSpec {
  const base = containerFixture as ContainerServiceSpec;
  return {
    ...base,
    id: randomUUID(),
    name: "web",
    domains: ["web-test-shop.apps.example.com"],
    config: { ...base.config, image: { name: "ghcr.io/acme/web", tag: "1" }, user: undefined, readOnlyRootFilesystem: false },
    ...overrides,
  };
}

function namespaceOf(deployment: EngineTask): string {
  const { project, environment } = deployment.snapshot;
  return kubernetesNamespace(project.name, environment.name, environment.id);
}

function steps(deploymentId: string) {
  return recording.eventsOf(deploymentId).map((event) => `${event.step} ${event.status}`);
}

function output(deploymentId: string): string {
  return recording.lines
    .filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deploymentId)
    .map((line) => line.text)
    .join("\n");
}

/** Runs a DEPLOY of `service` until its rollout is watched, then lets `drive` play the cluster's side. */
async function deploy(
  service: ServiceSpec,
  drive: (deployment: V1Deployment, namespace: string) => Promise<void> | void,
  deployment = task("DEPLOY", [service]),
) {
  const running = engine.execute(deployment);
  await api.watching("Deployment");
  const applied = api.stored<V1Deployment>("Deployment", namespaceOf(deployment), "web")!;
  await drive(applied, namespaceOf(deployment));
  await running;
  return deployment;
}

describe("kubernetes runtime: deploying", () => {
  it("applies in order, follows the rollout from watch events, routes, and reports the steps as every runtime does", async () => {
    const service = web();
    const deployment = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 2, updated: 1, available: 0, progressing: "ReplicaSetUpdated", revision: 1 }));
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    expect(steps(deployment.deploymentId)).toEqual([
      "deployment started",
      "build started",
      "build succeeded",
      "start started",
      "start succeeded",
      "health_check started",
      "health_check succeeded",
      "switch started",
      "switch succeeded",
      "drain started",
      "drain succeeded",
      "deployment succeeded",
    ]);
    // Server-side apply, field manager slipway, in dependency order; the route only once the rollout is available.
    expect(api.applied.map(({ object, fieldManager }) => `${object.kind} ${fieldManager}`)).toEqual([
      "Namespace slipway",
      "Secret slipway",
      "Deployment slipway",
      "Service slipway",
      "Ingress slipway",
    ]);
    const text = output(deployment.deploymentId);
    expect(text).toContain("Deployment web: waiting for the controller to see web's new spec");
    expect(text).toContain("Deployment web: 1 old pods pending termination");
    expect(text).toContain("Deployment web: 1 of 1 pods available");
    expect(text).toContain("web-test-shop.apps.example.com now reach web");
    expect(engine.services()).toEqual([expect.objectContaining({ serviceId: service.id, state: "running" })]);
  });

  it("lists again after a watch error and decides from what the cluster says then", async () => {
    const deployment = await deploy(web(), async (applied, namespace) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 0, progressing: "ReplicaSetUpdated", revision: 1 }));
      // The rollout completes while the watch is down: no event tells it, the list after the reconnect does.
      api.seed(withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
      api.failWatches("Deployment", new Error("too old resource version: 1 (42) (410)"));
      void namespace;
    });
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    const text = output(deployment.deploymentId);
    expect(text).toContain("the watch of Deployment failed: too old resource version: 1 (42) (410); listing Deployment web again");
    expect(text).toContain("Deployment web: 1 of 1 pods available");
    expect(api.lists.filter((entry) => entry.startsWith("Deployment ")).length).toBeGreaterThanOrEqual(2);
  });

  it("undoes a rollout past its deadline to the previous revision and fails with the pods' reasons and a crashed container's last lines", async () => {
    const service = web();
    const first = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const previous = api.stored<V1Deployment>("Deployment", namespaceOf(first), "web")!;
    const previousRelease = previous.metadata!.annotations!["slipway.dev/release-id"]!;

    const second = await deploy(
      { ...service, config: { ...service.config, image: { name: "ghcr.io/acme/web", tag: "2" } } },
      (applied, namespace) => {
        const failing = withDeploymentStatus(applied, { replicas: 2, updated: 1, available: 1, progressing: "ProgressDeadlineExceeded", revision: 2 });
        api.seed(replicaSetOf(failing, 1, "5c9f7b6d8", previous.spec!.template), replicaSetOf(failing, 2, "7d4b9c8f6d"));
        const release = applied.spec!.template.metadata!.labels!;
        api.seed(pod("web-7d4b9c8f6d-x2x9q", release, namespace, "crash-loop"));
        api.logLines.set("web-7d4b9c8f6d-x2x9q/app:previous", ["listening on 9000", "Error: Cannot find module '/app/server.js'", "Node.js v22.12.0"]);
        api.emit("MODIFIED", failing);
      },
      task("DEPLOY", [{ ...service, config: { ...service.config, image: { name: "ghcr.io/acme/web", tag: "2" } } }]),
    );
    const failed = recording.eventsOf(second.deploymentId).find((event) => event.step === "health_check" && event.status === "failed");
    expect(failed?.message).toContain("web made no progress within its deadline (180s)");
    expect(failed?.message).toContain(`undone to the previous revision (release ${previousRelease})`);
    expect(failed?.message).toContain(
      "pod web-7d4b9c8f6d-x2x9q: CrashLoopBackOff: exit code 1 (Error), restarted 4 times; last lines:\nlistening on 9000\nError: Cannot find module '/app/server.js'\nNode.js v22.12.0",
    );
    expect(recording.final(second.deploymentId)).toMatchObject({ status: "failed" });
    // The undo applies the Deployment in full with the previous revision's template, its release annotations back.
    const undo = api.applied.at(-1)!;
    expect(undo.fieldManager).toBe("slipway");
    const undone = undo.object as V1Deployment;
    expect(undone.spec!.template.spec!.containers[0]!.image).toBe("ghcr.io/acme/web:1");
    expect(undone.spec!.template.metadata!.labels).not.toHaveProperty("pod-template-hash");
    expect(undone.metadata!.annotations!["slipway.dev/release-id"]).toBe(previousRelease);
    expect(undone.spec!.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    // No route changed: the failed release never reached the switch.
    expect(api.applied.filter(({ object }) => object.kind === "Ingress")).toHaveLength(1);
  });

  it("removes a first release that never became available, and names an image that cannot be pulled and a pod the scheduler cannot place", async () => {
    const deployment = await deploy(web(), (applied, namespace) => {
      const labels = applied.spec!.template.metadata!.labels!;
      api.seed(pod("web-7d4b9c8f6d-aaaaa", labels, namespace, "image-pull"), pod("web-7d4b9c8f6d-bbbbb", labels, namespace, "unschedulable"));
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 0, progressing: "ProgressDeadlineExceeded", revision: 1 }));
    });
    const failed = recording.eventsOf(deployment.deploymentId).find((event) => event.step === "health_check" && event.status === "failed")!;
    expect(failed.message).toContain("no previous revision: the Deployment was removed");
    expect(failed.message).toContain('pod web-7d4b9c8f6d-aaaaa: ImagePullBackOff: Back-off pulling image "ghcr.io/acme/web:missing"');
    expect(failed.message).toContain("pod web-7d4b9c8f6d-bbbbb: Unschedulable: 0/3 nodes are available: 3 Insufficient memory.");
    expect(api.deleted).toContain(`Deployment/${namespaceOf(deployment)}/web`);
  });
});

describe("kubernetes runtime: cancel and databases", () => {
  it("a deployment canceled during its rollout leaves the previous state: a first release is removed", async () => {
    const deployment = task("DEPLOY", [web()]);
    const running = engine.execute(deployment);
    await api.watching("Deployment");
    engine.cancel(deployment.deploymentId);
    await running;
    expect(steps(deployment.deploymentId).slice(-2)).toEqual(["health_check canceled", "deployment canceled"]);
    expect(api.deleted).toEqual([`Deployment/${namespaceOf(deployment)}/web`]);
  });

  it("a DATABASE is ready once its StatefulSet's pods are, and fails with their reasons when they never are", async () => {
    const database = { ...(databaseFixture as DatabaseServiceSpec), id: randomUUID() };
    const deployment = task("DEPLOY", [database]);
    const running = engine.execute(deployment);
    await api.watching("StatefulSet");
    const applied = api.stored<V1StatefulSet>("StatefulSet", namespaceOf(deployment), "db")!;
    // StatefulSetStatus: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/stateful-set-v1/#StatefulSetStatus (v1.33).
    const ready: V1StatefulSet = {
      ...applied,
      status: {
        observedGeneration: applied.metadata!.generation,
        replicas: 1,
        readyReplicas: 1,
        updatedReplicas: 1,
        currentRevision: "db-6c8f9d7b5",
        updateRevision: "db-6c8f9d7b5",
      },
    };
    api.emit("MODIFIED", ready);
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.map(({ object }) => object.kind)).toEqual(["Namespace", "Secret", "Service", "StatefulSet"]);

    const again = task("DEPLOY", [database]);
    const stuck = engine.execute(again);
    await api.watching("StatefulSet");
    const next = api.stored<V1StatefulSet>("StatefulSet", namespaceOf(again), "db")!;
    api.seed(pod("db-0", next.spec!.template.metadata!.labels!, namespaceOf(again), "unschedulable"));
    await stuck;
    expect(recording.eventsOf(again.deploymentId).find((event) => event.step === "health_check" && event.status === "failed")?.message).toMatch(
      /^db was not ready within 2s\npod db-0: Unschedulable: 0\/3 nodes are available: 3 Insufficient memory/,
    );
  });
});

describe("kubernetes runtime: CloudNativePG", () => {
  const CLUSTER = "postgresql.cnpg.io/v1 Cluster";

  it("with the operator installed, a PostgreSQL DATABASE is a Cluster, ready once the operator says so; the environment's services read its <name>-app Secret", async () => {
    api.served.add(CLUSTER);
    const database = { ...(databaseFixture as DatabaseServiceSpec), id: randomUUID() };
    const deployment = task("DEPLOY", [database]);
    const running = engine.execute(deployment);
    await api.watching("Cluster");
    const namespace = namespaceOf(deployment);
    const applied = api.stored<CnpgCluster>("Cluster", namespace, "db")!;
    api.emit("MODIFIED", withCnpgClusterStatus(applied, "setting-up"));
    api.emit("MODIFIED", withCnpgClusterStatus(applied, "healthy"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.map(({ object }) => object.kind)).toEqual(["Namespace", "Service", "Cluster"]);
    expect(recording.eventsOf(deployment.deploymentId).find((event) => event.step === "build" && event.status === "succeeded")?.message).toBe(
      "postgresql as a CloudNativePG Cluster",
    );
    const text = output(deployment.deploymentId);
    expect(text).toContain("Cluster db: Setting up primary, 0 of 1 instances ready");
    expect(text).toContain("Cluster db: 1 of 1 instances ready");

    // A service deployed next in the environment reads the database's variables from the operator's Secret.
    await deploy(web(), (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const env = api.stored<V1Deployment>("Deployment", namespace, "web")!.spec!.template.spec!.containers[0]!.env!;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: "SLIPWAY_DB_URL", valueFrom: { secretKeyRef: { name: "db-app", key: "uri" } } },
        { name: "SLIPWAY_DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db-app", key: "password" } } },
      ]),
    );

    // Stopped, it hibernates; a new engine finds it stopped from the Cluster's annotation.
    await engine.execute(task("STOP", [database]));
    expect(api.applied.at(-1)).toEqual({
      object: { apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster", metadata: { name: "db", namespace, annotations: { "cnpg.io/hibernation": "on" } } },
      fieldManager: "slipway-scale",
    });
    api.emit("MODIFIED", withCnpgClusterStatus(api.stored<CnpgCluster>("Cluster", namespace, "db")!, "hibernated"));
    await engine.shutdown();
    engine = newEngine();
    await engine.start();
    expect(engine.services()).toEqual(expect.arrayContaining([expect.objectContaining({ serviceId: database.id, state: "stopped" })]));

    // Restarted, it wakes from hibernation, and is running once the operator says it is healthy again.
    const restart = engine.execute(task("RESTART", [database]));
    await api.watching("Cluster");
    expect(api.applied.at(-1)).toMatchObject({ object: { metadata: { annotations: { "cnpg.io/hibernation": "off" } } }, fieldManager: "slipway-scale" });
    api.emit("MODIFIED", withCnpgClusterStatus(api.stored<CnpgCluster>("Cluster", namespace, "db")!, "healthy"));
    await restart;
    expect(engine.services()).toEqual(expect.arrayContaining([expect.objectContaining({ serviceId: database.id, state: "running" })]));

    const removal = task("DELETE", [database]);
    await engine.execute(removal);
    expect(api.deleted).toEqual(expect.arrayContaining([`Cluster/${namespace}/db`, `Service/${namespace}/db`]));
  });

  it("fails with the operator's phase and its instance pods' reasons when the Cluster cannot come up", async () => {
    api.served.add(CLUSTER);
    const database = { ...(databaseFixture as DatabaseServiceSpec), id: randomUUID() };
    const deployment = task("DEPLOY", [database]);
    const running = engine.execute(deployment);
    await api.watching("Cluster");
    const namespace = namespaceOf(deployment);
    api.seed(pod("db-1", { "cnpg.io/cluster": "db", "cnpg.io/instanceRole": "primary" }, namespace, "image-pull"));
    api.emit("MODIFIED", withCnpgClusterStatus(api.stored<CnpgCluster>("Cluster", namespace, "db")!, "unrecoverable"));
    await running;
    expect(recording.eventsOf(deployment.deploymentId).find((event) => event.step === "health_check" && event.status === "failed")?.message).toMatch(
      /^db: Cluster is unrecoverable and needs manual intervention \(Instance creation failed for the following jobs: db-1-initdb\. .*\)\npod db-1: ImagePullBackOff/,
    );
  });

  it("a database that already runs as a StatefulSet stays one when the operator comes: its data is in that volume", async () => {
    const database = { ...(databaseFixture as DatabaseServiceSpec), id: randomUUID() };
    const first = task("DEPLOY", [database]);
    const running = engine.execute(first);
    await api.watching("StatefulSet");
    const applied = api.stored<V1StatefulSet>("StatefulSet", namespaceOf(first), "db")!;
    // StatefulSetStatus: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/stateful-set-v1/#StatefulSetStatus (v1.33).
    const ready = { observedGeneration: 1, replicas: 1, readyReplicas: 1, updatedReplicas: 1, currentRevision: "db-1", updateRevision: "db-1" };
    api.emit("MODIFIED", { ...applied, status: ready } as V1StatefulSet);
    await running;

    api.served.add(CLUSTER);
    const again = task("DEPLOY", [database]);
    const redeploy = engine.execute(again);
    await api.watching("StatefulSet");
    const redeployed: V1StatefulSet = { ...api.stored<V1StatefulSet>("StatefulSet", namespaceOf(again), "db")!, status: { ...ready, observedGeneration: 2 } };
    api.emit("MODIFIED", redeployed);
    await redeploy;
    expect(recording.final(again.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.some(({ object }) => object.kind === "Cluster")).toBe(false);
    expect(recording.eventsOf(again.deploymentId).find((event) => event.step === "build" && event.status === "succeeded")?.message).toBe(
      "postgresql in its StatefulSet: CloudNativePG is installed, but the data is in the StatefulSet's volume",
    );
  });
});

describe("kubernetes runtime: a clone made with data", () => {
  const CLUSTER = "postgresql.cnpg.io/v1 Cluster";
  const FEATURE = kubernetesNamespace("shop", "feature", "");
  const featureId = randomUUID();

  /** The clone's deployment: its own environment, so its own namespace. */
  function inFeature(services: ServiceSpec[]): EngineTask {
    const deployment = task("DEPLOY", services);
    deployment.snapshot.environment = { ...deployment.snapshot.environment, id: featureId, name: "feature" };
    return deployment;
  }

  /** The clone of `source` the control plane makes: new credentials, the source's data to copy. */
  function cloneOf(source: DatabaseServiceSpec): DatabaseServiceSpec {
    return {
      ...source,
      id: randomUUID(),
      config: { ...source.config, connection: { ...source.config.connection, password: "clone-pg-password" }, copyDataFrom: { serviceId: source.id } },
    };
  }

  /** StatefulSetStatus once its pod is ready: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/stateful-set-v1/#StatefulSetStatus (v1.33). */
  function readyStatefulSet(namespace: string, name = "db"): V1StatefulSet {
    const applied = api.stored<V1StatefulSet>("StatefulSet", namespace, name)!;
    const status = { replicas: 1, readyReplicas: 1, updatedReplicas: 1, currentRevision: `${name}-6c8f9d7b5`, updateRevision: `${name}-6c8f9d7b5` };
    return { ...applied, status: { ...status, observedGeneration: applied.metadata!.generation } };
  }

  /** Deploys the source database (PostgreSQL unless said) in the `test` environment and lets it become ready. */
  async function deploySource(operator: boolean, fixture = databaseFixture): Promise<DatabaseServiceSpec> {
    const source = { ...(fixture as DatabaseServiceSpec), id: randomUUID() };
    const deployment = task("DEPLOY", [source]);
    const running = engine.execute(deployment);
    await api.watching(operator ? "Cluster" : "StatefulSet");
    api.emit(
      "MODIFIED",
      operator
        ? withCnpgClusterStatus(api.stored<CnpgCluster>("Cluster", namespaceOf(deployment), "db")!, "healthy")
        : readyStatefulSet(namespaceOf(deployment), source.name),
    );
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    return source;
  }

  /** Runs the clone's deployment until its copy Job is watched. */
  async function untilCopy(clone: DatabaseServiceSpec, operator = false) {
    const deployment = inFeature([clone]);
    const running = engine.execute(deployment);
    await api.watching(operator ? "Cluster" : "StatefulSet");
    api.emit(
      "MODIFIED",
      operator ? withCnpgClusterStatus(api.stored<CnpgCluster>("Cluster", FEATURE, "db")!, "healthy") : readyStatefulSet(FEATURE, clone.name),
    );
    await api.watching("Job");
    const name = `${clone.name}-copy-${deployment.deploymentId.slice(0, 8)}`;
    return { deployment, running, name, job: api.stored<V1Job>("Job", FEATURE, name)! };
  }

  it("copies the source StatefulSet's data with a Job in the clone's namespace, awaited through a watch, then never again", async () => {
    const source = await deploySource(false);
    const clone = cloneOf(source);
    const before = api.applied.length;
    const { deployment, running, name, job } = await untilCopy(clone);

    // The source's credentials, as the source's Secret holds them, in a Secret of the clone's namespace; the Job reads both sides from Secrets.
    expect(api.stored<V1Secret>("Secret", FEATURE, "db-copy-source")!.data).toEqual(api.stored<V1Secret>("Secret", "shop-test", "db-credentials")!.data);
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.image).toBe("postgres:17");
    expect(job.spec!.template.spec!.securityContext).toMatchObject({ runAsUser: 999, runAsNonRoot: true });
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: "SOURCE_HOST", value: "db.shop-test.svc" },
        { name: "SOURCE_PORT", value: "5433" },
        { name: "SOURCE_PASSWORD", valueFrom: { secretKeyRef: { name: "db-copy-source", key: "password" } } },
        { name: "TARGET_HOST", value: "db" },
        { name: "TARGET_PASSWORD", valueFrom: { secretKeyRef: { name: "db-credentials", key: "password" } } },
      ]),
    );

    api.seed(copyPod(`${name}-x7k2m`, name, FEATURE, "succeeded"));
    api.logLines.set(`${name}-x7k2m/copy`, ["Copying database shop from db.shop-test.svc:5433 into shop", "Copied: shop holds 4 relations"]);
    api.emit("MODIFIED", withJobStatus(job, "complete"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.slice(before).map(({ object, fieldManager }) => `${object.kind} ${object.metadata!.name} ${fieldManager}`)).toEqual([
      "Namespace shop-feature slipway",
      "Secret db-credentials slipway",
      "Service db slipway",
      "StatefulSet db slipway",
      "Secret db-copy-source slipway",
      `Job ${name} slipway`,
      "StatefulSet db slipway-copy",
    ]);
    // The mark that the copy is done, under its own field manager: the next `slipway` apply keeps it.
    expect(api.applied.at(-1)!.object).toEqual({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db", namespace: FEATURE, annotations: { "slipway.dev/data-copied-from": source.id } },
    });
    expect(api.deleted).toEqual([`Secret/${FEATURE}/db-copy-source`]);
    const text = output(deployment.deploymentId);
    expect(text).toMatch(
      new RegExp(
        [
          "The data of db \\(namespace shop-test\\) will be copied into this database once it is ready",
          "StatefulSet db: 1 of 1 pods ready",
          `Applied Job ${FEATURE}/${name}`,
          "Copying the data of db \\(namespace shop-test\\) into this database with postgres:17",
          `Job ${name}: succeeded after 1 attempt\\(s\\)`,
          "Copying database shop from db.shop-test.svc:5433 into shop",
          "Copied: shop holds 4 relations",
          "The data of db is copied",
        ].join("[^]*"),
      ),
    );
    expect(steps(deployment.deploymentId).at(-1)).toBe("deployment succeeded");

    // A later deployment of the clone finds the mark on the StatefulSet and copies nothing.
    const later = inFeature([clone]);
    const redeploy = engine.execute(later);
    await api.watching("StatefulSet");
    api.emit("MODIFIED", readyStatefulSet(FEATURE));
    await redeploy;
    expect(recording.final(later.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.filter(({ object }) => object.kind === "Job")).toHaveLength(1);
    expect(output(later.deploymentId)).not.toContain("copied");
  });

  it("a copy that fails fails the clone's deployment with the Job pod's last lines, leaves no credentials behind, and is tried again next time", async () => {
    const source = await deploySource(false);
    const clone = cloneOf(source);
    const { deployment, running, name, job } = await untilCopy(clone);
    api.seed(copyPod(`${name}-q9z8x`, name, FEATURE, "failed"));
    api.logLines.set(`${name}-q9z8x/copy`, [
      "Copying database shop from db.shop-test.svc:5433 into shop",
      'psql:<stdin>:412: ERROR:  permission denied to create event trigger "stamp_ddl"',
    ]);
    api.emit("MODIFIED", withJobStatus(job, "backoff-limit"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "failed" });
    expect(recording.eventsOf(deployment.deploymentId).find((event) => event.step === "health_check" && event.status === "failed")?.message).toBe(
      [
        `copying the data of db failed: job ${name} BackoffLimitExceeded: Job has reached the specified backoff limit`,
        `pod ${name}-q9z8x: Error: exit code 3; last lines:`,
        "Copying database shop from db.shop-test.svc:5433 into shop",
        'psql:<stdin>:412: ERROR:  permission denied to create event trigger "stamp_ddl"',
      ].join("\n"),
    );
    expect(api.applied.some(({ fieldManager }) => fieldManager === "slipway-copy")).toBe(false);
    expect(api.deleted).toEqual([`Secret/${FEATURE}/db-copy-source`]);

    // The next deployment copies again, with a Job of its own; canceled while it runs, its Job and the credentials go.
    const next = await untilCopy(clone);
    expect(next.name).not.toBe(name);
    engine.cancel(next.deployment.deploymentId);
    await next.running;
    expect(recording.final(next.deployment.deploymentId)).toMatchObject({ status: "canceled" });
    expect(api.deleted.slice(1)).toEqual([`Secret/${FEATURE}/db-copy-source`, `Job/${FEATURE}/${next.name}`]);
  });

  it("between CloudNativePG Clusters: the operator's image and user, the credentials of its <name>-app Secrets, the mark on the Cluster", async () => {
    api.served.add(CLUSTER);
    const source = await deploySource(true);
    // The operator writes each Cluster's <name>-app Secret; no controller runs here, so the test does.
    api.seed(cnpgAppSecret("db", "shop-test", { user: "shop", password: "operator-made-password", database: "shop" }));
    const clone = cloneOf(source);
    const { deployment, running, name, job } = await untilCopy(clone, true);
    const copied = api.stored<V1Secret>("Secret", FEATURE, "db-copy-source")!.data!;
    const app = api.stored<V1Secret>("Secret", "shop-test", "db-app")!.data!;
    expect(copied).toEqual({ username: app.username, password: app.password, database: app.dbname });
    const pod = job.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsUser: 26, runAsGroup: 26, runAsNonRoot: true });
    expect(pod.containers[0]!.image).toBe("ghcr.io/cloudnative-pg/postgresql:17");
    expect(pod.containers[0]!.env).toEqual(
      expect.arrayContaining([
        { name: "SOURCE_HOST", value: "db.shop-test.svc" },
        { name: "TARGET_USER", valueFrom: { secretKeyRef: { name: "db-app", key: "username" } } },
        { name: "TARGET_DATABASE", valueFrom: { secretKeyRef: { name: "db-app", key: "dbname" } } },
      ]),
    );
    api.seed(copyPod(`${name}-m3n4p`, name, FEATURE, "succeeded", "ghcr.io/cloudnative-pg/postgresql:17"));
    api.emit("MODIFIED", withJobStatus(job, "complete"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.at(-1)).toEqual({
      object: {
        apiVersion: "postgresql.cnpg.io/v1",
        kind: "Cluster",
        metadata: { name: "db", namespace: FEATURE, annotations: { "slipway.dev/data-copied-from": source.id } },
      },
      fieldManager: "slipway-copy",
    });
  });

  it("copies a Redis StatefulSet's keys with a Job of the source's image, whose credentials are Secrets and which reads no database name", async () => {
    const source = await deploySource(false, redisFixture);
    const clone = cloneOf(source);
    const before = api.applied.length;
    const { deployment, running, name, job } = await untilCopy(clone);
    expect(name).toMatch(/^cache-copy-/);

    expect(api.stored<V1Secret>("Secret", FEATURE, "cache-copy-source")!.data).toEqual(api.stored<V1Secret>("Secret", "shop-test", "cache-credentials")!.data);
    const pod = job.spec!.template.spec!;
    expect(pod.containers[0]!.image).toBe("redis:7");
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, runAsGroup: 999, runAsNonRoot: true });
    expect(pod.containers[0]!.command).toEqual(["sh", "-c", expect.stringContaining("redis-cli")]);
    expect(pod.containers[0]!.env).toEqual([
      { name: "SOURCE_HOST", value: "cache.shop-test.svc" },
      { name: "SOURCE_PORT", value: "6380" },
      { name: "SOURCE_USER", valueFrom: { secretKeyRef: { name: "cache-copy-source", key: "username" } } },
      { name: "SOURCE_PASSWORD", valueFrom: { secretKeyRef: { name: "cache-copy-source", key: "password" } } },
      { name: "TARGET_HOST", value: "cache" },
      { name: "TARGET_PORT", value: "6380" },
      { name: "TARGET_USER", valueFrom: { secretKeyRef: { name: "cache-credentials", key: "username" } } },
      { name: "TARGET_PASSWORD", valueFrom: { secretKeyRef: { name: "cache-credentials", key: "password" } } },
    ]);

    api.seed(copyPod(`${name}-r5t6y`, name, FEATURE, "succeeded", "redis:7"));
    api.logLines.set(`${name}-r5t6y/copy`, [
      "Copying the keys of cache.shop-test.svc:6380 into cache",
      "Database 0: 5006 keys copied",
      "Copied: cache holds 5006 keys",
    ]);
    api.emit("MODIFIED", withJobStatus(job, "complete"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.applied.slice(before).map(({ object, fieldManager }) => `${object.kind} ${object.metadata!.name} ${fieldManager}`)).toEqual([
      "Namespace shop-feature slipway",
      "Secret cache-credentials slipway",
      "Service cache slipway",
      "StatefulSet cache slipway",
      "Secret cache-copy-source slipway",
      `Job ${name} slipway`,
      "StatefulSet cache slipway-copy",
    ]);
    expect(api.applied.at(-1)!.object).toEqual({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "cache", namespace: FEATURE, annotations: { "slipway.dev/data-copied-from": source.id } },
    });
    expect(api.deleted).toEqual([`Secret/${FEATURE}/cache-copy-source`]);
    expect(output(deployment.deploymentId)).toMatch(
      new RegExp(
        [
          "The data of cache \\(namespace shop-test\\) will be copied into this database once it is ready",
          "Copying the data of cache \\(namespace shop-test\\) into this database with redis:7",
          "Copying the keys of cache.shop-test.svc:6380 into cache",
          "Copied: cache holds 5006 keys",
          "The data of cache is copied",
        ].join("[^]*"),
      ),
    );
  });

  it("a Redis copy that fails fails the clone's deployment with redis-cli's reason", async () => {
    const source = await deploySource(false, redisFixture);
    const { deployment, running, name, job } = await untilCopy(cloneOf(source));
    api.seed(copyPod(`${name}-w2e3r`, name, FEATURE, "failed", "redis:7"));
    api.logLines.set(`${name}-w2e3r/copy`, [
      "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
      "Could not read the keys of cache.shop-test.svc:6380",
    ]);
    api.emit("MODIFIED", withJobStatus(job, "backoff-limit"));
    await running;
    expect(recording.final(deployment.deploymentId)).toMatchObject({ status: "failed" });
    expect(recording.eventsOf(deployment.deploymentId).find((event) => event.step === "health_check" && event.status === "failed")?.message).toBe(
      [
        `copying the data of cache failed: job ${name} BackoffLimitExceeded: Job has reached the specified backoff limit`,
        `pod ${name}-w2e3r: Error: exit code 3; last lines:`,
        "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
        "Could not read the keys of cache.shop-test.svc:6380",
      ].join("\n"),
    );
    expect(api.applied.some(({ fieldManager }) => fieldManager === "slipway-copy")).toBe(false);
    expect(api.deleted).toEqual([`Secret/${FEATURE}/cache-copy-source`]);
  });

  it("refuses a source that is not on the cluster, or of another engine, before applying anything", async () => {
    const orphan = cloneOf({ ...(databaseFixture as DatabaseServiceSpec), id: randomUUID() });
    const deployment = inFeature([orphan]);
    await engine.execute(deployment);
    expect(recording.eventsOf(deployment.deploymentId).find((event) => event.status === "failed" && event.step !== "deployment")).toMatchObject({
      step: "start",
      message: `the database to copy data from (service ${orphan.config.copyDataFrom!.serviceId}) is not on this cluster: a clone with data must run on its source's cluster, after the source was deployed`,
    });
    expect(api.applied).toEqual([]);

    // A Redis clone whose source (by its service id) is a PostgreSQL database.
    const postgres = await deploySource(false);
    const before = api.applied.length;
    const mismatched = cloneOf({ ...(redisFixture as DatabaseServiceSpec), id: randomUUID() });
    mismatched.config = { ...mismatched.config, copyDataFrom: { serviceId: postgres.id } };
    const wrong = inFeature([mismatched]);
    await engine.execute(wrong);
    expect(recording.eventsOf(wrong.deploymentId).find((event) => event.status === "failed" && event.step !== "deployment")).toMatchObject({
      step: "start",
      message: "the database to copy data from (db in shop-test) runs postgresql, not redis",
    });
    expect(api.applied.length).toBe(before);
  });
});

describe("kubernetes runtime: after a restart, and the whole-service actions", () => {
  it("recovers what runs from the cluster's labels, then stops, restarts and deletes through field managers of their own", async () => {
    const service = web();
    const first = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const releaseId = api.stored<V1Deployment>("Deployment", namespaceOf(first), "web")!.metadata!.annotations!["slipway.dev/release-id"];
    await engine.shutdown();

    // A new engine knows nothing but what the cluster says.
    engine = newEngine();
    await engine.start();
    expect(engine.services()).toEqual([{ serviceId: service.id, releaseId, state: "running", restarts: 0 }]);

    await engine.execute(task("STOP", [service]));
    expect(api.applied.at(-1)).toEqual({
      object: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: namespaceOf(first) }, spec: { replicas: 0 } },
      fieldManager: "slipway-scale",
    });
    expect(engine.services()[0]).toMatchObject({ state: "stopped" });

    const restart = engine.execute(task("RESTART", [service]));
    await api.watching("Deployment");
    api.emit(
      "MODIFIED",
      withDeploymentStatus(api.stored<V1Deployment>("Deployment", namespaceOf(first), "web")!, {
        replicas: 1,
        updated: 1,
        available: 1,
        progressing: "NewReplicaSetAvailable",
        revision: 1,
      }),
    );
    await restart;
    expect(api.applied.at(-1)).toMatchObject({ object: { spec: { replicas: 1 } }, fieldManager: "slipway-scale" });
    expect(engine.services()[0]).toMatchObject({ state: "running" });

    const removal = task("DELETE", [service]);
    await engine.execute(removal);
    expect(recording.final(removal.deploymentId)).toMatchObject({ status: "succeeded" });
    expect(api.deleted).toEqual(
      expect.arrayContaining([`Ingress/${namespaceOf(first)}/web`, `Service/${namespaceOf(first)}/web`, `Deployment/${namespaceOf(first)}/web`]),
    );
    expect(engine.services()).toEqual([]);
  });

  it("a running service's restart is a rollout restart annotation under its own field manager", async () => {
    const service = web();
    const first = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const restart = engine.execute(task("RESTART", [service]));
    await eventuallyApplied("slipway-restart");
    api.emit(
      "MODIFIED",
      withDeploymentStatus(api.stored<V1Deployment>("Deployment", namespaceOf(first), "web")!, {
        replicas: 1,
        updated: 1,
        available: 1,
        progressing: "NewReplicaSetAvailable",
        revision: 2,
      }),
    );
    await restart;
    const applied = api.applied.find(({ fieldManager }) => fieldManager === "slipway-restart")!.object as V1Deployment;
    expect(Object.keys(applied.spec!.template.metadata!.annotations!)).toEqual(["kubectl.kubernetes.io/restartedAt"]);
  });
});

describe("kubernetes runtime: metrics", () => {
  it("sums the service's pods from metrics.k8s.io into the sample every runtime reports", async () => {
    api.served.add("metrics.k8s.io/v1beta1 PodMetrics");
    const service = web({ config: { ...web().config, resources: { memoryMb: 256 } } } as Partial<ContainerServiceSpec>);
    const deployment = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 2, updated: 2, available: 2, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const namespace = namespaceOf(deployment);
    const labels = { "slipway.dev/service-id": service.id, "slipway.dev/release-id": "r1" };
    const template = api.stored<V1Deployment>("Deployment", namespace, "web")!.spec!.template.spec!;
    const running = (name: string, restarts: number) => {
      const base = pod(name, labels, namespace, "running");
      return { ...base, spec: template, status: { ...base.status, containerStatuses: [{ ...base.status!.containerStatuses![0]!, restartCount: restarts }] } };
    };
    api.seed(running("web-7d4b9c8f6d-a1", 1), running("web-7d4b9c8f6d-b2", 2));
    api.seed(
      podMetrics("web-7d4b9c8f6d-a1", labels, namespace, [{ cpu: "250000000n", memory: "102400Ki" }]),
      podMetrics("web-7d4b9c8f6d-b2", labels, namespace, [{ cpu: "125000000n", memory: "51200Ki" }]),
      // Another service's pod in the namespace is not this one's.
      podMetrics("other-1", { "slipway.dev/service-id": randomUUID() }, namespace, [{ cpu: "1", memory: "1Gi" }]),
    );
    expect(await engine.sample!(service.id)).toEqual({
      at: "2026-12-06T09:40:00.000Z",
      cpuPercent: 37.5,
      memoryBytes: 150 * 1024 * 1024,
      memoryLimitBytes: 2 * 256 * 1024 * 1024,
      restarts: 3,
    });
    const [sample] = await engine.metrics!();
    expect(sample).toMatchObject({ serviceId: service.id, cpuPercent: 37.5, memoryBytes: 150 * 1024 * 1024, restarts: 3 });
  });

  it("without a metrics server, a sample says so and the engine's metrics have none instead of failing", async () => {
    const service = web();
    await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    await expect(engine.sample!(service.id)).rejects.toThrow("no metrics server: the cluster does not serve metrics.k8s.io");
    await expect(engine.metrics!()).resolves.toEqual([]);
    expect(api.lists.some((list) => list.startsWith("PodMetrics"))).toBe(false);
  });
});

describe("kubernetes runtime: leftovers", () => {
  it("reports every service it holds objects of with its volumes' size, and purges the ones the control plane names, volumes included", async () => {
    const live = web();
    const deployment = await deploy(live, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const namespace = namespaceOf(deployment);
    // A database whose service is gone, in an environment's namespace that stays (another environment's, deleted meanwhile, alike).
    const gone = randomUUID();
    const elsewhere = "shop-staging-0f3a9c2b";
    const labels = { "app.kubernetes.io/managed-by": "slipway", "slipway.dev/service-id": gone, "slipway.dev/service-kind": "DATABASE" };
    api.seed(
      { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "old-db", namespace: elsewhere, labels } } as KubernetesObject,
      { apiVersion: "v1", kind: "Secret", metadata: { name: "old-db-credentials", namespace: elsewhere, labels } } as KubernetesObject,
      boundClaim("data-old-db-0", { "slipway.dev/service-id": gone }, elsewhere, "10Gi", "10Gi"),
    );
    const inventory = await engine.inventory!();
    expect(inventory).toEqual(
      expect.arrayContaining([
        { serviceId: live.id, bytes: 0 },
        { serviceId: gone, bytes: 10 * 1024 ** 3 },
      ]),
    );
    expect(inventory).toHaveLength(2);

    await engine.purge!([gone, "../not-a-service"]);
    expect(api.deleted).toEqual([
      `StatefulSet/${elsewhere}/old-db`,
      `Secret/${elsewhere}/old-db-credentials`,
      `PersistentVolumeClaim/${elsewhere}/data-old-db-0`,
    ]);
    expect((await engine.inventory!()).map((usage) => usage.serviceId)).toEqual([live.id]);
    expect(api.stored("Deployment", namespace, "web")).toBeDefined();
  });
});

describe("kubernetes runtime: shells", () => {
  it("opens a shell in the newest running pod of the service, its environment set with env", async () => {
    const service = web();
    const first = await deploy(service, (applied) => {
      api.emit("MODIFIED", withDeploymentStatus(applied, { replicas: 1, updated: 1, available: 1, progressing: "NewReplicaSetAvailable", revision: 1 }));
    });
    const labels = api.stored<V1Deployment>("Deployment", namespaceOf(first), "web")!.spec!.template.metadata!.labels!;
    api.seed(pod("web-7d4b9c8f6d-crash", labels, namespaceOf(first), "image-pull"), pod("web-7d4b9c8f6d-ok", labels, namespaceOf(first), "running"));
    const session = await engine.exec!(service.id, ["sh"], { tty: true, env: { TERM: "xterm-256color" }, cols: 120, rows: 40 });
    expect(api.execs).toEqual([{ pod: "web-7d4b9c8f6d-ok", container: "app", argv: ["env", "TERM=xterm-256color", "sh"], tty: true }]);
    expect(String(session.read())).toBe("$ ");
    expect(await session.exited).toBe(0);
  });
});

describe("kubernetes runtime: jobs", () => {
  it("runs a lifecycle JOB as a Job, waits for it through a watch and passes on the outputs from its termination message", async () => {
    const base = lifecycleJobFixture as JobServiceSpec;
    const runtime = new KubernetesRuntime({
      api,
      settings,
      home,
      logger: pino({ level: "silent" }),
      serviceLog: () => undefined,
      images: { toolchains: testToolchains },
      retry: { baseMs: 1, maxMs: 5 },
    });
    const deployment = task("DEPLOY", [base]);
    const ctx = {
      deploymentId: deployment.deploymentId,
      service: base,
      scope: deployment.snapshot,
      signal: new AbortController().signal,
      trusted: false,
      isolateLoopback: false,
      databasePorts: [],
      output: () => undefined,
    };
    const handle = await runtime.newRelease(ctx);
    // What build would have set: the image the build Job pushed.
    Object.assign((runtime as unknown as { pending: Map<string, { image: string }> }).pending.get(handle.releaseId)!, {
      image: "registry.example.com/migrate:1",
    });
    const running = runtime.runJob(ctx, handle, "start");
    await api.watching("Job");
    const name = `migrate-start-${deployment.deploymentId.slice(0, 8)}`;
    const namespace = namespaceOf(deployment);
    api.seed(pod(`${name}-k7v2p`, { "batch.kubernetes.io/job-name": name }, namespace, "succeeded", { message: '{"MIGRATED_TO":"42"}' }));
    api.emit("MODIFIED", withJobStatus(api.stored<V1Job>("Job", namespace, name)!, "complete"));
    await expect(running).resolves.toEqual({ message: "succeeded after 1 attempt(s)", outputs: { MIGRATED_TO: "42" } });
    expect(api.applied.map(({ object }) => object.kind)).toEqual(["Namespace", "Secret", "Job"]);

    // A re-delivered task finds its Job done: nothing runs twice.
    await expect(runtime.runJob(ctx, handle, "start")).resolves.toMatchObject({ outputs: { MIGRATED_TO: "42" } });

    const next = { ...ctx, deploymentId: randomUUID() };
    const again = runtime.runJob(next, handle, "start");
    await api.watching("Job");
    const failing = `migrate-start-${next.deploymentId.slice(0, 8)}`;
    api.seed(pod(`${failing}-q9z8x`, { "batch.kubernetes.io/job-name": failing }, namespace, "crash-loop"));
    api.logLines.set(`${failing}-q9z8x/app:previous`, ["migrating…", 'error: relation "users" already exists']);
    api.emit("MODIFIED", withJobStatus(api.stored<V1Job>("Job", namespace, failing)!, "backoff-limit"));
    await expect(again).rejects.toThrow(
      /failed: BackoffLimitExceeded: Job has reached the specified backoff limit\n.*CrashLoopBackOff.*\nmigrating…\nerror: relation "users" already exists/s,
    );
  });
});

async function eventuallyApplied(fieldManager: string): Promise<KubernetesObject> {
  for (let tries = 0; tries < 200; tries++) {
    const found = api.applied.find((entry) => entry.fieldManager === fieldManager);
    if (found) return found.object;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`nothing applied by ${fieldManager}`);
}
