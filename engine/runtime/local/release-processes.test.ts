import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ReleaseStore } from "../release-store";
import { layout } from "./layout";
import { type LocalStore, ReleaseProcesses } from "./release-processes";
import { processStartTime } from "./processes";
import { ServiceSandboxes } from "./sandbox/service-sandboxes";

const homes: string[] = [];
afterEach(async () => {
  for (const home of homes.splice(0)) await fs.rm(home, { recursive: true, force: true });
});

async function releaseProcesses(serviceLog: ConstructorParameters<typeof ReleaseProcesses>[0]["serviceLog"] = () => {}) {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-release-processes-"));
  homes.push(home);
  const paths = layout(home);
  const store: LocalStore = new ReleaseStore({ stateFile: paths.stateFile, routes: { putRoutes: async () => {} }, logger: pino({ level: "silent" }) });
  const none = { kind: "none", reason: "not needed by this test" } as const;
  const sandboxes = new ServiceSandboxes({
    home,
    paths,
    claimsDir: path.join(home, "claims"),
    host: Promise.resolve(none),
    fence: () => Promise.resolve(none),
    logger: pino({ level: "silent" }),
  });
  const processes = new ReleaseProcesses({ paths, store, cgroups: none, sandboxes, serviceLog });
  return { paths, processes, store };
}

describe("a release's processes", () => {
  it("tells a crash's exit code even when asked between the kernel's word and Node's exit event", async () => {
    const { paths, processes } = await releaseProcesses();
    await fs.mkdir(paths.releaseDir("svc", "rel"), { recursive: true });
    // Alive long enough to be recorded at spawn (a process already gone by then fails its start at once).
    const proc = await processes.spawn("svc", "rel", { argv: ["sh", "-c", "sleep 0.3; exit 3"], cwd: os.tmpdir(), env: {}, secretKeys: [] }, undefined);
    // Blocking the event loop keeps the exit event from coming while the kernel already shows the process gone.
    const deadline = Date.now() + 5_000;
    while (processes.isAlive(proc) && Date.now() < deadline);
    expect(processes.isAlive(proc)).toBe(false);
    expect(processes.exitPending(proc)).toBe(true);
    expect(await processes.settledExitReason(proc)).toBe("exited with code 3");
    expect(processes.exitPending(proc)).toBe(false);
    await processes.forget("svc", proc);
  });

  it("forgets a crash's reason with its process: the pid may come back as another one", async () => {
    const { paths, processes } = await releaseProcesses();
    await fs.mkdir(paths.releaseDir("svc", "rel"), { recursive: true });
    const proc = await processes.spawn("svc", "rel", { argv: ["sh", "-c", "sleep 0.2; exit 3"], cwd: os.tmpdir(), env: {}, secretKeys: [] }, undefined);
    while (processes.isAlive(proc)) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await processes.settledExitReason(proc)).toBe("exited with code 3");
    await processes.forget("svc", proc);
    // Another process given the same pid later (adopted after an engine restart, say), gone too: its end is not known.
    const reused = { ...proc, startTime: proc.startTime + 1_000 };
    expect(processes.exitReason(reused)).toBe("exited");
    expect(await processes.settledExitReason(reused)).toBe("exited");
  });

  it("keeps a finished release's offsets forgotten when its lines are stored late", async () => {
    const stored: (() => void)[] = [];
    const { paths, processes, store } = await releaseProcesses((_service, _release, _text, _fd, _at, origin) => {
      if (origin?.stored) stored.push(origin.stored);
    });
    await fs.mkdir(paths.releaseDir("svc", "rel"), { recursive: true });
    store.set({ serviceId: "svc", name: "web", domains: [], current: null, status: "running", restarts: 0, logOffsets: {} });
    const proc = await processes.spawn(
      "svc",
      "rel",
      { argv: ["sh", "-c", "echo one; echo two; sleep 30"], cwd: os.tmpdir(), env: {}, secretKeys: [] },
      undefined,
    );
    await vi.waitFor(() => expect(stored).toHaveLength(2), { timeout: 5_000 });
    stored[0]!();
    expect(store.get("svc")!.logOffsets).toEqual({ rel: "one\n".length });
    await processes.stop("svc", proc);
    await processes.finishTail("svc", "rel");
    expect(store.get("svc")!.logOffsets).toEqual({});
    // The control plane acknowledges the second line only now (it waited in the engine's outbox).
    stored[1]!();
    expect(store.get("svc")!.logOffsets).toEqual({});
  });

  it("stops what a crashed release left running in its group when it forgets it", async () => {
    const { paths, processes } = await releaseProcesses();
    const dir = paths.releaseDir("svc", "rel");
    await fs.mkdir(dir, { recursive: true });
    // A start command that runs a worker beside the app, and an app that crashes.
    const launch = { argv: ["sh", "-c", "sleep 300 & echo $! > worker.pid; sleep 0.3; exit 1"], cwd: dir, env: {}, secretKeys: [] };
    const proc = await processes.spawn("svc", "rel", launch, undefined);
    while (processes.isAlive(proc)) await new Promise((resolve) => setTimeout(resolve, 20));
    const worker = Number(await fs.readFile(path.join(dir, "worker.pid"), "utf8"));
    try {
      expect(processStartTime(worker)).not.toBeNull();
      await processes.forget("svc", proc);
      expect(processStartTime(worker)).toBeNull();
    } finally {
      if (processStartTime(worker) !== null) process.kill(worker, "SIGKILL");
    }
  });
});
