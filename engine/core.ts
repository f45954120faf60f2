/** The engine's public surface for the agent (engine/agent.ts). */
export { createEngine, type Engine, type EngineOptions, type EngineReporter, type RuntimeHooks } from "./orchestrator";
export { createLocalEngine, type LocalEngineOptions } from "./local-engine";
export { createDockerEngine, type DockerEngineOptions } from "./docker-engine";
export { connectDocker, DockerUnreachable } from "./runtime/docker/docker-host";
export type { ExecOptions, ExecSession, ServiceSample } from "./runtime/runtime";
export { createKubernetesEngine, type KubernetesEngineOptions } from "./kubernetes-engine";
