import type { V1Container, V1Job, V1Secret, V1Volume } from "@kubernetes/client-node";
import type { GitServiceSpec } from "../../protocol";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import { type EnvironmentScope, LABEL, type ReleaseMeta, serviceMeta } from "./labels";
import { deployKeyFileContent, sshCommand } from "../../protocol/git-command";
import { base64 } from "./secrets";
import { POD_DEFAULTS } from "./security";
import type { KubernetesSettings } from "./settings";

/**
 * Images of APPLICATION and JOB services are built in the cluster (issue 18, item 4): a build Job
 * in the engine's namespace clones the repository at the exact commit the engine cloned (an
 * init container), then builds the Dockerfile, as the docker runtime does, with Kaniko or BuildKit
 * rootless, and pushes the image and its layer cache to the cluster's registry. The repository's
 * URL (with its credentials) and the build arguments' values are in a Secret of the build,
 * referenced by the pod, never written in the Job.
 */
const IMAGES = {
  git: "alpine/git:2.47.2",
  kaniko: "gcr.io/kaniko-project/executor:v1.23.2",
  buildkit: "moby/buildkit:v0.18.2-rootless",
} as const;

export type BuildJobInput = {
  /** The engine's namespace: the registry's push Secret is there. */
  namespace: string;
  scope: EnvironmentScope;
  service: GitServiceSpec;
  release: ReleaseMeta;
  builder: KubernetesSettings["builder"];
  /**
   * The commit to build, and the Secret (buildSecretManifest) holding the repository's URL with
   * its credentials; `deployKey`: that Secret also holds a deploy key and the known_hosts to
   * check the repository's host with.
   */
  repository: { commit: string; secret: string; deployKey: boolean };
  /** Paths relative to the service's root directory, as the docker runtime reads them (protocol dockerBuildConfig). */
  dockerfile: { context: string; dockerfile: string; target?: string; buildArgs: string[] };
  destination: string;
  cache: string;
  registrySecret: string | null;
  timeoutSeconds: number;
};

const WORKSPACE = "/workspace";
const URL_KEY = "GIT_URL";
const KEY_KEY = "ssh-privatekey";
const KNOWN_HOSTS_KEY = "known_hosts";
/** Where the clone container finds the deploy key and known_hosts: a read-only Secret volume. */
const SSH_DIR = "/etc/slipway-git";
const argKey = (name: string) => `BUILD_ARG_${name}`;

export function buildName(serviceName: string, releaseId: string): string {
  return `build-${kubernetesObjectName(serviceName)}-${releaseId}`.slice(0, 63).replace(/-+$/, "");
}

/** The build's secrets: the repository's URL (credentials included) and the build arguments' values. */
export function buildSecretManifest(
  input: Pick<BuildJobInput, "namespace" | "scope" | "service" | "release">,
  url: string,
  buildArgs: Record<string, string>,
  deployKey?: { key: string; knownHosts: string },
): V1Secret {
  const meta = serviceMeta(input.scope, input.service, input.release, buildName(input.service.name, input.release.releaseId));
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { ...meta, namespace: input.namespace, labels: { ...meta.labels, [LABEL.run]: "build" } },
    type: "Opaque",
    data: {
      [URL_KEY]: base64(url),
      ...(deployKey ? { [KEY_KEY]: base64(deployKeyFileContent(deployKey.key)), [KNOWN_HOSTS_KEY]: base64(deployKey.knownHosts) } : {}),
      ...Object.fromEntries(Object.entries(buildArgs).map(([key, value]) => [argKey(key), base64(value)])),
    },
  };
}

