import { X509Certificate } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { testPort } from "./ports";
import pino from "pino";
import { createAgent } from "../../engine/agent";
import { createLocalEngine } from "../../engine/core";
import { routerClient } from "../../engine/router/router-process";
import { createCaller } from "../../server/api/root";
import type { Services } from "../../server/context";
import { startWebServer } from "../../server/web-server";
import { startWorker } from "../../worker/runner";
import { createTestDatabase } from "../database";
import { removeEngineHome } from "../process-cleanup";
import { seedOrganization, testServices } from "./seed";
import { testToolchains } from "./toolchains";

/** Where a domains platform's engine lives and listens: known before it starts (the ACME server is told the router's HTTP port). */
export type DomainsHost = { home: string; routerPort: number; httpsPort: number };

export async function domainsHost(): Promise<DomainsHost> {
  return {
    home: await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-domains-"))),
    routerPort: await testPort(),
    httpsPort: await testPort(),
  };
}

export type DomainsPlatform = Awaited<ReturnType<typeof startDomainsPlatform>>;

/**
 * What custom domains need, on 127.0.0.1: a real PostgreSQL, the web process with its engine
 * gateway, the worker, and a local engine whose router listens on HTTP and HTTPS, with one
 * service `shop/production/<service>` routed to an upstream that answers which host and scheme it
 * was asked for. The ACME server and DNS are the test's own: `overrides` points the control plane
 * at them.
 */
export async function startDomainsPlatform(host: DomainsHost, options: { organization: string; service: string; overrides: Partial<Services> }) {
  const logger = pino({ level: "silent" });
  const { home, routerPort, httpsPort } = host;
  const database = await createTestDatabase();
  const services = testServices(database.db, options.overrides);
  const org = await seedOrganization(services, options.organization);
  const web = await startWebServer({ services, databaseUrl: database.url, logger, port: 0, host: "127.0.0.1" });
  const worker = await startWorker({ services, connectionString: database.url, logger });
  const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });
  const project = await developer().projects.create({ name: "shop" });
  const environment = await developer().environments.create({ projectId: project.id, name: "production" });
  const { id: serviceId } = await developer().services.create({
    environmentId: environment.id,
    name: options.service,
    config: { git: { url: "https://github.com/acme/shop.git", ref: { branch: "main" } } },
  });

  const agent = createAgent(
    {
      url: web.url,
      token: org.engineToken,
      engineVersion: "test",
      capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], databases: [], routerPort, routerHttpsPort: httpsPort },
      logger,
      outboxDir: path.join(home, "outbox"),
    },
    (reporter) => createLocalEngine({ home, routerPort, routerHttpsPort: httpsPort, reporter, toolchains: testToolchains }),
  );
  await agent.start();
  // The service's live release, as the engine's routes table names it after a deploy.
  const upstream = http.createServer((req, res) => res.end(`${options.service} answered ${req.headers.host} over ${req.headers["x-forwarded-proto"]}`));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  await routerClient(home).putRoutes({
    routes: [
      {
        serviceId,
        serviceName: options.service,
        hosts: [`${options.service}-production-shop.localhost`],
        upstream: { host: "127.0.0.1", port: (upstream.address() as AddressInfo).port },
      },
    ],
  });

  return {
    database,
    services,
    org,
    serviceId,
    developer,
    async stop() {
      await agent.shutdown();
      await worker.stop();
      await web.close();
      upstream.closeAllConnections();
      upstream.close();
    },
  };
}

export async function removeDomainsHost(host: DomainsHost | undefined) {
  if (host) await removeEngineHome(host.home);
}

/** An HTTPS GET through the router on `port` for `servername`, trusting only `ca`: with the certificate it was served. */
export function httpsGet(port: number, servername: string, ca: string): Promise<{ status: number; body: string; certificate: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, servername, headers: { host: servername }, ca, agent: false, timeout: 5_000 }, (res) => {
      const certificate = new X509Certificate((res.socket as TLSSocket).getPeerX509Certificate()!.raw);
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, certificate }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}
