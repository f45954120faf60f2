import os from "node:os";
import pino from "pino";
import { io, type Socket } from "socket.io-client";
import { createControlPlaneClient } from "../../engine/control-plane-client";
import { ENGINE_NAMESPACE, PROTOCOL_VERSION } from "../../engine/protocol/messages";
import { startLocalExec } from "../../engine/runtime/local/exec";
import { createShellSessions, serveShellMessages } from "../../engine/shell-sessions";

/** Resolves once the socket connected, rejects on its refusal. */
export function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/**
 * An engine that only serves shells, as the real one does (engine/shell-sessions.ts, its
 * control-plane client, the local runtime's processes, wired by serveShellMessages), connected to
 * the web process at `url`: for tests of what lies between a shell and its reader. `shipped` counts
 * the characters of output it sent, acknowledged or not.
 */
export async function connectShellEngine(url: string, engineToken: string) {
  const socket = await connected(
    io(`${url}${ENGINE_NAMESPACE}`, {
      auth: {
        token: engineToken,
        protocolVersion: PROTOCOL_VERSION,
        engineVersion: "test",
        capabilities: { runtime: "local", serviceKinds: ["APPLICATION"], shells: true },
      },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    }),
  );
  const engine = { socket, shipped: 0 };
  const client = createControlPlaneClient({ socket: () => socket });
  const shells = createShellSessions({
    exec: async (_serviceId, argv, options) => startLocalExec(argv, { ...options, cwd: os.tmpdir(), env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } }),
    send: (name, payload) => {
      if ("data" in payload) engine.shipped += payload.data.length;
      client.notify(name, payload);
    },
    sendAcknowledged: async (payload) => {
      engine.shipped += payload.data.length;
      await client.request("shell:output", payload);
    },
    logger: pino({ level: "silent" }),
  });
  serveShellMessages(client, socket, shells, () => undefined);
  return engine;
}
