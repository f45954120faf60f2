import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { type NpmRegistry, startNpmRegistry } from "../test/support/npm-registry";
import type { Engine } from "./core";

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

/** A GET through the router, with the Host header of the service's domain and any other headers. */
function get(port: number, host: string, urlPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: urlPath, headers: { host, ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * A Vite single-page app (test/fixtures/apps/vite-spa: vite.config.js, react installed from an npm
 * registry on 127.0.0.1 serving the real react package, its build copying what `vite build`
 * wrote) deployed with no flags by the real local engine: detected, built, and served from
 * dist/ by the engine's static server, through the router.
 */
describe("local engine: a static single-page app", () => {
  let git: GitServer;
  let registry: NpmRegistry;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let packDir: string;
  const host = "spa-test.localhost";
  let log: string[];

  beforeAll(async () => {
    // The real react package, packed from this project's own install (no network here).
    packDir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-pack-"));
    const packed = execFileSync("npm", ["pack", "--silent", "--pack-destination", packDir, fileURLToPath(new URL("../node_modules/react", import.meta.url))], {
      encoding: "utf8",
    }).trim();
    registry = await startNpmRegistry([path.join(packDir, packed.split("\n").at(-1)!)]);
    git = await startGitServer();
    await git.createRepo("spa", fixture("vite-spa"));
    env = await engineHome();
    engine = env.newEngine();
    await engine.start();
    const app = service({
      name: "spa",
      config: { git: { url: git.url("spa") } },
      // Where its npm installs from, as a private mirror is set.
      variables: [{ key: "npm_config_registry", value: registry.url, secret: false }],
    });
    const deployment = task("DEPLOY", [app]);
    await engine.execute(deployment);
    log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    expect(env.final(deployment.deploymentId), log.join("\n")).toMatchObject({ status: "succeeded" });
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await registry?.close();
    if (packDir) await fs.rm(packDir, { recursive: true, force: true });
  });

  it("says what it detected and why, in the build log", () => {
    expect(log).toContain(
      "detected Vite SPA: `npm install --include=dev --no-audit --no-fund`, then `npm run build`; serve dist/ with SPA fallback to index.html (because vite.config.js configures Vite; react routes on the client; vite.config.js sets build.outDir)",
    );
    expect(registry.downloads().some((file) => file.includes("react"))).toBe(true);
  });

  it("answers a deep link with index.html, revalidated", async () => {
    const page = await get(env.routerPort, host, "/settings/profile");
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<div id="root">Vite SPA fixture</div>');
    expect(page.headers["cache-control"]).toBe("no-cache");
  });

  it("serves hashed assets immutable and gzipped", async () => {
    const asset = await get(env.routerPort, host, "/assets/index-D8k2Pq1x.js", { "accept-encoding": "gzip" });
    expect(asset.status).toBe(200);
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(asset.headers["content-encoding"]).toBe("gzip");
    expect(zlib.gunzipSync(asset.body).toString()).toContain("Client-side routes");
  });

  it("answers a missing asset 404, and refuses to leave dist/", async () => {
    expect((await get(env.routerPort, host, "/assets/index-missing0.js")).status).toBe(404);
    for (const attempt of ["/../package.json", "/%2e%2e/package.json", "/assets/..%2f..%2fbuild.mjs"]) {
      const answer = await get(env.routerPort, host, attempt);
      expect(answer.body.toString(), attempt).not.toContain("vite-spa");
      expect(answer.body.toString(), attempt).not.toContain("cpSync");
    }
  });
});
