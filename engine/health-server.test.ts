import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEngineHealthServer } from "./health-server";

let connected = true;
let health: Awaited<ReturnType<typeof startEngineHealthServer>>;

beforeAll(async () => {
  health = await startEngineHealthServer({ port: 0, host: "127.0.0.1", connected: () => connected });
});
afterAll(() => health?.close());

const probe = async (path: string) => {
  const response = await fetch(`http://127.0.0.1:${health.port}${path}`);
  return { status: response.status, body: (await response.json()) as unknown };
};

describe("the engine's health probes", () => {
  it("is ready while connected to the control plane, not ready while it is not, and live throughout", async () => {
    expect(await probe("/api/health/ready")).toEqual({ status: 200, body: { ok: true, controlPlane: "connected" } });
    connected = false;
    expect(await probe("/api/health/ready")).toEqual({ status: 503, body: { ok: false, controlPlane: "disconnected" } });
    expect(await probe("/api/health/live")).toEqual({ status: 200, body: { ok: true } });
    expect((await fetch(`http://127.0.0.1:${health.port}/elsewhere`)).status).toBe(404);
  });
});
