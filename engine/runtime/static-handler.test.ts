import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isHashedAsset, staticHandler } from "./static-handler";

/** A built single-page app as Vite writes it: index.html and hashed assets. */
async function builtSite(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "slipway-static-"));
  await fs.mkdir(path.join(dir, "assets"));
  await fs.writeFile(path.join(dir, "index.html"), `<!doctype html><div id="root"></div><script src="/assets/index-Bx8k2Pq1.js"></script>`);
  await fs.writeFile(path.join(dir, "assets", "index-Bx8k2Pq1.js"), `console.log(${JSON.stringify("client routes ".repeat(200))});`);
  await fs.writeFile(path.join(dir, "favicon.svg"), "<svg/>");
  await fs.writeFile(path.join(path.dirname(dir), "secret-beside.txt"), "not served");
  return dir;
}

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };
function get(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function listen(handler: http.RequestListener): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

describe("the engine's static server", () => {
  let site: string;
  let spa: { port: number; server: http.Server };
  let plain: { port: number; server: http.Server };

  beforeAll(async () => {
    site = await builtSite();
    spa = await listen(staticHandler(site, { spa: true }));
    plain = await listen(staticHandler(site, { spa: false }));
  });
  afterAll(async () => {
    spa.server.close();
    plain.server.close();
    await fs.rm(site, { recursive: true, force: true });
  });

  it("answers a client route of an SPA with index.html, revalidated each time", async () => {
    const page = await get(spa.port, "/dashboard/settings?tab=1");
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<div id="root">');
    expect(page.headers["cache-control"]).toBe("no-cache");
  });

  it("caches hashed assets for a year, compressed by Accept-Encoding", async () => {
    const gzip = await get(spa.port, "/assets/index-Bx8k2Pq1.js", { "accept-encoding": "gzip" });
    expect(gzip.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(zlib.gunzipSync(gzip.body).toString()).toContain("client routes");
    const brotli = await get(spa.port, "/assets/index-Bx8k2Pq1.js", { "accept-encoding": "br, gzip" });
    expect(brotli.headers["content-encoding"]).toBe("br");
    expect(zlib.brotliDecompressSync(brotli.body).toString()).toContain("client routes");
    const identity = await get(spa.port, "/assets/index-Bx8k2Pq1.js");
    expect(identity.headers["content-encoding"]).toBeUndefined();
  });

  it("answers 304 to a matching ETag", async () => {
    const first = await get(spa.port, "/favicon.svg");
    expect(first.headers.etag).toBeTruthy();
    expect((await get(spa.port, "/favicon.svg", { "if-none-match": String(first.headers.etag) })).status).toBe(304);
  });

  it("answers a missing asset with a real 404, in an SPA too", async () => {
    expect((await get(spa.port, "/assets/index-missing1.js")).status).toBe(404);
    expect((await get(plain.port, "/dashboard")).status).toBe(404);
  });

  it("never serves a file outside its directory", async () => {
    for (const attempt of ["/../secret-beside.txt", "/assets/..%2f..%2fsecret-beside.txt", "/%2e%2e/secret-beside.txt"]) {
      const answer = await get(plain.port, attempt);
      expect(answer.status, attempt).toBe(404);
      expect(answer.body.toString()).not.toContain("not served");
    }
  });

  it("serves the site's own 404.html when it has one", async () => {
    await fs.writeFile(path.join(site, "404.html"), "<h1>lost</h1>");
    const answer = await get(plain.port, "/nowhere");
    expect(answer.status).toBe(404);
    expect(answer.body.toString()).toBe("<h1>lost</h1>");
  });
});

describe("isHashedAsset", () => {
  it("knows the hashed names of Vite, Create React App, Angular and Astro", () => {
    for (const name of [
      "/assets/index-BdX3k2aL.js",
      "/static/js/main.3f2a1b9c.js",
      "/static/js/787.28cd2f7a.chunk.js",
      "/main-HJ4GZTQ1.js",
      "/_astro/index.Df3kL2aB.css",
      // Without a digit: what create-vite's React template builds (Vite 8), Rollup's URL-safe base64, esbuild's base32.
      "/assets/index-CwOdOtxP.js",
      "/assets/hero-CLDdwZDr.png",
      "/assets/index-Cw-d_txP.js",
      "/main-HJWGZTQL.js",
      "/_astro/index.DfkLaBcd.css",
    ])
      expect(isHashedAsset(name), name).toBe(true);
    for (const name of [
      "/index.html",
      "/favicon.ico",
      "/js/jquery.slimmest.js",
      "/robots.txt",
      "/about-20240101.html",
      "/js/jquery.dataTables.js",
      "/js/app-Settings.js",
      "/css/my-component.css",
    ])
      expect(isHashedAsset(name), name).toBe(false);
  });
});
