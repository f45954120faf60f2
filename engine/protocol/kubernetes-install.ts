import { stringify } from "yaml";

/**
 * The objects that install the engine of a `kubernetes` cluster inside it (issue 18): a
 * namespace, a service account, the least RBAC the runtime needs (engine/runtime/kubernetes/),
 * the engine's token in a Secret, and a Deployment of one engine. Here, in the protocol folder,
 * because the CLI (`slipway cluster create --kind kubernetes`), the dashboard and the README show
 * the same objects, and the engine's RBAC must match what the runtime calls: one source.
 */
export type KubernetesInstallOptions = {
  /** The control plane's URL, as the engine reaches it from inside the cluster. */
  controlPlaneUrl: string;
  engineToken: string;
  /** The engine's image (built from this repository's Dockerfile and pushed where the cluster pulls from). */
  image: string;
  namespace?: string;
};

export const ENGINE_NAMESPACE = "slipway-system";
export const ENGINE_NAME = "slipway-engine";

const MANAGE = ["get", "list", "watch", "create", "patch", "delete"];
const READ = ["get", "list", "watch"];

/**
 * What the runtime does, and nothing more: it applies (server-side apply is a `patch`), watches,
 * lists and deletes the objects of the environments it deploys, reads pods, their logs and
 * events, and opens shells (`pods/exec`: `create`, and `get` for the WebSocket upgrade).
 */
export const ENGINE_RBAC_RULES = [
  { apiGroups: [""], resources: ["namespaces", "secrets", "services", "persistentvolumeclaims"], verbs: MANAGE },
  { apiGroups: [""], resources: ["pods", "events"], verbs: READ },
  { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
  { apiGroups: [""], resources: ["pods/exec"], verbs: ["get", "create"] },
  { apiGroups: ["apps"], resources: ["deployments", "statefulsets"], verbs: MANAGE },
  { apiGroups: ["apps"], resources: ["replicasets"], verbs: READ },
  { apiGroups: ["batch"], resources: ["jobs", "cronjobs"], verbs: MANAGE },
  { apiGroups: ["networking.k8s.io"], resources: ["ingresses"], verbs: MANAGE },
  { apiGroups: ["gateway.networking.k8s.io"], resources: ["httproutes"], verbs: MANAGE },
  // Where the cluster has them: CloudNativePG's Clusters (PostgreSQL databases), the metrics server's pod metrics.
  { apiGroups: ["postgresql.cnpg.io"], resources: ["clusters"], verbs: MANAGE },
  { apiGroups: ["metrics.k8s.io"], resources: ["pods"], verbs: ["get", "list"] },
];

export function kubernetesInstallManifests(options: KubernetesInstallOptions): Record<string, unknown>[] {
  const namespace = options.namespace ?? ENGINE_NAMESPACE;
  const labels = { "app.kubernetes.io/name": ENGINE_NAME, "app.kubernetes.io/part-of": "slipway" };
  const metadata = { name: ENGINE_NAME, namespace, labels };
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels } },
    { apiVersion: "v1", kind: "ServiceAccount", metadata },
    // Cluster-wide: the engine creates one namespace per environment, and the objects in it.
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: ENGINE_NAME, labels }, rules: ENGINE_RBAC_RULES },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: ENGINE_NAME, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: ENGINE_NAME },
      subjects: [{ kind: "ServiceAccount", name: ENGINE_NAME, namespace }],
    },
    { apiVersion: "v1", kind: "Secret", metadata, type: "Opaque", stringData: { SLIPWAY_ENGINE_TOKEN: options.engineToken } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata,
      spec: {
        // One engine per cluster: a second one would race the first for the same tasks' objects.
        replicas: 1,
        strategy: { type: "Recreate" },
        selector: { matchLabels: { "app.kubernetes.io/name": ENGINE_NAME } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: ENGINE_NAME,
            securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
              {
                name: "engine",
                image: options.image,
                args: ["engine", "--url", options.controlPlaneUrl, "--runtime", "kubernetes"],
                env: [
                  { name: "SLIPWAY_ENGINE_TOKEN", valueFrom: { secretKeyRef: { name: ENGINE_NAME, key: "SLIPWAY_ENGINE_TOKEN" } } },
                  { name: "SLIPWAY_ENGINE_HOME", value: "/var/lib/slipway" },
                  // Its build Jobs run in its own namespace, beside the registry's push Secret.
                  { name: "SLIPWAY_KUBE_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                ],
                resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                volumeMounts: [
                  { name: "home", mountPath: "/var/lib/slipway" },
                  { name: "tmp", mountPath: "/tmp" },
                ],
              },
            ],
            // The engine's outbox and clones: what it has not shipped yet is lost with the pod, and re-sent tasks redo the rest.
            volumes: [
              { name: "home", emptyDir: {} },
              { name: "tmp", emptyDir: {} },
            ],
          },
        },
      },
    },
  ];
}

/** The objects as one YAML stream, for `kubectl apply -f -`. */
export function kubernetesInstallYaml(options: KubernetesInstallOptions): string {
  return kubernetesInstallManifests(options)
    .map((object) => stringify(object))
    .join("---\n");
}
