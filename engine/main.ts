import { createAgent } from "./agent";
import { loadEngineConfig } from "./config";
import { connectDocker, createDockerEngine, createKubernetesEngine, createLocalEngine } from "./core";
import { engineIdentity, forgetRunningEngine, recordRunningEngine } from "./daemon";
import { engineFiles } from "./engine-files";
import { startEngineHealthServer } from "./health-server";
import { createEngineLogger } from "./logger";
import type { EngineHandshake } from "./protocol/messages";
import { clientNodeApi, loadKubeConfig } from "./runtime/kubernetes/client-node-api";
import { detectCgroups } from "./runtime/local/cgroups";
import { availableDatabases } from "./runtime/local/databases/driver";
import { hostLoopbackFence } from "./runtime/local/sandbox/loopback-fence";
import { describeLoopbackFence, describeSandbox, hostSandbox } from "./runtime/local/sandbox/service-sandboxes";

/**
 * The engine process: `npm run engine`, or `slipway engine --url … --token …`. It serves a
 * `local` cluster (SLIPWAY_ENGINE_RUNTIME=local, the default) or a `docker` one
 * (SLIPWAY_ENGINE_RUNTIME=docker, SLIPWAY_DOCKER_HOST=unix:///…), and refuses to start when it
 * cannot reach that cluster's Docker Engine API.
 * SIGTERM/SIGINT stop the agent; the router and the apps keep running, and the next engine
 * adopts them.
 */
export const ENGINE_VERSION = "0.1.0";

export async function runEngine(source: Record<string, string | undefined> = process.env) {
  const config = loadEngineConfig(source);
  const logger = createEngineLogger({ name: "slipway-engine", level: config.logLevel, pretty: config.pretty });
  // Throws "cannot reach the Docker Engine API at …: <reason>" (exit 1 below) before anything starts.
  const docker = config.runtime === "docker" ? await connectDocker(config.dockerHost) : null;
  if (docker) logger.info({ dockerHost: docker.url, server: docker.info.server, apiVersion: docker.info.apiVersion }, "connected to the Docker Engine API");
  // Throws "no Kubernetes cluster: …" or "the kubeconfig has no context …" (exit 1 below) before anything starts.
  const kube = config.runtime === "kubernetes" ? loadKubeConfig(config.kubernetes) : null;
  if (kube) logger.info({ server: kube.getCurrentCluster()!.server, inCluster: config.kubernetes.inCluster }, "using the Kubernetes API");
  const capabilities: EngineHandshake["capabilities"] = kube
    ? {
        runtime: "kubernetes",
        serviceKinds: ["APPLICATION", "CONTAINER", "DATABASE", "JOB"],
        databases: ["postgresql", "redis"],
        routerPort: config.routerPort,
        // Requests and limits of each pod, enforced by the kubelet.
        limits: "kubernetes",
        shells: true,
        metrics: false,
        sandbox: "container",
        loopbackFence: true,
      }
    : docker
      ? {
          runtime: "docker",
          serviceKinds: ["APPLICATION", "CONTAINER", "JOB"],
          databases: [],
          routerPort: config.routerPort,
          ...(config.routerHttpsPort ? { routerHttpsPort: config.routerHttpsPort } : {}),
          dockerApiVersion: docker.info.apiVersion,
          limits: "docker",
          shells: true,
          metrics: true,
          sandbox: "container",
          // A container has a network namespace, and so a loopback, of its own: the host's is out of its reach.
          loopbackFence: true,
        }
      : {
          runtime: "local",
          serviceKinds: ["APPLICATION", "DATABASE", "JOB"],
          databases: await availableDatabases(),
          routerPort: config.routerPort,
          ...(config.routerHttpsPort ? { routerHttpsPort: config.routerHttpsPort } : {}),
          limits: detectCgroups().kind,
          shells: true,
          metrics: true,
          ...describeSandbox(await hostSandbox(config.home)),
          ...(await describeLoopbackFence(await hostSandbox(config.home), hostLoopbackFence)),
        };
  const engineOptions = {
    home: config.home,
    routerPort: config.routerPort,
    routerHost: config.routerHost,
    routerHttpsPort: config.routerHttpsPort ?? undefined,
    routerWake: config.wake,
    routerMaxConnections: config.routerMaxConnections,
    logger,
    allowLocalRepositories: config.allowLocalRepositories,
    concurrency: config.concurrency,
    toolchains: { registry: config.npmRegistry, nodeDefault: config.nodeDefault, pip: config.pip },
    configSecrets: config.configSecrets,
  };
  const agent = createAgent(
    {
      url: config.url,
      token: config.token,
      engineVersion: ENGINE_VERSION,
      capabilities,
      logger,
      heartbeatMs: config.heartbeatMs,
      metricsIntervalMs: config.metricsMs,
      inventoryIntervalMs: config.inventoryMs,
      outboxDir: engineFiles(config.home).outboxDir,
      outboxMaxBytes: config.outboxMaxBytes,
      onRefused: (reason) => {
        logger.fatal({ reason }, "engine token refused; stopping");
        void agent.shutdown().finally(() => process.exit(1));
      },
    },
    (reporter) =>
      kube
        ? createKubernetesEngine({
            ...engineOptions,
            reporter,
            api: clientNodeApi(kube),
            settings: config.kubernetes.settings,
            builds: { buildImage: config.dockerBuildImage, buildNetwork: config.dockerBuildNetwork },
          })
        : docker
          ? createDockerEngine({
              ...engineOptions,
              reporter,
              docker: docker.docker,
              builds: { buildImage: config.dockerBuildImage, buildNetwork: config.dockerBuildNetwork },
              tuning: { sleepMinuteMs: config.sleepMinuteMs, logKeepBytes: config.runtimeLogKeepMb * 1024 * 1024 },
            })
          : createLocalEngine({
              ...engineOptions,
              reporter,
              tuning: {
                buildCacheMb: config.buildCacheMb,
                sleepMinuteMs: config.sleepMinuteMs,
                runtimeLogKeepMb: config.runtimeLogKeepMb,
                releasesKept: config.releasesKept,
              },
            }),
  );
  await agent.start();
  const health = config.health ? await startEngineHealthServer({ ...config.health, connected: agent.connected }) : null;
  // The engine of this home from now on: `npm start` finds it here and keeps it (engine/daemon.ts).
  process.on("exit", () => forgetRunningEngine(config.home));
  await recordRunningEngine(config.home, await engineIdentity(config));
  logger.info(
    {
      home: config.home,
      runtime: config.runtime,
      localRepositories: config.allowLocalRepositories,
      router: `http://localhost:${config.routerPort}`,
      healthPort: health?.port ?? null,
    },
    "engine started",
  );

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void agent
      .shutdown()
      .then(() => health?.close())
      .finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runEngine().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
