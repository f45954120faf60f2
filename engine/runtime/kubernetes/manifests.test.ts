import type { KubernetesObject, V1Container, V1CronJob, V1Deployment, V1Job, V1StatefulSet } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { kubernetesInstallManifests } from "../../protocol/kubernetes-install";
import type { DatabaseServiceSpec } from "../../protocol";
import { StepError } from "../runtime";
import { buildJobManifest, buildSecretManifest } from "./build";
import { type CnpgCluster, cnpgClusterManifest, operatorDatabaseEnv } from "./cnpg";
import { copiedMarker, copyJobManifest, type CopySource, copySourceSecret } from "./copy-data";
import { POSTGRES_COPY_SCRIPT, REDIS_COPY_SCRIPT } from "./copy-scripts";
import { lifecycleJobManifest } from "./jobs";
import { namespaceManifest, releaseManifests } from "./manifests";
import { base64 } from "./secrets";
import { defaultKubernetesSettings, type KubernetesSettings } from "./settings";
import { validateManifest } from "./testing/schemas";
import { application, container, cronJob, database, lifecycleJob, redis, release, scope } from "./testing/services";

const ingress: KubernetesSettings = {
  ...defaultKubernetesSettings,
  routing: { kind: "ingress", className: "nginx" },
  storageClass: "fast-ssd",
  registry: "registry.example.com/slipway",
};
const gateway: KubernetesSettings = { ...ingress, routing: { kind: "gateway", namespace: "gateways", name: "public" } };

const IMAGE = "registry.example.com/slipway/shop-production/web:20261206093000-7e2a91c4";
/** An image built on the engine's host (host-builds.ts) is deployed by the digest its registry stored. */
const DIGEST_IMAGE = "registry.example.com/slipway/shop-production/web@sha256:8646abfd4e5f3b45f4473cdd249dd577fce0e97711ae964ad76162d78a3ae0ac";

const buildInput = {
  namespace: "slipway-system",
  scope,
  service: application as never,
  release,
  repository: { commit: "4f2c1e9d2b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e", secret: "build-web-20261206093000-7e2a91c4", deployKey: false },
  dockerfile: { context: "", dockerfile: "Dockerfile", target: "runtime", buildArgs: ["NPM_TOKEN"] },
  destination: IMAGE,
  cache: "registry.example.com/slipway/shop-production/web/cache",
  registrySecret: "registry-push",
  timeoutSeconds: 900,
};

/** A deploy key (its body stands for an ed25519 key's) and the host key the engine's clone accepted. */
const DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-deploy-key-secret\n-----END OPENSSH PRIVATE KEY-----";
const KNOWN_HOSTS = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";

/** The environment's `db` runs as a CloudNativePG Cluster. */
const withOperatorDatabase = { cloudNativePg: true, operatorDatabases: ["db"] };

/** The clone of `database` (new credentials) whose data a Job copies from the source's, in another namespace. */
const clone = { ...database, config: { ...database.config, copyDataFrom: { serviceId: "9e6a4397-c5a6-42e7-b3b4-5f6071829304" } } } as DatabaseServiceSpec;
const statefulSetSource: CopySource = {
  namespace: "shop-staging",
  name: "db",
  host: "db.shop-staging.svc",
  port: 5433,
  image: "postgres:17",
  uid: 999,
  secret: { name: "db-credentials", keys: { username: "username", password: "password", database: "database" } },
};
const clusterSource: CopySource = {
  ...statefulSetSource,
  image: "ghcr.io/cloudnative-pg/postgresql:17",
  uid: 26,
  secret: { name: "db-app", keys: { username: "username", password: "password", database: "dbname" } },
};
/** The source's credentials Secret as the cluster holds it (data base64, as the API returns it). */
const sourceCredentials = {
  apiVersion: "v1",
  kind: "Secret",
  data: { username: base64("shop"), password: base64("source-pg-password-secret"), database: base64("shop"), dbname: base64("shop") },
};

/** A clone of `redis` whose keys a Job copies from the source's StatefulSet, its credentials as the cluster holds them. */
const redisClone = { ...redis, config: { ...redis.config, copyDataFrom: { serviceId: "0a7b5c08-d6e7-4f80-a1b2-3c4d5e6f7081" } } } as DatabaseServiceSpec;
const redisSource: CopySource = {
  namespace: "shop-staging",
  name: "cache",
  host: "cache.shop-staging.svc",
  port: 6380,
  image: "redis:7",
  uid: 999,
  secret: { name: "cache-credentials", keys: { username: "username", password: "password", database: "database" } },
};
const redisSourceCredentials = {
  apiVersion: "v1",
  kind: "Secret",
  data: { username: base64("default"), password: base64("source-redis-password-secret"), database: base64("0") },
};

