import { createLocalEngine, type LocalEngineOptions } from "../../engine/local-engine";
import type { EngineTask } from "../../engine/protocol";
import { testToolchains } from "./toolchains";

/**
 * A local engine (engine/local-engine.ts) as its own process, without a control plane: what
 * engine/local-engine.sleep-kill.test.ts SIGKILLs in the middle of an operation, as the kernel's
 * OOM killer or a power loss would. Its settings come as JSON in SLIPWAY_SLEEP_KILL_ENGINE (home,
 * router port, tuning, and tasks to execute once started, one after the other); it prints one JSON
 * line per step outcome (with its message) and per line of output.
 */
type Settings = {
  home: string;
  routerPort: number;
  /** As engineHome's, but for the sandbox: JSON cannot carry its promise. */
  tuning: Omit<NonNullable<LocalEngineOptions["tuning"]>, "sandbox" | "loopbackFence">;
  /** Whether releases run unsandboxed, as on a host without bubblewrap. */
  unsandboxed?: boolean;
  tasks: EngineTask[];
};

const settings = JSON.parse(process.env.SLIPWAY_SLEEP_KILL_ENGINE ?? "{}") as Settings;
const print = (entry: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(entry)}\n`);

const engine = createLocalEngine({
  home: settings.home,
  routerPort: settings.routerPort,
  tuning: {
    ...settings.tuning,
    ...(settings.unsandboxed ? { sandbox: Promise.resolve({ kind: "none", reason: "the test runs its app unsandboxed" } as const) } : {}),
  },
  toolchains: testToolchains,
  reporter: {
    event: (deploymentId, event) => {
      if (event.status !== "started") print({ ...event, deploymentId, outcome: event.status });
    },
    log: (_stream, _fd, text, _at, origin) => {
      print({ line: text });
      // Taken as stored: the engine saves how far it read, as it does once the control plane has a line.
      origin?.stored();
    },
  },
});

await engine.start();
print({ started: true });
for (const task of settings.tasks) await engine.execute(task);