export function buildJobManifest(input: BuildJobInput): V1Job {
  const name = buildName(input.service.name, input.release.releaseId);
  const meta = serviceMeta(input.scope, input.service, input.release, name);
  const root = `${WORKSPACE}/src/${input.service.config.git.rootDirectory}`.replace(/\/+$/, "");
  const context = `${root}/${input.dockerfile.context}`.replace(/\/+$/, "");
  const fromSecret = (envName: string, key: string) => ({ name: envName, valueFrom: { secretKeyRef: { name: input.repository.secret, key } } });
  const clone: V1Container = {
    name: "clone",
    image: IMAGES.git,
    command: [
      "sh",
      "-c",
      // Without .git, as the engine's own checkouts (shared/git.ts): a Dockerfile's `COPY . .` must not put the history in the image.
      'git init -q "$1" && cd "$1" && git fetch -q --depth 1 "$GIT_URL" "$2" && git checkout -q FETCH_HEAD && rm -rf .git',
      "clone",
      `${WORKSPACE}/src`,
      input.repository.commit,
    ],
    env: [
      fromSecret(URL_KEY, URL_KEY),
      // The same ssh as the engine's own clones: batch mode, the deploy key only, host keys checked against the engine's known_hosts.
      ...(input.repository.deployKey
        ? [{ name: "GIT_SSH_COMMAND", value: sshCommand({ keyFile: `${SSH_DIR}/key`, knownHostsFile: `${SSH_DIR}/known_hosts` }) }]
        : []),
    ],
    volumeMounts: [
      { name: "workspace", mountPath: WORKSPACE },
      ...(input.repository.deployKey ? [{ name: "git-ssh", mountPath: SSH_DIR, readOnly: true }] : []),
    ],
    securityContext: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    resources: { requests: { cpu: "100m", memory: "128Mi" } },
  };
  const args = input.dockerfile.buildArgs.map((key) => ({ key, value: `$(${argKey(key)})` }));
  const builder = input.builder === "kaniko" ? kaniko(input, context, args) : buildkit(input, context, args);
  builder.env = [...(builder.env ?? []), ...input.dockerfile.buildArgs.map((key) => fromSecret(argKey(key), argKey(key)))];
  const volumes: V1Volume[] = [
    { name: "workspace", emptyDir: {} },
    // Files of mode 0400 (0440 and the pod's fsGroup once the kubelet applies it, so that the clone's uid 1000 reads them; ssh
    // accepts a key another user owns), in the clone container only: the builder never sees the key.
    ...(input.repository.deployKey
      ? [
          {
            name: "git-ssh",
            secret: {
              secretName: input.repository.secret,
              defaultMode: 0o400,
              items: [
                { key: KEY_KEY, path: "key" },
                { key: KNOWN_HOSTS_KEY, path: "known_hosts" },
              ],
            },
          },
        ]
      : []),
    ...(input.registrySecret
      ? [{ name: "registry", secret: { secretName: input.registrySecret, items: [{ key: ".dockerconfigjson", path: "config.json" }] } }]
      : []),
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { ...meta, namespace: input.namespace, labels: { ...meta.labels, [LABEL.run]: "build" } },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: input.timeoutSeconds,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: { [LABEL.service]: input.service.id, [LABEL.release]: input.release.releaseId, [LABEL.run]: "build" } },
        spec: { ...POD_DEFAULTS, restartPolicy: "Never", initContainers: [clone], containers: [builder], volumes, securityContext: { fsGroup: 1000 } },
      },
    },
  };
}

/**
 * Kaniko builds as root in its own container without privileges
 * (https://github.com/GoogleContainerTools/kaniko#running-kaniko-in-a-kubernetes-cluster), with
 * its layer cache in the registry (`--cache-repo`).
 */
function kaniko(input: BuildJobInput, context: string, args: { key: string; value: string }[]): V1Container {
  return {
    name: "build",
    image: IMAGES.kaniko,
    args: [
      `--context=dir://${context}`,
      `--dockerfile=${context}/${input.dockerfile.dockerfile}`,
      `--destination=${input.destination}`,
      "--cache=true",
      `--cache-repo=${input.cache}`,
      ...(input.dockerfile.target ? [`--target=${input.dockerfile.target}`] : []),
      ...args.map(({ key, value }) => `--build-arg=${key}=${value}`),
    ],
    volumeMounts: [{ name: "workspace", mountPath: WORKSPACE }, ...(input.registrySecret ? [{ name: "registry", mountPath: "/kaniko/.docker" }] : [])],
    securityContext: { runAsUser: 0, allowPrivilegeEscalation: false, seccompProfile: { type: "RuntimeDefault" } },
    resources: { requests: { cpu: "500m", memory: "1Gi" } },
  };
}

/**
 * BuildKit rootless, daemonless (https://github.com/moby/buildkit/tree/master/examples/kubernetes#job):
 * no root, but user namespaces need seccomp and AppArmor unconfined; its cache is exported to the
 * registry beside the image.
 */
function buildkit(input: BuildJobInput, context: string, args: { key: string; value: string }[]): V1Container {
  const dockerfilePath = `${context}/${input.dockerfile.dockerfile}`;
  const slash = dockerfilePath.lastIndexOf("/");
  return {
    name: "build",
    image: IMAGES.buildkit,
    command: ["buildctl-daemonless.sh"],
    args: [
      "build",
      "--frontend=dockerfile.v0",
      `--local=context=${context}`,
      `--local=dockerfile=${dockerfilePath.slice(0, slash)}`,
      `--opt=filename=${dockerfilePath.slice(slash + 1)}`,
      ...(input.dockerfile.target ? [`--opt=target=${input.dockerfile.target}`] : []),
      ...args.map(({ key, value }) => `--opt=build-arg:${key}=${value}`),
      `--output=type=image,name=${input.destination},push=true`,
      `--export-cache=type=registry,ref=${input.cache},mode=max`,
      `--import-cache=type=registry,ref=${input.cache}`,
    ],
    env: [
      { name: "BUILDKITD_FLAGS", value: "--oci-worker-no-process-sandbox" },
      { name: "DOCKER_CONFIG", value: "/home/user/.docker" },
    ],
    volumeMounts: [{ name: "workspace", mountPath: WORKSPACE }, ...(input.registrySecret ? [{ name: "registry", mountPath: "/home/user/.docker" }] : [])],
    securityContext: {
      runAsUser: 1000,
      runAsGroup: 1000,
      runAsNonRoot: true,
      seccompProfile: { type: "Unconfined" },
      appArmorProfile: { type: "Unconfined" },
    },
    resources: { requests: { cpu: "500m", memory: "1Gi" } },
  };
}
