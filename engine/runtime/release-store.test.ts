import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ReleaseStore } from "./release-store";

const homes: string[] = [];
afterEach(async () => {
  for (const home of homes.splice(0)) await fs.rm(home, { recursive: true, force: true });
});

describe("the services' states", () => {
  it("logs a state write that fails in the background instead of ending the engine", async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-release-store-"));
    homes.push(home);
    // A state file under a regular file: every write fails (ENOTDIR), as on a full or read-only disk.
    await fs.writeFile(path.join(home, "services"), "");
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: "error" }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    const store = new ReleaseStore({
      stateFile: (serviceId) => path.join(home, "services", serviceId, "state.json"),
      routes: { putRoutes: async () => {} },
      logger,
    });
    store.set({ serviceId: "svc", name: "web", domains: [], current: null, status: "running", restarts: 0 });
    // An unhandled rejection here fails the test run (vitest reports it), as it would end the engine.
    store.persistInBackground("svc");
    await vi.waitFor(() => expect(logged).toHaveLength(1));
    expect(logged[0]).toMatchObject({ msg: "could not save the service's state", serviceId: "svc", err: { code: "ENOTDIR" } });
  });
});
