import type { KubernetesObject, V1EnvVar, V1Job, V1Secret, V1Service, V1StatefulSet } from "@kubernetes/client-node";
import type { DatabaseServiceSpec } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { StepError } from "../runtime";
import { CNPG_API_VERSION, CNPG_KIND, cnpgAppSecretName, type CnpgCluster, CNPG_UID } from "./cnpg";
import { credentialsSecretName, DATABASE_UID } from "./database";
import type { KubeApi } from "./kube-api";
import { type EnvironmentScope, LABEL, MANAGED_BY, type ReleaseMeta, serviceMeta } from "./labels";
import { COPY_SCRIPTS } from "./copy-scripts";
import { POD_DEFAULTS } from "./security";
import { resourcesOf } from "./workload";

/**
 * A clone made with data (issue 18): the clone's first deployment of a database copies its
 * source's data into it, as the local runtime does. On a cluster that is a Job in the clone's
 * namespace whose container copies the source database (in the source environment's namespace,
 * reached through its Service) into the new one with the tools of the image the source runs
 * (pg_dump refuses a server newer than itself; redis-cli knows its server's DUMP format): the
 * scripts, one per engine, are copy-scripts.ts's. Credentials reach the container from
 * Secrets only: the target's own, and a copy of the source's (its data copied as it is, never
 * decoded by the engine) in the clone's namespace, since a pod reads Secrets of its own
 * namespace only.
 */

/** On the clone's database workload once its data was copied (applied by its own field manager, so the `slipway` applies keep it). */
export const COPIED_FROM_ANNOTATION = "slipway.dev/data-copied-from";
export const COPY_MANAGER = "slipway-copy";
/** A copy's bound: the Job's pod is ended past it, and the deployment fails. */
export const COPY_TIMEOUT_SECONDS = 3600;

/** Where a source database is, as the cluster says: found by its service id label, in whatever namespace its environment has. */
export type CopySource = {
  namespace: string;
  name: string;
  /** `<name>.<namespace>.svc` and the port of its Service. */
  host: string;
  port: number;
  image: string;
  /** The user the image runs as: the Job runs its tools as that user. */
  uid: number;
  secret: { name: string; keys: CredentialKeys };
};

/** The keys of a credentials Secret: ours (database.ts) or the operator's `<name>-app`. */
type CredentialKeys = { username: string; password: string; database: string };
const OUR_KEYS: CredentialKeys = { username: "username", password: "password", database: "database" };
const OPERATOR_KEYS: CredentialKeys = { username: "username", password: "password", database: "dbname" };

/** The credentials Secret of a database of ours: the operator's `<name>-app` for a Cluster, ours for a StatefulSet. */
export function credentialsOf(serviceName: string, operator: boolean): { name: string; keys: CredentialKeys } {
  return operator ? { name: cnpgAppSecretName(serviceName), keys: OPERATOR_KEYS } : { name: credentialsSecretName(serviceName), keys: OUR_KEYS };
}

/**
 * The source database of a copy: its StatefulSet or CloudNativePG Cluster and its Service, by
 * the source service's id label, in any namespace. A source that is not on the cluster (never
 * deployed, deleted) or of another engine is refused: the copy would have nothing to read.
 */
export async function findCopySource(api: KubeApi, sourceServiceId: string, engine: string, operatorServed: boolean): Promise<CopySource> {
  const selector = `${LABEL.service}=${sourceServiceId}`;
  const missing = `the database to copy data from (service ${sourceServiceId}) is not on this cluster: a clone with data must run on its source's cluster, after the source was deployed`;
  const [statefulSet] = (await api.list<V1StatefulSet>("apps/v1", "StatefulSet", { labelSelector: selector })).items;
  const [cluster] = statefulSet || !operatorServed ? [] : (await api.list<CnpgCluster>(CNPG_API_VERSION, CNPG_KIND, { labelSelector: selector })).items;
  const workload: KubernetesObject | undefined = statefulSet ?? cluster;
  if (!workload) throw new StepError(missing);
  const namespace = workload.metadata!.namespace!;
  const name = workload.metadata!.name!;
  const container = statefulSet?.spec?.template.spec?.containers[0];
  const sourceEngine = cluster ? "postgresql" : container?.name;
  if (sourceEngine !== engine)
    throw new StepError(`the database to copy data from (${name} in ${namespace}) runs ${sourceEngine ?? "an unknown engine"}, not ${engine}`);
  const service = await api.get<V1Service>({ apiVersion: "v1", kind: "Service", namespace, name });
  const port = service?.spec?.ports?.[0]?.port;
  if (!port) throw new StepError(`the database to copy data from (${name} in ${namespace}) has no Service to reach it through`);
  return {
    namespace,
    name,
    host: `${name}.${namespace}.svc`,
    port,
    image: cluster ? cluster.spec.imageName : container!.image!,
    uid: cluster ? CNPG_UID : DATABASE_UID,
    secret: credentialsOf(name, Boolean(cluster)),
  };
}

