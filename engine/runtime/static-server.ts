import http from "node:http";
import { staticHandler } from "./static-handler";

/**
 * The engine's static file server for static-site releases: serves the directory given as the
 * first argument on PORT (`--spa`: unknown routes answer index.html). Started by the local
 * runtime like any app (detached, own log).
 */
const [root, flag] = process.argv.slice(2);
const port = Number(process.env.PORT);
if (!root || !Number.isInteger(port) || (flag !== undefined && flag !== "--spa")) throw new Error("usage: static-server.ts <root> [--spa] (with PORT set)");

const server = http.createServer(staticHandler(root, { spa: flag === "--spa" }));
server.listen(port, "127.0.0.1", () => console.log(`serving ${root} on ${port}${flag ? " with SPA fallback" : ""}`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
