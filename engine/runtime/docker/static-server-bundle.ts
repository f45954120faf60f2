import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * The engine's static server (../static-server.ts, with sirv and compression) as one JavaScript
 * file that any Node from 16 on runs without node_modules: what a static site's image serves its
 * files with, so that it answers as it does on the local runtime (compression, cache headers for
 * hashed assets, the SPA fallback). Bundled once per engine process.
 */
let bundled: Promise<string> | null = null;

export function staticServerBundle(): Promise<string> {
  bundled ??= bundle().catch((error: unknown) => {
    bundled = null;
    throw error;
  });
  return bundled;
}

async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("../static-server.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    // The oldest Node the engine installs for an app that names one in a static site (engines.node) and still runs well.
    target: "node16",
    format: "cjs",
    write: false,
    minify: true,
    legalComments: "inline",
    logLevel: "silent",
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error("esbuild produced no bundle of the static server");
  return file.text;
}
