import fs from "node:fs/promises";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { GitServiceSpec, ServiceSpec } from "../../protocol";
import { isDeployKey, parseGitUrl } from "../../protocol/git-source";
import { kubernetesObjectName } from "../../protocol/kubernetes-names";
import type { StepContext } from "../runtime";
import { StepError } from "../runtime";
import { buildJobManifest, buildName, buildSecretManifest } from "./build";
import type { KubeApi } from "./kube-api";
import { type EnvironmentScope, namespaceOf, type ReleaseMeta } from "./labels";
import { observe, type ObserveOptions } from "./observe";
import { BuildLogFollower } from "./build-logs";
import { describeProblems, type JobState, jobState, podProblems } from "./rollout";
import type { KubernetesSettings } from "./settings";

/**
 * Builds a git service's image in the cluster (build.ts has the Job) and returns its name: the
 * build Secret and Job are applied in the engine's namespace, the Job is followed through a
 * watch to its end, its output shown, and its Secret removed whatever the outcome.
 */
export async function buildImage(input: {
  api: KubeApi;
  settings: KubernetesSettings;
  ctx: StepContext<ServiceSpec>;
  service: GitServiceSpec;
  scope: EnvironmentScope;
  release: ReleaseMeta;
  appDir: string;
  retry?: ObserveOptions["retry"];
}): Promise<string> {
  const { api, settings, ctx, service, release } = input;
  const repository = registryRepository(settings, input.scope, service);
  const destination = `${repository}:${release.releaseId}`;
  const namespace = settings.engineNamespace;
  const name = buildName(service.name, release.releaseId);
  const docker = service.kind === "APPLICATION" ? service.config.docker : undefined;
  const buildArgs = Object.fromEntries(
    service.variables.filter((variable) => docker?.buildArgs.includes(variable.key)).map((variable) => [variable.key, variable.value]),
  );
  const source = await cloneSource(service, ctx.git?.sshKnownHostsFile);
  await api.apply(buildSecretManifest({ namespace, scope: input.scope, service, release }, source.url, buildArgs, source.deployKey));
  try {
    await api.apply(
      buildJobManifest({
        namespace,
        scope: input.scope,
        service,
        release,
        builder: settings.builder,
        repository: { commit: release.commit!, secret: name, deployKey: Boolean(source.deployKey) },
        dockerfile: {
          context: docker?.context ?? "",
          dockerfile: docker?.dockerfile ?? "Dockerfile",
          target: docker?.target,
          buildArgs: Object.keys(buildArgs),
        },
        destination,
        cache: `${repository}/cache`,
        registrySecret: settings.registrySecret,
        timeoutSeconds: service.config.buildTimeoutSeconds,
      }),
    );
    ctx.output("system", `Building ${destination} with ${settings.builder} in Job ${namespace}/${name}`);
    const logs = new BuildLogFollower({ api, namespace, job: name, onLine: (line) => ctx.output("stdout", line), retry: input.retry });
    logs.start();
    let state: JobState;
    try {
      state = await observe<V1Job, JobState>(
        api,
        { apiVersion: "batch/v1", kind: "Job", namespace, fieldSelector: `metadata.name=${name}` },
        ([job]) => {
          const current = job ? jobState(job) : null;
          return current && current.state !== "running" ? current : null;
        },
        { signal: ctx.signal, retry: input.retry, onReconnect: (reason) => ctx.output("system", `${reason}; listing the build Job again`) },
      );
    } catch (error) {
      logs.stop();
      throw error;
    }
    await logs.finish();
    const { items: pods } = await api.list<V1Pod>("v1", "Pod", { namespace, labelSelector: `batch.kubernetes.io/job-name=${name}` });
    if (state.state === "failed") throw new StepError(`the build Job failed: ${state.message}\n${describeProblems(podProblems(pods), new Map())}`);
    return destination;
  } finally {
    await api.delete({ apiVersion: "v1", kind: "Secret", namespace, name });
  }
}

/** The repository of a service's images in the cluster's registry, wherever they are built: `<registry>/<namespace>/<service>`. */
export function registryRepository(settings: KubernetesSettings, scope: EnvironmentScope, service: { name: string }): string {
  if (!settings.registry) throw new StepError("the cluster has no image registry for builds: set SLIPWAY_KUBE_REGISTRY on its engine");
  return `${settings.registry}/${namespaceOf(scope)}/${kubernetesObjectName(service.name)}`;
}

/**
 * What the build Job clones from: an http(s) URL with its token, or an ssh URL with the deploy
 * key and the host keys the engine's own clone of it accepted (its known_hosts file, public keys
 * only): the build pod checks the host against them as the engine did.
 */
async function cloneSource(
  service: GitServiceSpec,
  knownHostsFile: string | undefined,
): Promise<{ url: string; deployKey?: { key: string; knownHosts: string } }> {
  const { url, credentials } = service.config.git;
  const parsed = parseGitUrl(url);
  if (!parsed.ok) throw new StepError(`git URL refused: ${parsed.message}`);
  if (credentials && isDeployKey(credentials)) {
    if (parsed.value.transport !== "ssh") throw new StepError("a deploy key is for ssh URLs (ssh://… or git@host:path); an https URL takes a token");
    const knownHosts = knownHostsFile ? await fs.readFile(knownHostsFile, "utf8").catch(() => "") : "";
    if (knownHosts.trim() === "") throw new StepError("the engine has no known_hosts entry for the repository's host: its own clone records one first");
    return { url: parsed.value.url, deployKey: { key: credentials.sshPrivateKey, knownHosts } };
  }
  if (!/^https?:\/\//.test(url))
    throw new StepError(`the kubernetes runtime builds from http(s) repositories, or ssh ones with a deploy key: ${url} is neither`);
  if (!credentials) return { url };
  const withCredentials = new URL(url);
  withCredentials.username = encodeURIComponent(credentials.username);
  withCredentials.password = encodeURIComponent(credentials.password);
  return { url: withCredentials.toString() };
}
