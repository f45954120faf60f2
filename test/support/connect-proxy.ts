import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";

/**
 * A forward proxy on 127.0.0.1, as a corporate network's egress proxy: it tunnels (HTTP CONNECT,
 * what clients send for https:// URLs through HTTPS_PROXY) and forwards plain http:// requests
 * (sent to it in absolute form through http_proxy), recording each one's `host:port` in
 * `tunnels` or `forwarded`, and a forwarded request's whole URL in `forwardedUrls`. Anything
 * else is answered 502.
 */
export async function startConnectProxy(): Promise<{ url: string; tunnels: string[]; forwarded: string[]; forwardedUrls: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const forwardedUrls: string[] = [];
  // A tunnel's sockets leave the HTTP server's hands: closed here at the end.
  const open = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const target = URL.canParse(req.url ?? "") ? new URL(req.url!) : null;
    if (target?.protocol !== "http:") return void res.writeHead(502).end();
    forwarded.push(target.host);
    forwardedUrls.push(target.href);
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? "";
    tunnels.push(target);
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    open.add(client);
    const upstream = net.connect(port, host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    open.add(upstream);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    forwarded,
    forwardedUrls,
    close: async () => {
      for (const socket of open) socket.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
