import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { eventually } from "../../../test/engine-harness";
import { groupMembers, sampleGroup } from "./sample";

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.pid) process.kill(-child.pid, "SIGKILL");
});

/** A release as the local runtime starts one: a shell leading its own process group, and the node it started, busy and holding 128 MiB. */
function busyGroup(): number {
  const app = "const held = Buffer.alloc(128 * 1024 * 1024, 1); const end = Date.now() + 20000; while (Date.now() < end) held[0]++;";
  const child = spawn("sh", ["-c", `${JSON.stringify(process.execPath)} -e '${app}' & wait`], { detached: true, stdio: "ignore" });
  running.push(child);
  return child.pid!;
}

describe("sampling a release's process group", () => {
  it("reports the CPU and resident memory of every process of the group together", async () => {
    const pgid = busyGroup();
    // The shell, and the node it started once it is running.
    const members = await eventually(
      async () => {
        const found = await groupMembers(pgid);
        return found.length === 2 ? found : undefined;
      },
      10_000,
      "the app's process to start",
    );
    expect(members).toContain(pgid);
    await eventually(async () => ((await sampleGroup(pgid)).memoryBytes > 128 * 1024 * 1024 ? true : undefined), 10_000, "the app to hold its memory");
    // CPU is measured between two looks at the same processes.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const sample = await sampleGroup(pgid);
    expect(sample.memoryBytes).toBeGreaterThan(128 * 1024 * 1024);
    // A busy loop takes a core; a shared machine may give it less, but not next to nothing.
    expect(sample.cpuPercent).toBeGreaterThan(10);
  });
});
