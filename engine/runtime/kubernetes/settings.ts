/**
 * How a `kubernetes` cluster's engine renders services (issue 18), from the engine's
 * configuration (engine/config.ts, SLIPWAY_KUBE_*): the cluster's own choices of ingress
 * controller or gateway, storage class, database operator, image registry and builder.
 */
export type KubernetesSettings = {
  /** An Ingress of this class (null: the cluster's default class), or an HTTPRoute attached to this Gateway. */
  routing: { kind: "ingress"; className: string | null } | { kind: "gateway"; namespace: string; name: string };
  /** The storage class of databases' volumes; null: the cluster's default. */
  storageClass: string | null;
  /** The size of each database's volume (a quantity: `10Gi`). */
  databaseStorage: string;
  /** Where images built from git are pushed, and pulled from: `registry.example.com/slipway`. Null: APPLICATION and JOB services cannot be built. */
  registry: string | null;
  /** A `kubernetes.io/dockerconfigjson` Secret in the engine's namespace with the registry's push credentials; null: the registry takes anonymous pushes. */
  registrySecret: string | null;
  /** The in-cluster image builder of build Jobs. */
  builder: "kaniko" | "buildkit";
  /** The namespace the engine runs in (its build Jobs run there, beside the registry Secret). */
  engineNamespace: string;
};

export const defaultKubernetesSettings: KubernetesSettings = {
  routing: { kind: "ingress", className: null },
  storageClass: null,
  databaseStorage: "10Gi",
  registry: null,
  registrySecret: null,
  builder: "kaniko",
  engineNamespace: "slipway-system",
};
