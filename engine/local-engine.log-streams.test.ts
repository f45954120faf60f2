import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineHome, eventually, fixture, service, task } from "../test/engine-harness";
import { type GitServer, startGitServer } from "../test/git-server";
import { layout, serviceState } from "./runtime/local/layout";

/** An app that writes what it is asked to each stream: `/say?out=…&err=…`. */
const SPEAKER = `const http = require("node:http");
const server = http.createServer((req, res) => {
  const query = new URL(req.url, "http://app").searchParams;
  if (query.has("out")) console.log(query.get("out"));
  if (query.has("err")) console.error(query.get("err"));
  res.end("said");
});
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("speaker listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

/** Runtime lines keep the stream the app wrote them to (issue 15, item 9): the stderr filter finds local releases' errors. */
describe("local engine: runtime output by stream", () => {
  let git: GitServer;
  let env: Awaited<ReturnType<typeof engineHome>>;
  const app = () => service({ id: "7b4c2a1e-0d3f-4e5a-8b6c-9d0e1f2a3b4c", name: "speaker", config: { git: { url: git.url("speaker") } } });
  const say = async (query: string) => expect((await env.get("speaker-test.localhost", `/say?${query}`)).body).toBe("said");
  const runtime = () => env.lines.filter((line) => line.stream.kind === "service");
  const fdOf = (text: string) =>
    runtime()
      .filter((line) => line.text === text)
      .map((line) => line.fd);

  beforeAll(async () => {
    git = await startGitServer();
    await git.createRepo("speaker", fixture("node-app"), { "server.js": SPEAKER });
    env = await engineHome();
  });

  afterAll(async () => {
    await env?.cleanup();
    await git?.close();
  });

  it("ships stdout and stderr lines with their own stream, and reads both on from where it stopped after an engine restart", async () => {
    const engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [app()]);
    await engine.execute(deploy);
    expect(env.final(deploy.deploymentId)?.status).toBe("succeeded");

    await say("out=plain-1&err=oops-1");
    await eventually(() => fdOf("plain-1").length > 0 && fdOf("oops-1").length > 0, 10_000, "the first lines");
    expect(fdOf("speaker listening")).toEqual(["stdout"]);
    expect(fdOf("plain-1")).toEqual(["stdout"]);
    expect(fdOf("oops-1")).toEqual(["stderr"]);
    await engine.shutdown();

    // The app outlives the engine and keeps writing both streams while none runs.
    await say("out=plain-2&err=oops-2");
    await say("err=oops-3");
    const paths = layout(env.home);
    const { current, logOffsets } = serviceState.parse(JSON.parse(await fs.readFile(paths.stateFile(app().id), "utf8")));
    const releaseDir = paths.releaseDir(app().id, current!.releaseId);
    expect(await fs.readFile(path.join(releaseDir, "runtime.stderr.log"), "utf8")).toBe("oops-1\noops-2\noops-3\n");
    // Each stream's offset was saved on its own, up to what was stored.
    const stdout = await fs.readFile(path.join(releaseDir, "runtime.log"), "utf8");
    expect(stdout.endsWith("plain-1\nplain-2\n")).toBe(true);
    expect(logOffsets[current!.releaseId]).toBe(stdout.indexOf("plain-2\n"));
    expect(logOffsets[`${current!.releaseId}:stderr`]).toBe("oops-1\n".length);

    const next = env.newEngine();
    await next.start();
    await eventually(() => fdOf("plain-2").length > 0 && fdOf("oops-3").length > 0, 10_000, "the lines written while no engine ran");
    await say("out=plain-4&err=oops-4");
    await eventually(() => fdOf("plain-4").length > 0 && fdOf("oops-4").length > 0, 10_000, "the lines written after the restart");
    // Every line once, on its stream: nothing read again, nothing lost.
    for (const text of ["plain-1", "plain-2", "plain-4", "speaker listening"]) expect(fdOf(text)).toEqual(["stdout"]);
    for (const text of ["oops-1", "oops-2", "oops-3", "oops-4"]) expect(fdOf(text)).toEqual(["stderr"]);
  });

  it("names a crashed release's stderr in its health check failure", async () => {
    const crash = 'console.log("connecting to the queue");\nconsole.error("Error: QUEUE_URL is not set");\nprocess.exit(1);\n';
    await git.pushDirectory("speaker", fixture("node-app"), { "server.js": crash });
    const engine = env.newEngine();
    await engine.start();
    const deploy = task("DEPLOY", [app()]);
    await engine.execute(deploy);
    const failed = env.eventsOf(deploy.deploymentId).find((event) => event.status === "failed" && event.serviceId);
    expect(failed?.step).toBe("health_check");
    expect(failed?.message).toMatch(/its last output:\n(.*\n)*connecting to the queue\nError: QUEUE_URL is not set$/);
    await eventually(() => fdOf("Error: QUEUE_URL is not set").length > 0, 10_000, "the crash's stderr line");
    expect(fdOf("Error: QUEUE_URL is not set")).toEqual(["stderr"]);
  });
});
