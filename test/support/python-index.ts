import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * A tiny Python package index on 127.0.0.1, as a private mirror would be: PEP 503's "simple"
 * API (https://peps.python.org/pep-0503/) over a directory of real wheels, `/simple/<name>/`
 * listing each project's files with their sha256 in the link's fragment, as pip checks them. It
 * records every request.
 */
export type PythonIndex = {
  /** The index URL pip takes (`--index-url`, PIP_INDEX_URL): …/simple/ */
  url: string;
  /** Every path asked for, in order. */
  requests: string[];
  /** The wheels downloaded so far (their file names). */
  downloads(): string[];
  close(): Promise<void>;
};

/** A wheel file name's project (`MarkupSafe-2.1.2-cp311-….whl` → markupsafe), normalized as PEP 503 says. */
function projectOf(wheel: string): string {
  return wheel
    .split("-")[0]!
    .toLowerCase()
    .replace(/[-_.]+/g, "-");
}

export async function sha256Of(file: string): Promise<string> {
  return createHash("sha256")
    .update(await fsp.readFile(file))
    .digest("hex");
}

/** `tls`: served over HTTPS with this certificate (its URL then https://), as an index behind a corporate CA is. */
export async function startPythonIndex(wheelsDir: string, options: { tls?: { cert: string; key: string } } = {}): Promise<PythonIndex> {
  const wheels = (await fsp.readdir(wheelsDir)).filter((name) => name.endsWith(".whl"));
  const hashes = new Map(await Promise.all(wheels.map(async (wheel) => [wheel, await sha256Of(path.join(wheelsDir, wheel))] as const)));
  const requests: string[] = [];
  const handler: http.RequestListener = (req, res) => {
    const pathname = decodeURIComponent(new URL(req.url ?? "/", "http://index").pathname);
    requests.push(pathname);
    if (req.method !== "GET") return void res.writeHead(405).end();
    const project = /^\/simple\/([^/]+)\/$/.exec(pathname)?.[1];
    if (project !== undefined) {
      const files = wheels.filter((wheel) => projectOf(wheel) === project);
      if (files.length === 0) return void res.writeHead(404).end("not found");
      const links = files.map((wheel) => `<a href="/files/${wheel}#sha256=${hashes.get(wheel)}">${wheel}</a><br>`).join("\n");
      res.setHeader("content-type", "text/html");
      return void res.end(`<!DOCTYPE html><html><body>\n${links}\n</body></html>\n`);
    }
    const wheel = /^\/files\/([^/]+\.whl)$/.exec(pathname)?.[1];
    if (wheel && hashes.has(wheel)) {
      res.setHeader("content-type", "application/octet-stream");
      return void fs.createReadStream(path.join(wheelsDir, wheel)).pipe(res);
    }
    res.writeHead(404).end("not found");
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}/simple/`,
    requests,
    downloads: () => requests.filter((request) => request.startsWith("/files/")).map((request) => request.slice("/files/".length)),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Where test/fixtures/pypi/fetch keeps the wheels it packed at install time. */
export const wheelsDir = fileURLToPath(new URL("../fixtures/pypi/cache/wheels/", import.meta.url));

/** The wheels of the cache, or what is missing when test/fixtures/pypi/fetch has not run here. */
export async function cachedWheels(): Promise<{ ok: true; dir: string; files: string[] } | { ok: false; missing: string }> {
  const files = (await fsp.readdir(wheelsDir).catch(() => [] as string[])).filter((name) => name.endsWith(".whl"));
  const needed = ["flask", "gunicorn", "uvicorn", "starlette"];
  if (!needed.every((project) => files.some((file) => projectOf(file) === project)))
    return { ok: false, missing: "the wheels of the tests' Python package index (run test/fixtures/pypi/fetch)" };
  return { ok: true, dir: wheelsDir, files };
}
