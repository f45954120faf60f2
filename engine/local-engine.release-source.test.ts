import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { cachedCorpus } from "../test/support/corpus";
import type { Engine } from "./core";

/**
 * A release's source is the commit's files, not the repository (as Heroku's slug): an app that
 * serves its working directory, as CPython's http.server example of the corpus does, must not
 * serve /.git/config and the history with it. Builds get the commit as SOURCE_VERSION instead.
 */
const corpus = await cachedCorpus();
if (!corpus.ok) throw new Error(`This test needs ${corpus.missing}.`);
const fetched = corpus;

describe("local engine: a release's source has no .git", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  let engine: Engine;
  let scratch: string;

  beforeAll(async () => {
    git = await startGitServer();
    scratch = await fsp.mkdtemp(path.join(os.tmpdir(), "slipway-release-source-"));
    env = await engineHome({ drainTimeoutMs: 500, stopGraceMs: 2_000 });
    engine = env.newEngine();
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
    await fsp.rm(scratch, { recursive: true, force: true });
  });

  async function deploy(spec: ReturnType<typeof service>) {
    const deployment = task("DEPLOY", [spec]);
    await engine.execute(deployment);
    const log = env.lines.filter((line) => line.stream.kind === "deployment" && line.stream.deploymentId === deployment.deploymentId).map((line) => line.text);
    expect(env.final(deployment.deploymentId), log.join("\n")).toMatchObject({ status: "succeeded" });
  }

  it("an app serving its working directory (CPython's http.server) serves its files, and no .git", async () => {
    await git.createRepo("python-stdlib", fetched.app("python-stdlib"));
    await deploy(service({ name: "pystd", config: { git: { url: git.url("python-stdlib") } } }));
    const host = "pystd-test.localhost";
    expect((await env.get(host, "/python.html")).status).toBe(200);
    const listing = await env.get(host, "/");
    expect(listing.body).toContain("wasm_webserver.py");
    expect(listing.body).not.toContain(".git");
    expect((await env.get(host, "/.git/config")).status).toBe(404);
    expect((await env.get(host, "/.git/HEAD")).status).toBe(404);
  }, 180_000);

  it("a build reads the commit from SOURCE_VERSION and SLIPWAY_GIT_COMMIT, as git would have told it", async () => {
    const app = path.join(scratch, "commit-app");
    await fsp.mkdir(app);
    await fsp.writeFile(path.join(app, "Procfile"), "web: python3 -m http.server $PORT\n");
    const commit = await git.createRepo("commit-app", app);
    await deploy(
      service({
        name: "commit",
        config: { git: { url: git.url("commit-app") }, buildCommand: 'echo "$SOURCE_VERSION $SLIPWAY_GIT_COMMIT" > built-from.txt' },
      }),
    );
    const built = await env.get("commit-test.localhost", "/built-from.txt");
    expect(built.body.trim()).toBe(`${commit} ${commit}`);
  }, 180_000);
});
