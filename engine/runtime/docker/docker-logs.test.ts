import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, recordingReporter, task } from "../../../test/engine-harness";
import { removeEngineHome } from "../../../test/process-cleanup";
import { startPodman } from "../../../test/support/podman";
import { testPort } from "../../../test/support/ports";
import { skipWithout } from "../../../test/support/requirements";
import { testToolchains } from "../../../test/support/toolchains";
import { createDockerEngine, type Engine } from "../../core";
import { containerServiceSpec } from "../../protocol";

/** The bound of the test's container logs: Podman's smallest is 8 KiB; 64 KiB rotates a few times in a second of output. */
const KEEP_BYTES = 64 * 1024;
const LINES = 4000;
/** About 100 bytes a line: the app writes 400 KB, six times the bound. */
const PAD = "x".repeat(80);

// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();

describe.skipIf(skipWithout("skip" in podman ? podman.skip : null))("docker runtime container logs on a real Podman service", () => {
  const service = "skip" in podman ? null! : podman;
  let home: string;
  let engine: Engine;
  const recording = recordingReporter();

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-docker-logs-")));
    engine = createDockerEngine({
      home,
      routerPort: await testPort(),
      reporter: recording.reporter,
      docker: service.docker,
      toolchains: testToolchains,
      tuning: { drainTimeoutMs: 3_000, stopGraceMs: 2_000, supervisionMs: 300, logKeepBytes: KEEP_BYTES },
    });
    await engine.start();
  });

  afterAll(async () => {
    await engine?.shutdown().catch(() => undefined);
    // The engine leaves its router running on purpose: ended here with the home.
    if (home) await removeEngineHome(home);
    await service?.stop();
  });

  it("keeps a chatty container's log file bounded on disk, its lines reaching the engine in order, none repeated", async () => {
    const spec = containerServiceSpec.parse({
      id: randomUUID(),
      name: "chatty",
      kind: "CONTAINER",
      config: {
        image: { name: "localhost/slipway-busybox", tag: "test" },
        // Serves at once (the health check), then logs 4000 lines at about 2000 a second.
        command: [
          "sh",
          "-c",
          `trap "exit 0" TERM; (sleep 1; i=0; while [ $i -lt ${LINES} ]; do echo "line $i ${PAD}"; i=$((i+1)); [ $((i % 40)) -eq 0 ] && usleep 20000; done; echo done-logging) & httpd -f -p "$PORT" -h / & wait $!`,
        ],
        port: 3000,
        healthCheckTimeoutSeconds: 5,
      },
      variables: [],
      domains: ["chatty-test.localhost"],
    });
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    expect(recording.final(deployment.deploymentId)?.status, JSON.stringify(recording.eventsOf(deployment.deploymentId))).toBe("succeeded");
    const texts = () => recording.lines.filter((line) => line.stream.kind === "service").map((line) => line.text);
    await eventually(() => texts().includes("done-logging"), 30_000, "the app's last line");

    const [container] = await service.docker.listContainers({ filters: { label: [`dev.slipway.service-id=${spec.id}`] } });
    const info = await service.docker.getContainer(container!.Id).inspect();
    expect(info.HostConfig.LogConfig?.Type).toBe("json-file");
    // Podman's k8s-file is truncated rather than let past the bound (Docker's json-file keeps a rotated file besides).
    const onDisk = (await fs.stat(info.LogPath)).size;
    expect(onDisk).toBeLessThanOrEqual(KEEP_BYTES);

    const numbers = texts()
      .flatMap((text) => /^line (\d+) x+$/.exec(text)?.[1] ?? [])
      .map(Number);
    // In order, none repeated: each number greater than the one before.
    expect(numbers.every((number, index) => index === 0 || number > numbers[index - 1]!)).toBe(true);
    expect(numbers.at(-1)).toBe(LINES - 1);
    // What Podman's follow loses (log-bound.ts): the lines written since its last poll of the file before a
    // rotation, so at most one run of lines per rotation, and the file rotated at most once per KEEP_BYTES.
    const runsLost = numbers.filter((number, index) => number !== (index === 0 ? 0 : numbers[index - 1]! + 1)).length;
    // k8s-file adds about 45 bytes to a line (its timestamp, stream and flag).
    const rotations = Math.ceil((LINES * ("line 0000 ".length + PAD.length + 1 + 50)) / KEEP_BYTES);
    expect(runsLost, `${numbers.length} of ${LINES} lines received`).toBeLessThanOrEqual(rotations);
  });
});
