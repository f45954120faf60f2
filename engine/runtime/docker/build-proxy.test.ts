import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startConnectProxy } from "../../../test/support/connect-proxy";
import { startPodman } from "../../../test/support/podman";
import { skipWithout } from "../../../test/support/requirements";
import { applicationServiceSpec } from "../../protocol";
import { proxyBuildArgs } from "../shared/processes-env";
import { runImageBuild } from "./images";

const PROXY_VARIABLES = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"];

describe("proxyBuildArgs: the engine's proxy, for an image build", () => {
  it("gives the engine's proxy variables in the cases it has them, and nothing else of its environment", () => {
    const host = { HTTPS_PROXY: "http://proxy:3128", http_proxy: "http://proxy:3128", NO_PROXY: "localhost,.internal", PATH: "/usr/bin", SECRET: "no" };
    expect(proxyBuildArgs({}, host)).toEqual({ HTTPS_PROXY: "http://proxy:3128", http_proxy: "http://proxy:3128", NO_PROXY: "localhost,.internal" });
    expect(proxyBuildArgs({}, {})).toEqual({});
  });

  it("leaves out a proxy variable the service's build arguments set, in both cases", () => {
    const host = { HTTPS_PROXY: "http://proxy:3128", https_proxy: "http://proxy:3128", http_proxy: "http://proxy:3128", no_proxy: "localhost" };
    expect(proxyBuildArgs({ https_proxy: "http://mine:8080", NO_PROXY: "" }, host)).toEqual({ http_proxy: "http://proxy:3128" });
  });
});

// Started while the file is collected, so that a machine without Podman skips with the reason.
const podman = await startPodman();

/**
 * An image build on a host whose way out is an egress proxy: its RUN steps reach the network
 * through the engine's proxy, which stays out of the image. The build runs on the host's network,
 * where the proxy of this test listens (127.0.0.1), as SLIPWAY_DOCKER_BUILD_NETWORK=host runs it.
 */
describe.skipIf(skipWithout("skip" in podman ? podman.skip : null))("an image build on a real Podman service, through the engine's proxy", () => {
  const service = "skip" in podman ? null! : podman;
  const saved = { ...process.env };
  let dir: string;
  let origin: http.Server;
  let originUrl: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-build-proxy-"));
    // What the build downloads: a server the RUN step names, reached through the proxy.
    origin = http.createServer((_req, res) => res.end("fetched through the proxy\n"));
    await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });

  afterEach(() => {
    for (const key of PROXY_VARIABLES) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  afterAll(async () => {
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
    await service?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("runs the build's RUN steps with the engine's http_proxy, which the image does not keep", async () => {
    const proxy = await startConnectProxy();
    try {
      for (const key of PROXY_VARIABLES) delete process.env[key];
      // busybox wget reads http_proxy in lower case only, as curl does.
      process.env.http_proxy = proxy.url;
      await fs.writeFile(
        path.join(dir, "Dockerfile"),
        `FROM ${service.baseImage}\nARG GREETING\nRUN wget -q -O /fetched.txt ${originUrl}/asset && echo "$GREETING" > /greeting.txt\n`,
      );
      const spec = applicationServiceSpec.parse({
        id: randomUUID(),
        name: "proxied",
        kind: "APPLICATION",
        config: { git: { url: "http://127.0.0.1:2/none.git" } },
        variables: [],
        domains: [],
      });
      const image = `localhost/slipway/proxied-${spec.id.slice(0, 8)}:test`;
      const lines: string[] = [];
      const failure = await runImageBuild({
        docker: service.docker,
        service: spec,
        commit: "0".repeat(40),
        image,
        context: { context: dir, src: ["Dockerfile"] },
        options: { dockerfile: "Dockerfile", buildargs: { GREETING: "hello" }, networkmode: "host", nocache: true },
        signal: new AbortController().signal,
        onLine: (_fd, line) => lines.push(line),
      });
      expect(failure, lines.join("\n")).toBeNull();
      expect(proxy.forwardedUrls).toEqual([`${originUrl}/asset`]);
      expect(await service.podman("run", "--rm", image, "cat", "/fetched.txt", "/greeting.txt")).toBe("fetched through the proxy\nhello");
      // Neither in the image's configuration nor in its history, where a declared build argument's value is (what `docker history` shows of each step).
      expect(await service.podman("image", "inspect", "--format", "{{json .Config.Env}}", image)).not.toContain(proxy.url);
      const history = await service.podman("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image);
      expect(history).toContain("GREETING=hello");
      expect(history).not.toContain(proxy.url);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
