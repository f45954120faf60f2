import type { ApplicationConfig, ContainerConfig, ServiceKind } from "../../engine/protocol/snapshot";

/**
 * A service's kind decides the shape of its stored config (validated by that kind's schema on
 * every write, in services.ts): these read it back typed, in one place.
 */
type Stored = { kind: ServiceKind; config: ApplicationConfig | ContainerConfig };

export function applicationConfigOf(service: Stored): ApplicationConfig | null {
  return service.kind === "CONTAINER" ? null : (service.config as ApplicationConfig);
}

export function containerConfigOf(service: Stored): ContainerConfig | null {
  return service.kind === "CONTAINER" ? (service.config as ContainerConfig) : null;
}
