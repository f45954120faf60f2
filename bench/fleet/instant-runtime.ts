import { randomUUID } from "node:crypto";
import type { RuntimeServiceState, ServiceSpec } from "../../engine/protocol";
import type { ReleaseHandle, Runtime } from "../../engine/runtime/runtime";

/**
 * A runtime whose every step succeeds at once, for the fleet benchmark (issue 17, item 4): the
 * engine around it (orchestration, agent, outbox, protocol) is the real one, so a thousand of
 * them load the control plane as a thousand engines would, without a thousand hosts' builds.
 * Its releases are only records: what it reports in heartbeats is what a real runtime reports
 * for services that run.
 */
export function createInstantRuntime(): Runtime<ServiceSpec> {
  const live = new Map<string, RuntimeServiceState>();
  const set = (serviceId: string, state: RuntimeServiceState["state"], release?: ReleaseHandle) => {
    const previous = live.get(serviceId);
    live.set(serviceId, {
      serviceId,
      releaseId: release?.releaseId ?? previous?.releaseId ?? "none",
      state,
      restarts: 0,
      ...((release?.commit ?? previous?.commit) ? { commit: release?.commit ?? previous?.commit } : {}),
    });
  };
  const done = () => Promise.resolve();
  return {
    name: "instant",
    serviceKinds: ["APPLICATION"],
    start: done,
    shutdown: done,
    services: () => [...live.values()],
    newRelease: async (ctx) => ({ serviceId: ctx.service.id, releaseId: randomUUID() }),
    async clone(_ctx, release) {
      release.commit = "0".repeat(40);
      return { commit: release.commit, defaultBranch: null, info: null };
    },
    build: done,
    startRelease: done,
    healthCheck: done,
    switchTo: async (ctx, release) => set(ctx.service.id, "running", release),
    drain: done,
    discard: done,
    stop: async (ctx) => set(ctx.service.id, "stopped"),
    restart: async (ctx) => set(ctx.service.id, "running"),
    delete: async (ctx) => void live.delete(ctx.service.id),
  };
}
