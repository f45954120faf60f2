import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as pty from "node-pty";
import { Server } from "socket.io";
import { io, type Socket } from "socket.io-client";

/**
 * The floor of a shell through the platform's topology, with none of its code: a client's
 * socket.io connection to a relay process, which forwards each key to a host process connected
 * to it (as an engine dials the web process), which writes it to a pty and sends the echo back
 * the same way. Two processes and two sockets between the client and the shell, as in the
 * platform; each hop wakes a process (on this VM, possibly an idle vCPU).
 *
 * `tsx bench/shell-relay-floor.ts relay` listens and prints its port;
 * `tsx bench/shell-relay-floor.ts host <url>` connects and serves a pty.
 */

const script = fileURLToPath(import.meta.url);

function relay() {
  const server = http.createServer();
  const ioServer = new Server(server, { perMessageDeflate: false });
  let host: import("socket.io").Socket | null = null;
  const clients = new Set<import("socket.io").Socket>();
  ioServer.on("connection", (socket) => {
    if (socket.handshake.auth.role === "host") {
      host = socket;
      socket.on("output", (data: string) => clients.forEach((client) => client.emit("output", data)));
    } else {
      clients.add(socket);
      socket.on("input", (data: string) => host?.emit("input", data));
      socket.on("disconnect", () => clients.delete(socket));
    }
  });
  server.listen(0, "127.0.0.1", () => console.log(`port ${(server.address() as AddressInfo).port}`));
}

function host(url: string) {
  const shell = pty.spawn("/bin/sh", [], {
    name: "xterm-256color",
    cols: 200,
    rows: 50,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TERM: "xterm-256color" },
  });
  const socket = io(url, { auth: { role: "host" }, transports: ["websocket"] });
  shell.onData((data) => socket.emit("output", data));
  socket.on("input", (data: string) => shell.write(data));
  socket.on("connect", () => console.log("connected"));
}

/** Starts the relay and the host; resolves with a client socket (its `input` and `output` events) and a stop. */
export async function startShellRelayFloor(): Promise<{ client: Socket; stop: () => Promise<void> }> {
  const children: ChildProcess[] = [];
  const start = (args: string[], ready: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "inherit"], cwd: path.dirname(script) });
      children.push(child);
      child.once("exit", () => reject(new Error(`the relay floor's ${args[0]} exited`)));
      child.stdout!.on("data", (chunk: Buffer) => {
        const match = ready.exec(chunk.toString());
        if (match) resolve(match[1] ?? "");
      });
    });
  const port = await start(["relay"], /port (\d+)/);
  const url = `http://127.0.0.1:${port}`;
  await start(["host", url], /(connected)/);
  const client = io(url, { auth: { role: "client" }, transports: ["websocket"] });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("connect_error", reject);
  });
  return {
    client,
    async stop() {
      client.disconnect();
      for (const child of children) {
        child.removeAllListeners("exit");
        child.kill("SIGTERM");
      }
    },
  };
}

if (process.argv[1] === script) {
  const [role, url] = process.argv.slice(2);
  if (role === "relay") relay();
  else if (role === "host" && url) host(url);
  else throw new Error("usage: shell-relay-floor.ts relay | host <url>");
}
