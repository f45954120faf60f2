import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { recordLogBatch } from "../engines/engine-session";

let services: Services;
let org: Awaited<ReturnType<typeof seedOrganization>>;

beforeAll(async () => {
  services = testServices((await createTestDatabase()).db);
  org = await seedOrganization(services, "logs");
});

describe("reading logs", () => {
  it("resumes after a sequence number, filters a deployment's output by service, greps, and tails", async () => {
    const api = createCaller({ services, actor: org.as("VIEWER") });
    const dev = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await dev.projects.create({ name: "logs" });
    const environment = await dev.environments.create({ projectId: project.id, name: "dev" });
    const config = { git: { url: "file:///srv/app.git" } };
    const web = await dev.services.create({ environmentId: environment.id, name: "web", config });
    const api2 = await dev.services.create({ environmentId: environment.id, name: "api", config });
    const { deployment } = await dev.deployments.create({ environmentId: environment.id, action: "DEPLOY" });
    const at = new Date().toISOString();
    const line = (seq: number, text: string) => ({ seq, at, fd: "stdout" as const, text });
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: web.id }, [
      line(1, "web: npm ci"),
      line(3, "web: 100% done"),
    ]);
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: api2.id }, [line(2, "api: npm ci")]);
    // A re-sent batch is stored once.
    await recordLogBatch(services, org.clusterId, { kind: "deployment", deploymentId: deployment.id, serviceId: api2.id }, [line(2, "api: npm ci")]);

    const all = await api.deployments.logs({ deploymentId: deployment.id });
    expect(all.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, after: 2 })).map((l) => l.text)).toEqual(["web: 100% done"]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, serviceId: web.id })).map((l) => l.seq)).toEqual([1, 3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, grep: "100%" })).map((l) => l.seq)).toEqual([3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, grep: "%" })).map((l) => l.seq)).toEqual([3]);
    expect((await api.deployments.logs({ deploymentId: deployment.id, tail: 2 })).map((l) => l.seq)).toEqual([2, 3]);
    await expect(api.deployments.logs({})).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("stores each line as sent, whatever characters it holds, and returns only the lines it had not stored yet", async () => {
    const api = createCaller({ services, actor: org.as("VIEWER") });
    const dev = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await dev.projects.create({ name: "odd-lines" });
    const environment = await dev.environments.create({ projectId: project.id, name: "dev" });
    const web = await dev.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const texts = ['say "hi" \\ C:\\path', "{braces,commas}", "NULL", "", "ünïcödé 🚀\ttab", '{"level":"error","msg":"boom"}'];
    const at = "2026-12-06T10:00:00.123Z";
    const lines = texts.map((text, i) => ({ seq: i + 1, at, fd: i % 2 ? ("stderr" as const) : ("stdout" as const), text, source: `r1:${i * 100}` }));
    const stream = { kind: "service" as const, serviceId: web.id, releaseId: "r1" };
    expect(await recordLogBatch(services, org.clusterId, stream, lines)).toEqual(lines);
    // A batch sent again after a lost acknowledgement, with one new line: only that one is new.
    const next = { seq: 7, at, fd: "stdout" as const, text: "after", source: "r1:600" };
    expect(await recordLogBatch(services, org.clusterId, stream, [...lines.slice(4), next])).toEqual([next]);

    const stored = await api.deployments.logs({ serviceId: web.id });
    expect(stored.map((line) => ({ seq: line.seq, text: line.text, fd: line.fd }))).toEqual(
      [...lines, next].map((line) => ({ seq: line.seq, text: line.text, fd: line.fd })),
    );
    expect(new Date(stored[0]!.at).toISOString()).toBe(at);
    expect((await api.deployments.logs({ serviceId: web.id, level: "error" })).map((line) => line.seq)).toEqual([6]);
  });

  it("filters a service's runtime output by stream, release and time range", async () => {
    const api = createCaller({ services, actor: org.as("VIEWER") });
    const dev = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await dev.projects.create({ name: "runtime-logs" });
    const environment = await dev.environments.create({ projectId: project.id, name: "dev" });
    const web = await dev.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const minute = (n: number) => new Date(Date.UTC(2026, 11, 6, 10, n)).toISOString();
    const line = (seq: number, fd: "stdout" | "stderr", release: string, n: number, text: string) => ({
      seq,
      at: minute(n),
      fd,
      text,
      source: `${release}:${seq * 10}`,
    });
    await recordLogBatch(services, org.clusterId, { kind: "service", serviceId: web.id, releaseId: "r2" }, [
      line(1, "stdout", "r1", 1, "listening"),
      line(2, "stderr", "r1", 2, "warning: slow query"),
      line(3, "stdout", "r2", 3, "listening again"),
      line(4, "stderr", "r2", 4, "Error: boom"),
    ]);
    const seqs = async (filters: Record<string, string>) => (await api.deployments.logs({ serviceId: web.id, ...filters })).map((l) => l.seq);
    expect(await seqs({ fd: "stderr" })).toEqual([2, 4]);
    expect(await seqs({ releaseId: "r2" })).toEqual([3, 4]);
    expect(await seqs({ since: minute(2), until: minute(4) })).toEqual([2, 3]);
    expect(await seqs({ fd: "stderr", releaseId: "r1" })).toEqual([2]);
    // A release id is an id, not a pattern.
    expect(await seqs({ releaseId: "r" })).toEqual([]);
    await expect(api.deployments.logs({ serviceId: web.id, releaseId: "r%" })).rejects.toMatchObject({ code: "BAD_REQUEST" });

    // The release filter offers the releases with lines, the latest to log first; a stderr line's source names its stream too.
    await recordLogBatch(services, org.clusterId, { kind: "service", serviceId: web.id, releaseId: "r0" }, [
      { seq: 5, at: minute(0), fd: "stderr", text: "old", source: "r0:stderr:0" },
    ]);
    await recordLogBatch(services, org.clusterId, { kind: "service", serviceId: web.id, releaseId: "r2" }, [
      { seq: 6, at: minute(5), fd: "system", text: "restarted" },
    ]);
    expect(await api.deployments.logReleases({ serviceId: web.id })).toEqual([
      { releaseId: "r2", firstAt: minute(3), lastAt: minute(4) },
      { releaseId: "r1", firstAt: minute(1), lastAt: minute(2) },
      { releaseId: "r0", firstAt: minute(0), lastAt: minute(0) },
    ]);
    expect(await seqs({ releaseId: "r0", fd: "stderr" })).toEqual([5]);
    expect((await api.deployments.logReleases({ serviceId: web.id, limit: 1 })).map((r) => r.releaseId)).toEqual(["r2"]);
  });

  it("keeps JSON lines at a level or a more severe one, read once at ingest", async () => {
    const api = createCaller({ services, actor: org.as("VIEWER") });
    const dev = createCaller({ services, actor: org.as("DEVELOPER") });
    const project = await dev.projects.create({ name: "leveled-logs" });
    const environment = await dev.environments.create({ projectId: project.id, name: "dev" });
    const web = await dev.services.create({ environmentId: environment.id, name: "web", config: { git: { url: "file:///srv/app.git" } } });
    const at = new Date().toISOString();
    const line = (seq: number, fd: "stdout" | "stderr", text: string) => ({ seq, at, fd, text, source: `r1:${seq * 10}` });
    await recordLogBatch(services, org.clusterId, { kind: "service", serviceId: web.id, releaseId: "r1" }, [
      line(1, "stdout", '{"level":30,"time":1765015200000,"msg":"listening"}'),
      line(2, "stdout", '{"level":"warn","message":"disk 91% full"}'),
      line(3, "stderr", "Error: plain text has no level"),
      line(4, "stdout", '{"level":"error","ts":1765015200.1,"msg":"dial tcp: connection refused"}'),
      line(5, "stderr", '{"levelname":"CRITICAL","message":"cannot reach db"}'),
    ]);
    const read = (filters: Record<string, string>) => api.deployments.logs({ serviceId: web.id, ...filters });
    expect((await read({})).map((l) => l.level)).toEqual(["info", "warn", null, "error", "fatal"]);
    expect((await read({ level: "warn" })).map((l) => l.seq)).toEqual([2, 4, 5]);
    expect((await read({ level: "error" })).map((l) => l.seq)).toEqual([4, 5]);
    expect((await read({ level: "error", fd: "stderr" })).map((l) => l.seq)).toEqual([5]);
    expect((await read({ level: "error", grep: "tcp" })).map((l) => l.seq)).toEqual([4]);
    await expect(read({ level: "loud" })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});