/**
 * The clone's Cluster once the copy's mark is applied. The CRD requires `spec`, which the mark
 * (one annotation, under its own field manager) does not carry: server-side apply validates the
 * object the mark is merged into, so that object is what is checked.
 */
function markedCluster(): CnpgCluster {
  const cluster = cnpgClusterManifest(scope, clone, release, ingress);
  const mark = copiedMarker({ apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster" }, "db", "shop-production", clone.config.copyDataFrom!.serviceId);
  return { ...cluster, metadata: { ...cluster.metadata, annotations: { ...cluster.metadata.annotations, ...mark.metadata!.annotations } } };
}

/** Every manifest the runtime can produce, for each service kind and option. */
const produced: [string, KubernetesObject[]][] = [
  ["namespace", [namespaceManifest(scope)]],
  ["APPLICATION behind an Ingress", releaseManifests(scope, application, release, ingress, IMAGE)],
  ["APPLICATION behind an HTTPRoute", releaseManifests(scope, application, release, gateway, IMAGE)],
  ["APPLICATION on the default ingress class", releaseManifests(scope, application, release, defaultKubernetesSettings, IMAGE)],
  ["APPLICATION built on the engine's host, by digest", releaseManifests(scope, application, release, ingress, DIGEST_IMAGE)],
  ["CONTAINER with credentials, a user and a read-only root", releaseManifests(scope, container, release, ingress, "ghcr.io/acme/proxy:2.1")],
  ["PostgreSQL", releaseManifests(scope, database, release, ingress, "")],
  ["PostgreSQL as a CloudNativePG Cluster", releaseManifests(scope, database, release, ingress, "", { cloudNativePg: true, operatorDatabases: [] })],
  [
    "CloudNativePG Cluster on the default storage class",
    releaseManifests(scope, database, release, defaultKubernetesSettings, "", { cloudNativePg: true, operatorDatabases: [] }),
  ],
  ["APPLICATION reading an operator's database", releaseManifests(scope, application, release, ingress, IMAGE, withOperatorDatabase)],
  ["cron JOB reading an operator's database", releaseManifests(scope, cronJob, release, ingress, IMAGE, withOperatorDatabase)],
  ["Redis on the default storage class", releaseManifests(scope, redis, release, defaultKubernetesSettings, "")],
  ["cron JOB", releaseManifests(scope, cronJob, release, ingress, IMAGE)],
  [
    "lifecycle JOB",
    [...releaseManifests(scope, lifecycleJob, release, ingress, IMAGE), lifecycleJobManifest(scope, lifecycleJob as never, release, IMAGE, "start", "a1b2c3")],
  ],
  [
    "a clone's data copy from a StatefulSet into a StatefulSet",
    [
      copySourceSecret(scope, clone, release, statefulSetSource, sourceCredentials),
      copyJobManifest(scope, clone, release, statefulSetSource, { operator: false }, "7e2a91c4"),
      copiedMarker({ apiVersion: "apps/v1", kind: "StatefulSet" }, "db", "shop-production", clone.config.copyDataFrom!.serviceId),
    ],
  ],
  [
    "a clone's data copy between CloudNativePG Clusters",
    [
      copySourceSecret(scope, clone, release, clusterSource, sourceCredentials),
      copyJobManifest(scope, clone, release, clusterSource, { operator: true }, "7e2a91c4"),
      markedCluster(),
    ],
  ],
  [
    "a clone's Redis data copy between StatefulSets",
    [
      copySourceSecret(scope, redisClone, release, redisSource, redisSourceCredentials),
      copyJobManifest(scope, redisClone, release, redisSource, { operator: false }, "7e2a91c4"),
      copiedMarker({ apiVersion: "apps/v1", kind: "StatefulSet" }, "cache", "shop-production", redisClone.config.copyDataFrom!.serviceId),
    ],
  ],
  [
    "kaniko build",
    [
      buildSecretManifest(buildInput, "https://x:git-token-secret@git.example.com/shop/web.git", { NPM_TOKEN: "npm-token-secret" }),
      buildJobManifest({ ...buildInput, builder: "kaniko" }),
    ],
  ],
  ["buildkit build", [buildJobManifest({ ...buildInput, builder: "buildkit" })]],
  [
    "build from an ssh repository with a deploy key",
    [
      buildSecretManifest(buildInput, "git@git.example.com:shop/web.git", {}, { key: DEPLOY_KEY, knownHosts: KNOWN_HOSTS }),
      buildJobManifest({ ...buildInput, builder: "kaniko", repository: { ...buildInput.repository, deployKey: true } }),
    ],
  ],
  [
    "engine install",
    kubernetesInstallManifests({
      controlPlaneUrl: "https://slipway.example.com",
      engineToken: "swe_token",
      image: "slipway-engine:0.1.0",
    }) as KubernetesObject[],
  ],
];

function find<T>(objects: KubernetesObject[], kind: string): T {
  const object = objects.find((candidate) => candidate.kind === kind);
  if (!object) throw new Error(`no ${kind}`);
  return object as T;
}

function app(objects: KubernetesObject[]): V1Container {
  return find<V1Deployment>(objects, "Deployment").spec!.template.spec!.containers[0]!;
}

describe("Kubernetes manifests", () => {
  it.each(produced)("%s: valid against the schemas of Kubernetes 1.33 and 1.36 (CloudNativePG 1.30's for its Cluster)", (_, objects) => {
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) validateManifest(object);
  });

  it("the schema check fails on a field of the wrong type and on a field the API does not know", () => {
    const deployment = find<V1Deployment>(releaseManifests(scope, application, release, ingress, IMAGE), "Deployment");
    const wrongType = structuredClone(deployment);
    (wrongType.spec!.template.spec!.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = "3000";
    expect(() => validateManifest(wrongType)).toThrow(/containerPort must be integer/);
    const unknown = structuredClone(deployment);
    (unknown.spec!.template.spec!.containers[0] as unknown as Record<string, unknown>).imagePolicy = "Always";
    expect(() => validateManifest(unknown)).toThrow(/spec\.template\.spec\.containers\[0\]\.imagePolicy/);
  });

  it("the CloudNativePG schema check fails on a field of the wrong type and on a field the CRD does not declare", () => {
    const cluster = find<CnpgCluster>(releaseManifests(scope, database, release, ingress, "", withOperatorDatabase), "Cluster");
    const wrongType: object = { ...cluster, spec: { ...cluster.spec, instances: "1" } };
    expect(() => validateManifest(wrongType)).toThrow(/\/spec\/instances must be integer/);
    const undeclared: object = { ...cluster, spec: { ...cluster.spec, storage: { ...cluster.spec.storage, sizeLimit: "1Gi" } } };
    expect(() => validateManifest(undeclared)).toThrow(/\/spec\/storage must NOT have additional properties/);
  });

  it("no variable, password or registry credential appears outside a Secret", () => {
    for (const [, objects] of produced) {
      const text = JSON.stringify(objects.filter((object) => object.kind !== "Secret"));
      for (const secret of [
        "sk_live_do-not-print-me",
        "pg-password-secret",
        "redis-password-secret",
        "ghp_registry-secret",
        "swe_token",
        "git-token-secret",
        "npm-token-secret",
        "deploy-key-secret",
        "source-pg-password-secret",
        "source-redis-password-secret",
      ])
        expect(text).not.toContain(secret);
    }
    const secret = find<{ data: Record<string, string> }>(releaseManifests(scope, application, release, ingress, IMAGE), "Secret");
    expect(Buffer.from(secret.data.STRIPE_KEY!, "base64").toString()).toBe("sk_live_do-not-print-me");
    expect(app(releaseManifests(scope, application, release, ingress, IMAGE)).envFrom).toEqual([{ secretRef: { name: "web-env-7e2a91c4" } }]);
  });

  it("one namespace per environment, labelled with its organization, project and environment", () => {
    expect(namespaceManifest(scope).metadata).toMatchSnapshot();
  });

  it("an APPLICATION rolls out with no unavailable pod, probes from its health check, its resources and a restrictive security context", () => {
    const objects = releaseManifests(scope, application, release, ingress, IMAGE);
    const deployment = find<V1Deployment>(objects, "Deployment");
    expect(objects.map((object) => object.kind)).toEqual(["Secret", "Deployment", "Service", "Ingress"]);
    expect(deployment.spec!.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(deployment.spec!.progressDeadlineSeconds).toBe(150);
    expect({
      labels: deployment.metadata!.labels,
      annotations: deployment.metadata!.annotations,
      template: deployment.spec!.template.metadata,
      pod: { ...deployment.spec!.template.spec, containers: undefined },
      container: app(objects),
    }).toMatchSnapshot();
  });

  it("routes the domains through an Ingress of the configured class, or an HTTPRoute on the configured Gateway", () => {
    expect(find(releaseManifests(scope, container, release, ingress, "ghcr.io/acme/proxy:2.1"), "Ingress")).toMatchObject({
      spec: {
        ingressClassName: "nginx",
        rules: [
          {
            host: "proxy-production-shop.apps.example.com",
            http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "s-1proxy", port: { name: "http" } } } }] },
          },
          { host: "proxy.example.com" },
        ],
      },
    });
    expect(find(releaseManifests(scope, application, release, gateway, IMAGE), "HTTPRoute")).toMatchObject({
      spec: {
        parentRefs: [{ name: "public", namespace: "gateways" }],
        hostnames: ["web-production-shop.apps.example.com"],
        rules: [{ backendRefs: [{ name: "web", port: 80 }] }],
      },
    });
    expect(find<{ spec: object }>(releaseManifests(scope, application, release, defaultKubernetesSettings, IMAGE), "Ingress").spec).not.toHaveProperty(
      "ingressClassName",
    );
    expect(releaseManifests(scope, { ...application, domains: [] }, release, ingress, IMAGE).map((object) => object.kind)).toEqual([
      "Secret",
      "Deployment",
      "Service",
    ]);
  });

  it("a CONTAINER runs as its numeric user with a read-only root, pulls with its credentials, and refuses a user name", () => {
    const objects = releaseManifests(scope, container, release, ingress, "ghcr.io/acme/proxy:2.1");
    const deployment = find<V1Deployment>(objects, "Deployment");
    expect({ pod: { ...deployment.spec!.template.spec, containers: undefined }, container: app(objects) }).toMatchSnapshot();
    const pull = objects.find((object) => object.kind === "Secret" && (object as { type?: string }).type === "kubernetes.io/dockerconfigjson") as {
      data: Record<string, string>;
    };
    expect(JSON.parse(Buffer.from(pull.data[".dockerconfigjson"]!, "base64").toString())).toMatchObject({ auths: { "ghcr.io": { username: "acme" } } });
    const named = { ...container, config: { ...container.config, user: "nginx" } } as typeof container;
    expect(() => releaseManifests(scope, named, release, ingress, "x")).toThrow(StepError);
    expect(() => releaseManifests(scope, named, release, ingress, "x")).toThrow("set user to uid or uid:gid instead of nginx");
  });

  it("a DATABASE is a StatefulSet with a volume of the configured storage class, its credentials from a Secret", () => {
    const statefulSet = find<V1StatefulSet>(releaseManifests(scope, database, release, ingress, ""), "StatefulSet");
    expect({ spec: { ...statefulSet.spec, template: undefined }, pod: statefulSet.spec!.template }).toMatchSnapshot();
    const service = find<{ spec: object }>(releaseManifests(scope, database, release, ingress, ""), "Service");
    expect(service.spec).toMatchObject({ ports: [{ port: 5433, targetPort: "db" }] });
    expect(
      find<V1StatefulSet>(releaseManifests(scope, redis, release, defaultKubernetesSettings, ""), "StatefulSet").spec!.volumeClaimTemplates![0]!.spec,
    ).not.toHaveProperty("storageClassName");
  });

  it("with CloudNativePG, a PostgreSQL DATABASE is a Cluster of the service's database and owner, its volume of the configured size and class", () => {
    const objects = releaseManifests(scope, database, release, ingress, "", withOperatorDatabase);
    // No credentials Secret of ours: the operator makes the owner's password, in <name>-app.
    expect(objects.map((object) => object.kind)).toEqual(["Service", "Cluster"]);
    const cluster = find<CnpgCluster>(objects, "Cluster");
    expect({ apiVersion: cluster.apiVersion, labels: cluster.metadata.labels, spec: cluster.spec }).toMatchSnapshot();
    expect(cluster.spec).toMatchObject({
      instances: 1,
      storage: { size: "10Gi", storageClass: "fast-ssd" },
      bootstrap: { initdb: { database: "shop", owner: "shop" } },
    });
    // The host the control plane gave the environment's services still leads to the primary, on the operator's port.
    expect(find<{ spec: object }>(objects, "Service").spec).toMatchObject({
      selector: { "cnpg.io/cluster": "db", "cnpg.io/instanceRole": "primary" },
      ports: [{ port: 5433, targetPort: 5432 }],
    });
    // Redis has no operator here: still a StatefulSet.
    expect(releaseManifests(scope, redis, release, ingress, "", withOperatorDatabase).map((object) => object.kind)).toContain("StatefulSet");
  });

  it("the environment's services read an operator database's connection variables from its <name>-app Secret", () => {
    const fromApp = (key: string) => ({ secretKeyRef: { name: "db-app", key } });
    const expected = [
      { name: "SLIPWAY_DB_URL", valueFrom: fromApp("uri") },
      { name: "SLIPWAY_DB_HOST", valueFrom: fromApp("host") },
      { name: "SLIPWAY_DB_PORT", valueFrom: fromApp("port") },
      { name: "SLIPWAY_DB_USER", valueFrom: fromApp("username") },
      { name: "SLIPWAY_DB_PASSWORD", valueFrom: fromApp("password") },
      { name: "SLIPWAY_DB_DATABASE", valueFrom: fromApp("dbname") },
    ];
    expect(app(releaseManifests(scope, application, release, ingress, IMAGE, withOperatorDatabase)).env).toEqual(expect.arrayContaining(expected));
    const cron = find<V1CronJob>(releaseManifests(scope, cronJob, release, ingress, IMAGE, withOperatorDatabase), "CronJob");
    expect(cron.spec!.jobTemplate.spec!.template.spec!.containers[0]!.env).toEqual(expect.arrayContaining(expected));
    const job = lifecycleJobManifest(scope, lifecycleJob as never, release, IMAGE, "start", "a1b2c3", operatorDatabaseEnv(["db"]));
    expect(job.spec!.template.spec!.containers[0]!.env).toEqual(expect.arrayContaining(expected));
    expect(app(releaseManifests(scope, application, release, ingress, IMAGE)).env!.some((variable) => variable.name.startsWith("SLIPWAY_DB_"))).toBe(false);
  });

  it("a build from an ssh repository mounts its deploy key read-only (0400) in the clone container only, with the engine's ssh options", () => {
    const job = buildJobManifest({ ...buildInput, builder: "kaniko", repository: { ...buildInput.repository, deployKey: true } });
    const pod = job.spec!.template.spec!;
    expect(pod.volumes).toContainEqual({
      name: "git-ssh",
      secret: {
        secretName: "build-web-20261206093000-7e2a91c4",
        defaultMode: 0o400,
        items: [
          { key: "ssh-privatekey", path: "key" },
          { key: "known_hosts", path: "known_hosts" },
        ],
      },
    });
    const clone = pod.initContainers![0]!;
    expect(clone.volumeMounts).toContainEqual({ name: "git-ssh", mountPath: "/etc/slipway-git", readOnly: true });
    expect(clone.env).toContainEqual({
      name: "GIT_SSH_COMMAND",
      value:
        "ssh -o BatchMode=yes -o IdentitiesOnly=yes -o 'IdentityFile=\"/etc/slipway-git/key\"' -o StrictHostKeyChecking=accept-new -o 'UserKnownHostsFile=\"/etc/slipway-git/known_hosts\"'",
    });
    expect(JSON.stringify(pod.containers)).not.toContain("git-ssh");
    const secret = buildSecretManifest(buildInput, "git@git.example.com:shop/web.git", {}, { key: DEPLOY_KEY, knownHosts: KNOWN_HOSTS });
    // The file ssh reads: LF line ends and a final newline.
    expect(Buffer.from(secret.data!["ssh-privatekey"]!, "base64").toString()).toBe(`${DEPLOY_KEY}\n`);
    expect(Buffer.from(secret.data!.known_hosts!, "base64").toString()).toBe(KNOWN_HOSTS);
    // Without a deploy key, nothing of it.
    expect(JSON.stringify(buildJobManifest({ ...buildInput, builder: "kaniko" }))).not.toContain("GIT_SSH_COMMAND");
  });

  it("a cron JOB is a CronJob with its schedule, time zone, concurrency, retries and timeout; a six-field schedule is refused", () => {
    const cron = find<V1CronJob>(releaseManifests(scope, cronJob, release, ingress, IMAGE), "CronJob");
    expect({ ...cron.spec, jobTemplate: { ...cron.spec!.jobTemplate, spec: { ...cron.spec!.jobTemplate.spec, template: undefined } } }).toMatchSnapshot();
    expect(cron.spec!.jobTemplate.spec!.template.spec).toMatchObject({ restartPolicy: "Never", activeDeadlineSeconds: 900 });
    const everySecond = {
      ...cronJob,
      config: { ...cronJob.config, trigger: { type: "cron", schedule: "*/5 * * * * *", timeZone: "UTC", missedRuns: "run-once" } },
    } as typeof cronJob;
    expect(() => releaseManifests(scope, everySecond, release, ingress, IMAGE)).toThrow("five-field cron schedules");
  });

  it("a clone's data copy is a Job of the source's image as its user, restricted, every credential from a Secret, the source's copied as it is", () => {
    const job = copyJobManifest(scope, clone, release, statefulSetSource, { operator: false }, "7e2a91c4");
    expect(job.metadata!.name).toBe("db-copy-7e2a91c4");
    const pod = job.spec!.template.spec!;
    // The command is the script (copy-data.postgres.test.ts runs it for real).
    expect({
      labels: job.metadata!.labels,
      spec: { ...job.spec, template: undefined },
      podLabels: job.spec!.template.metadata!.labels,
      pod: { ...pod, containers: undefined },
      container: { ...pod.containers[0], command: undefined },
    }).toMatchSnapshot();
    // Its pod is not one of the database's: the database's Service does not select it.
    expect(job.spec!.template.metadata!.labels).not.toHaveProperty("slipway.dev/service-id");
    expect(job.spec!.template.spec!.containers[0]!.command).toEqual(["sh", "-c", POSTGRES_COPY_SCRIPT]);
    // Into a CloudNativePG Cluster, the target's credentials are the operator's <name>-app Secret's.
    const intoCluster = copyJobManifest(scope, clone, release, clusterSource, { operator: true }, "7e2a91c4").spec!.template.spec!;
    expect(intoCluster.containers[0]!.env!.filter((variable) => variable.name.startsWith("TARGET_"))).toMatchSnapshot();
    expect(intoCluster.securityContext).toMatchObject({ runAsUser: 26, runAsGroup: 26 });

    const secret = copySourceSecret(scope, clone, release, clusterSource, sourceCredentials);
    expect(secret.metadata!.name).toBe("db-copy-source");
    expect(secret.data).toEqual({ username: base64("shop"), password: base64("source-pg-password-secret"), database: base64("shop") });
    expect(() => copySourceSecret(scope, clone, release, clusterSource, { data: { username: base64("shop") } })).toThrow(
      "the Secret db-app of the database to copy data from (in shop-staging) has no password, dbname",
    );
  });

  it("a clone's Redis copy is the same Job with the Redis image and script, reading no database name", () => {
    const job = copyJobManifest(scope, redisClone, release, redisSource, { operator: false }, "7e2a91c4");
    expect(job.metadata!.name).toBe("cache-copy-7e2a91c4");
    const pod = job.spec!.template.spec!;
    // The command is the script (copy-data.redis.test.ts runs it for real).
    expect(pod.containers[0]!.command).toEqual(["sh", "-c", REDIS_COPY_SCRIPT]);
    expect({ image: pod.containers[0]!.image, securityContext: pod.securityContext, env: pod.containers[0]!.env }).toMatchSnapshot();
    // Everything but the engine's part is the PostgreSQL copy's.
    const postgres = copyJobManifest(scope, clone, release, statefulSetSource, { operator: false }, "7e2a91c4").spec!.template.spec!;
    const engineFree = (container: V1Container) => ({ ...container, image: undefined, command: undefined, env: undefined });
    expect(engineFree(pod.containers[0]!)).toEqual(engineFree(postgres.containers[0]!));
    expect({ ...pod, containers: undefined }).toEqual({ ...postgres, containers: undefined });
    expect(copySourceSecret(scope, redisClone, release, redisSource, redisSourceCredentials).data).toEqual(redisSourceCredentials.data);
  });

  it("a lifecycle JOB's run is a Job whose container writes its outputs to its termination message", () => {
    const job = lifecycleJobManifest(scope, lifecycleJob as never, release, IMAGE, "start", "a1b2c3") as V1Job;
    expect(job.metadata!.name).toBe("migrate-start-a1b2c3");
    expect(job.spec).toMatchObject({ backoffLimit: 1, template: { spec: { activeDeadlineSeconds: 300, restartPolicy: "Never" } } });
    expect(job.spec!.template.spec!.containers[0]).toMatchObject({
      command: ["/bin/sh", "-c", "npm run migrate"],
      terminationMessagePath: "/dev/termination-log",
      env: expect.arrayContaining([{ name: "SLIPWAY_OUTPUT_FILE", value: "/dev/termination-log" }]),
    });
  });
});
