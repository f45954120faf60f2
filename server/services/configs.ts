import type { ApplicationConfig, ContainerConfig, DatabaseConfig, JobConfig, ServiceKind } from "../../engine/protocol/snapshot";

/**
 * A service's kind decides the shape of its stored config (validated by that kind's schema on
 * every write, in services.ts): these read it back typed, in one place.
 */
export type StoredConfig = ApplicationConfig | ContainerConfig | DatabaseConfig | JobConfig;
type Stored = { kind: ServiceKind; config: StoredConfig };

export function applicationConfigOf(service: Stored): ApplicationConfig | null {
  return service.kind === "APPLICATION" ? (service.config as ApplicationConfig) : null;
}

export function containerConfigOf(service: Stored): ContainerConfig | null {
  return service.kind === "CONTAINER" ? (service.config as ContainerConfig) : null;
}

export function databaseConfigOf(service: Stored): DatabaseConfig | null {
  return service.kind === "DATABASE" ? (service.config as DatabaseConfig) : null;
}

export function jobConfigOf(service: Stored): JobConfig | null {
  return service.kind === "JOB" ? (service.config as JobConfig) : null;
}

/** The git source of the kinds built from a repository (APPLICATION and JOB). */
export function gitSourceOf(service: Stored): ApplicationConfig["git"] | null {
  return (applicationConfigOf(service) ?? jobConfigOf(service))?.git ?? null;
}
