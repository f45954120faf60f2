import http from "node:http";
import { parseArgs } from "node:util";
import { staticHandler } from "./static-handler";

/**
 * The engine's static file server for static-site releases: serves the directory given as the
 * first argument on PORT (`--spa`: unknown routes answer index.html). Started by the local
 * runtime like any app (detached, own log), on 127.0.0.1 where the router reaches it; the docker
 * runtime bundles it into a static site's image (docker/static-server-bundle.ts) and has it
 * listen on every address of the container (`--host 0.0.0.0`), whose published port is the way in.
 */
const usage = "usage: static-server <root> [--spa] [--host <address>] (with PORT set)";
const { values, positionals } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { spa: { type: "boolean" }, host: { type: "string" } } });
  } catch (error) {
    throw new Error(`${(error as Error).message}; ${usage}`);
  }
})();
const [root] = positionals;
const port = Number(process.env.PORT);
if (!root || positionals.length > 1 || !Number.isInteger(port)) throw new Error(usage);
const host = values.host ?? "127.0.0.1";
const spa = values.spa ?? false;

const server = http.createServer(staticHandler(root, { spa }));
server.listen(port, host, () => console.log(`serving ${root} on ${port}${spa ? " with SPA fallback" : ""}`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
