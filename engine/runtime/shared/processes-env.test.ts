import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, fixture, service, task } from "../../../test/engine-harness";
import { type GitServer, startGitServer } from "../../../test/git-server";
import { testEnv } from "../../../test/support/process-env";
import type { Engine } from "../../core";
import { engineBaseEnv, enginePath, proxyWithoutCredentials } from "./processes-env";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const slipwayBin = path.join(repoRoot, "node_modules/.bin");
/** Where npm 7+ keeps the node-gyp shim it puts on a script's PATH (@npmcli/run-script's lib/node-gyp-bin). */
const npmNodeGyp = "/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin";
const OPERATOR_BIN = "/opt/slipway-test-operator/bin";

/** The PATH `npm start` gives the engine (npm run prepends these), over the host's own. */
function npmStartPath(hostPath: string): string {
  const ancestors: string[] = [];
  for (let dir = repoRoot; ; dir = path.dirname(dir)) {
    ancestors.push(path.join(dir, "node_modules/.bin"));
    if (dir === path.dirname(dir)) break;
  }
  return [...ancestors, npmNodeGyp, OPERATOR_BIN, hostPath].join(":");
}

describe("enginePath: the engine's PATH as its children get it", () => {
  it("drops every node_modules/.bin and node-gyp-bin npm put first, and keeps the operator's entries in order", () => {
    const host = "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin";
    expect(enginePath({ PATH: npmStartPath(host) })).toBe(`${OPERATOR_BIN}:${host}`);
    // pnpm's shim and npx's cache as well; a directory that only looks alike stays.
    expect(enginePath({ PATH: "/usr/lib/node_modules/pnpm/dist/node-gyp-bin:/root/.npm/_npx/1a2b/node_modules/.bin/:/opt/bin:/opt/.bin" })).toBe(
      "/opt/bin:/opt/.bin",
    );
    expect(engineBaseEnv({ PATH: `${slipwayBin}:/usr/bin`, HOME: "/home/engine" })).toEqual({ PATH: "/usr/bin", HOME: "/home/engine" });
  });

  it("falls back to the system's directories when nothing else is left", () => {
    expect(enginePath({ PATH: `${slipwayBin}:${npmNodeGyp}` })).toBe("/usr/local/bin:/usr/bin:/bin");
    expect(enginePath({})).toBe("/usr/local/bin:/usr/bin:/bin");
  });
});

describe("proxyWithoutCredentials", () => {
  it("keeps the scheme, host and port only", () => {
    expect(proxyWithoutCredentials("http://corp:s3cr%40t@proxy.internal:3128/")).toBe("http://proxy.internal:3128");
    expect(proxyWithoutCredentials("https://token42@proxy.internal")).toBe("https://proxy.internal");
    expect(proxyWithoutCredentials("user:pw@127.0.0.1:3128")).toBe("http://127.0.0.1:3128");
  });
});

/**
 * An engine that `npm start` started has Slipway's checkout's node_modules/.bin first on its PATH.
 * An app on a trusted cluster (no sandbox to hide the checkout) must not find Slipway's tools
 * there: its build and its release see the toolchain directories and the host's PATH only.
 */
describe("local engine started by npm start: what an unsandboxed app finds on its PATH", () => {
  const hostPath = testEnv(["PATH"]);
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;

  beforeAll(async () => {
    expect(fs.existsSync(`${slipwayBin}/tsx`), "the test needs Slipway's own tsx").toBe(true);
    git = await startGitServer();
    await git.createRepo("app", fixture("node-app"));
    env = await engineHome({
      drainTimeoutMs: 500,
      stopGraceMs: 2_000,
      sandbox: Promise.resolve({ kind: "none", reason: "bubblewrap (bwrap) is not installed" }),
    });
    engine = env.newEngine();
    await engine.start();
  });

  afterAll(async () => {
    hostPath.restore();
    await env?.cleanup();
    await git?.close();
  });

  it("gives the build and the release the host's PATH without npm's entries: Slipway's tsx is not found, the operator's directory is kept", async () => {
    hostPath.replace({ PATH: npmStartPath(enginePath()) });
    const app = service({
      name: "app",
      config: {
        git: { url: git.url("app") },
        buildCommand: 'echo "build PATH: $PATH"; ! command -v tsx',
        // The app answers with version.txt: what its process found.
        startCommand: 'echo "$(command -v tsx || echo no-tsx) $PATH" > version.txt; exec node server.js',
      },
    });
    const deploy = { ...task("DEPLOY", [app]), trusted: true };
    await engine.execute(deploy);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deploy.deploymentId).map((line) => line.text);
    expect(env.final(deploy.deploymentId)?.status, log.join("\n")).toBe("succeeded");
    const buildPath = log.find((line) => line.startsWith("build PATH: "))?.slice("build PATH: ".length) ?? "";
    const { version } = JSON.parse((await env.get("app-test.localhost")).body) as { version: string };
    const [found, releasePath = ""] = version.split(" ");
    expect(found).toBe("no-tsx");
    for (const seen of [buildPath, releasePath]) {
      const entries = seen.split(":");
      expect(entries).not.toContain(slipwayBin);
      expect(entries).not.toContain(npmNodeGyp);
      expect(entries).toContain(OPERATOR_BIN);
    }
  }, 120_000);
});
