import http from "node:http";
import sirv from "sirv";

/**
 * The engine's static file server for static-site releases: serves the directory given as the
 * first argument on PORT. Started by the local runtime like any app (detached, own log).
 */
const root = process.argv[2];
const port = Number(process.env.PORT);
if (!root || !Number.isInteger(port)) throw new Error("usage: static-server.ts <root> (with PORT set)");

const serve = sirv(root, { dev: false, etag: true, single: false, dotfiles: false });
const server = http.createServer((req, res) => {
  serve(req, res, () => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
});
server.listen(port, "127.0.0.1", () => console.log(`serving ${root} on ${port}`));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
