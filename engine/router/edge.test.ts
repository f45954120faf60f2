import { generateKeyPairSync } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { testPort } from "../../test/support/ports";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, request } from "../../test/engine-harness";
import { killProcessesUnder } from "../../test/process-cleanup";
import { selfSignedCertificate } from "../../test/support/self-signed";
import type { EdgeState } from "../protocol/edge";
import { ensureRouter, routerClient } from "./router-process";
import { routerFiles } from "./router-server";

/**
 * The router's custom domains (issue 16, part 1): the two well-known paths it answers itself,
 * HTTPS with the certificate SNI asks for, per-domain redirects, and its state kept on disk so
 * that a router restarted while the engine is down still serves HTTPS.
 */
describe("router with custom domains", () => {
  let home: string;
  let port: number;
  let httpsPort: number;
  let upstream: http.Server;
  let certificate: { certPem: string; keyPem: string };
  const serviceId = "6c1f5d52-5d3b-4c59-9a54-0d6c38c0b8a1";

  beforeAll(async () => {
    home = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "slipway-edge-")));
    port = await testPort();
    httpsPort = await testPort();
    const { certPem, keyPem } = await selfSignedCertificate({ dir: home, names: ["www.example.test"], days: 2 });
    certificate = { certPem, keyPem };
    upstream = http.createServer((req, res) => res.end(`app saw ${req.headers.host} via ${req.headers["x-forwarded-proto"]}`));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    await ensureRouter({ home, port, host: "127.0.0.1", httpsPort });
    const client = routerClient(home);
    await client.putRoutes({
      routes: [{ serviceId, serviceName: "web", hosts: ["web.localhost"], upstream: { host: "127.0.0.1", port: (upstream.address() as AddressInfo).port } }],
    });
    const edge: EdgeState = {
      domains: [
        { hostname: "www.example.test", serviceId, verified: true, verificationToken: null, redirectHttps: true, acmeChallenge: null, certificate },
        {
          hostname: "plain.example.test",
          serviceId,
          verified: true,
          verificationToken: null,
          redirectHttps: true,
          acmeChallenge: { token: "tok-1", keyAuthorization: "tok-1.thumb" },
          certificate: null,
        },
        {
          hostname: "new.example.test",
          serviceId,
          verified: false,
          verificationToken: "verify-me",
          redirectHttps: true,
          acmeChallenge: null,
          certificate: null,
        },
      ],
    };
    await client.putEdge(edge);
  });

  afterAll(async () => {
    upstream.closeAllConnections();
    upstream.close();
    await killProcessesUnder(home);
    await fs.rm(home, { recursive: true, force: true });
  });

  const httpsGet = (servername: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: httpsPort, servername, headers: { host: servername }, ca: certificate.certPem, agent: false }, (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on("error", reject);
    });

  it("serves a verified domain over HTTPS with its certificate, and redirects its plain HTTP", async () => {
    expect(await httpsGet("www.example.test")).toEqual({ status: 200, body: "app saw www.example.test via https" });
    const plain = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get({ host: "127.0.0.1", port, path: "/a?b=1", headers: { host: "www.example.test" }, agent: false }, resolve).on("error", reject),
    );
    expect(plain.statusCode).toBe(308);
    expect(plain.headers.location).toBe(`https://www.example.test:${httpsPort}/a?b=1`);
  });

  it("serves a verified domain without a certificate over HTTP, and answers its ACME challenge", async () => {
    expect((await request(port, "plain.example.test")).body).toBe("app saw plain.example.test via http");
    expect(await request(port, "plain.example.test", "/.well-known/acme-challenge/tok-1")).toMatchObject({ status: 200, body: "tok-1.thumb" });
    expect((await request(port, "plain.example.test", "/.well-known/acme-challenge/other")).body).toBe("app saw plain.example.test via http");
    await expect(httpsGet("plain.example.test")).rejects.toThrow();
  });

  it("does not serve an unverified domain but answers its verification token", async () => {
    const unverified = await request(port, "new.example.test");
    expect(unverified.status).toBe(404);
    expect(unverified.body).toContain("not verified");
    expect(await request(port, "new.example.test", "/.well-known/slipway-verification/verify-me")).toMatchObject({ status: 200, body: "verify-me" });
    expect((await request(port, "new.example.test", "/.well-known/slipway-verification/guess")).status).toBe(404);
  });

  it("keeps the certificates on disk (0600) and serves them after a restart without the engine", async () => {
    const stat = await fs.stat(routerFiles(home).edgeFile);
    expect(stat.mode & 0o777).toBe(0o600);
    const pid = await ensureRouter({ home, port, host: "127.0.0.1", httpsPort });
    process.kill(pid, "SIGKILL");
    await eventually(
      () =>
        fs.access(`/proc/${pid}`).then(
          () => false,
          () => true,
        ),
      5_000,
      "router gone",
    );
    await ensureRouter({ home, port, host: "127.0.0.1", httpsPort });
    expect((await httpsGet("www.example.test")).status).toBe(200);
  });

  it("refuses a certificate whose key does not match, keeping the previous state", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const other = { ...certificate, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    await expect(
      routerClient(home).putEdge({
        domains: [
          { hostname: "www.example.test", serviceId, verified: true, verificationToken: null, redirectHttps: true, acmeChallenge: null, certificate: other },
        ],
      }),
    ).rejects.toThrow(/unusable/);
    expect((await httpsGet("www.example.test")).status).toBe(200);
  });
});