/** `<name>-copy-source`: the source's credentials, in the clone's namespace. */
export function copySourceSecretName(serviceName: string): string {
  return `${kubernetesObjectName(serviceName)}-copy-source`;
}

/** The source's credentials for the Job, under our own keys: the source Secret's data as it is (base64), never decoded. */
export function copySourceSecret(scope: EnvironmentScope, service: DatabaseServiceSpec, release: ReleaseMeta, source: CopySource, from: V1Secret): V1Secret {
  const data = from.data ?? {};
  const missing = Object.values(source.secret.keys).filter((key) => !data[key]);
  if (missing.length > 0)
    throw new StepError(`the Secret ${source.secret.name} of the database to copy data from (in ${source.namespace}) has no ${missing.join(", ")}`);
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: serviceMeta(scope, service, release, copySourceSecretName(service.name)),
    type: "Opaque",
    data: { username: data[source.secret.keys.username]!, password: data[source.secret.keys.password]!, database: data[source.secret.keys.database]! },
  };
}

/** `<service>-copy-<deployment>`: one Job per deployment (a re-delivered task finds its own; a later deployment, after a failed copy, makes a new one). */
export function copyJobName(serviceName: string, runId: string): string {
  return `${kubernetesObjectName(serviceName)}-copy-${runId}`.slice(0, 63).replace(/-+$/, "");
}

/**
 * The copy's Job: its engine's script in the source's image, as that image's unprivileged user, with
 * the "restricted" security context, once more if it fails (a Service whose endpoints are not
 * yet ready), bounded by COPY_TIMEOUT_SECONDS. Its pod has no label of the service's: the
 * database's Service does not select it, and its logs are the deployment's, not the service's.
 */
export function copyJobManifest(
  scope: EnvironmentScope,
  service: DatabaseServiceSpec,
  release: ReleaseMeta,
  source: CopySource,
  target: { operator: boolean },
  runId: string,
): V1Job {
  const name = copyJobName(service.name, runId);
  const meta = serviceMeta(scope, service, release, name);
  const targetSecret = credentialsOf(service.name, target.operator);
  const fromSecret = (variable: string, secret: string, key: string): V1EnvVar => ({ name: variable, valueFrom: { secretKeyRef: { name: secret, key } } });
  const sourceSecret = copySourceSecretName(service.name);
  const copy = COPY_SCRIPTS[service.config.engine];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { ...meta, labels: { ...meta.labels, [LABEL.run]: "copy-data" } },
    spec: {
      backoffLimit: 1,
      activeDeadlineSeconds: COPY_TIMEOUT_SECONDS,
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels: { ...MANAGED_BY, [LABEL.run]: "copy-data" } },
        spec: {
          ...POD_DEFAULTS,
          restartPolicy: "Never",
          securityContext: { runAsUser: source.uid, runAsGroup: source.uid, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: "copy",
              image: source.image,
              imagePullPolicy: "IfNotPresent",
              command: ["sh", "-c", copy.script],
              env: [
                { name: "SOURCE_HOST", value: source.host },
                { name: "SOURCE_PORT", value: String(source.port) },
                fromSecret("SOURCE_USER", sourceSecret, "username"),
                fromSecret("SOURCE_PASSWORD", sourceSecret, "password"),
                ...(copy.database ? [fromSecret("SOURCE_DATABASE", sourceSecret, "database")] : []),
                { name: "TARGET_HOST", value: kubernetesObjectName(service.name) },
                { name: "TARGET_PORT", value: String(service.config.connection.port) },
                fromSecret("TARGET_USER", targetSecret.name, targetSecret.keys.username),
                fromSecret("TARGET_PASSWORD", targetSecret.name, targetSecret.keys.password),
                ...(copy.database ? [fromSecret("TARGET_DATABASE", targetSecret.name, targetSecret.keys.database)] : []),
              ],
              resources: resourcesOf(undefined),
              securityContext: { privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
            },
          ],
        },
      },
    },
  };
}

/** The annotation that says the copy is done, on the clone's database workload. */
export function copiedMarker(workload: { apiVersion: string; kind: string }, name: string, namespace: string, sourceServiceId: string): KubernetesObject {
  return { ...workload, metadata: { name, namespace, annotations: { [COPIED_FROM_ANNOTATION]: sourceServiceId } } };
}
