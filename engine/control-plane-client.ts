import type { Socket } from "socket.io-client";
import type { z } from "zod";
import {
  engineToServer,
  serverToEngine,
  serverToEngineAcks,
  type EngineMessageName,
  type EnginePayload,
  type ServerMessageName,
  type ServerPayload,
} from "./protocol/messages";

/**
 * The engine's side of the protocol (engine/protocol/messages.ts), typed and validated like the
 * control plane's: every message is checked against the catalog before it leaves, every
 * acknowledgement and every server message is parsed before it is used. (The type assertions
 * below only restate, for a generic message name, what the parse of that name's schema proved.)
 */

type OkAck<N extends EngineMessageName> = Omit<Extract<z.infer<(typeof engineToServer)[N][1]>, { ok: true }>, "ok">;

/**
 * How a request ended:
 * - `ok`: stored or answered, with the acknowledgement's fields;
 * - `refused`: the control plane (or this engine's own check of the payload: code INVALID)
 *   answered that it will not take it; its code says whether trying again can help;
 * - `unreachable`: no answer (not connected, or no acknowledgement in time): try again later.
 */
export type Answer<N extends EngineMessageName> =
  { status: "ok"; ack: OkAck<N> } | { status: "refused"; code: string; message: string } | { status: "unreachable"; reason: string };

/** Messages of this direction sent without an acknowledgement (terminal output is ordered by seq instead). */
type Notification = "shell:output" | "shell:exit";

/**
 * Requests waited for until answered or the connection drops, never given up on after a time.
 * Acknowledged terminal output (engine/shell-sessions.ts) is answered once the session's client
 * has shown it, which takes as long as the client is behind: given up on after ackTimeoutMs, a
 * client silent longer let some 256 KiB more out each time, to pile up in the web process. It
 * cannot hang a session for good: a control plane that died drops the connection (socket.io's
 * heartbeat, some 45 s), which rejects what waits and ends the engine's sessions; a client that
 * left ends its session (closed by its relay, or by the relay's keepalives stopping); the relay
 * itself takes output as shown after waiting 30 s for a client (server/realtime/shell-relay.ts);
 * and a session with no input ends after its idle timeout.
 */
const UNTIL_ANSWERED: ReadonlySet<EngineMessageName> = new Set(["shell:output"]);

export type ControlPlaneClient = ReturnType<typeof createControlPlaneClient>;

export function createControlPlaneClient(options: { socket: () => Socket | null; ackTimeoutMs?: number }) {
  const ackTimeoutMs = options.ackTimeoutMs ?? 10_000;

  function checked<N extends EngineMessageName>(name: N, payload: EnginePayload<N>) {
    const parsed = engineToServer[name][0].safeParse(payload);
    if (parsed.success) return { ok: true as const, payload: parsed.data };
    const issue = parsed.error.issues[0];
    return { ok: false as const, message: `this engine built an invalid ${name}: ${issue ? `${issue.path.join(".")}: ${issue.message}` : "unknown"}` };
  }

  return {
    async request<N extends EngineMessageName>(name: N, payload: EnginePayload<N>): Promise<Answer<N>> {
      const outgoing = checked(name, payload);
      if (!outgoing.ok) return { status: "refused", code: "INVALID", message: outgoing.message };
      const socket = options.socket();
      if (!socket?.connected) return { status: "unreachable", reason: "not connected to the control plane" };
      let raw: unknown;
      try {
        raw = UNTIL_ANSWERED.has(name)
          ? await socket.emitWithAck(name, outgoing.payload)
          : await socket.timeout(ackTimeoutMs).emitWithAck(name, outgoing.payload);
      } catch {
        if (UNTIL_ANSWERED.has(name)) return { status: "unreachable", reason: `the connection was lost before ${name} was acknowledged` };
        return { status: "unreachable", reason: `no acknowledgement of ${name} within ${ackTimeoutMs / 1000} s` };
      }
      const ack = engineToServer[name][1].safeParse(raw);
      if (!ack.success)
        return { status: "refused", code: "INVALID_ACK", message: `the control plane answered ${name} with an acknowledgement this engine cannot read` };
      if (!ack.data.ok) return { status: "refused", code: ack.data.error.code, message: ack.data.error.message };
      const { ok: _ok, ...fields } = ack.data;
      return { status: "ok", ack: fields as OkAck<N> };
    },

    /** Sends a notification; false when it was not sent (invalid, or not connected). */
    notify<N extends Notification>(name: N, payload: EnginePayload<N>): boolean {
      const outgoing = checked(name, payload);
      const socket = options.socket();
      if (!outgoing.ok || !socket?.connected) return false;
      socket.emit(name, outgoing.payload);
      return true;
    },

    /**
     * Listens to a control-plane message, handing the handler its parsed payload; a payload that
     * does not parse is reported to `onInvalid` and, for a request, answered INVALID.
     */
    on<N extends ServerMessageName>(
      socket: Socket,
      name: N,
      handler: (payload: ServerPayload<N>, reply: (answer: ServerAck<N>) => void) => void,
      onInvalid: (name: N, message: string) => void,
    ): void {
      socket.on(name as string, (payload: unknown, ack?: (answer: unknown) => void) => {
        const reply = (answer: ServerAck<N>) => {
          if (typeof ack === "function") ack(answer);
        };
        const schema: z.ZodType = serverToEngine[name];
        const parsed = schema.safeParse(payload);
        if (parsed.success) return handler(parsed.data as ServerPayload<N>, reply);
        const message = parsed.error.issues[0]?.message ?? `invalid ${name}`;
        onInvalid(name, message);
        if (typeof ack === "function") ack({ ok: false, error: { code: "INVALID", message } });
      });
    },
  };
}

/** The acknowledgement an engine answers a control-plane request with (only `shell:open` asks for one). */
export type ServerAck<N extends ServerMessageName> = N extends keyof typeof serverToEngineAcks ? z.infer<(typeof serverToEngineAcks)[N]> : never;
