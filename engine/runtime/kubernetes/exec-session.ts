import { Duplex, PassThrough, Writable } from "node:stream";
import type { ExecOptions, ExecSession } from "../runtime";
import type { ExecHandle, KubeApi } from "./kube-api";

/**
 * A shell in a pod (pods/exec over the WebSocket protocol, resize included) as the engine's
 * ExecSession: what is written goes to the process's stdin, the readable side is its output.
 * Kubernetes' exec takes no environment: variables are set with `env` in front of the command.
 */
export async function startPodExec(
  api: KubeApi,
  target: { namespace: string; pod: string; container: string },
  argv: string[],
  options: ExecOptions,
): Promise<ExecSession> {
  const stdin = new PassThrough();
  let handle: ExecHandle | null = null;
  const session = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      stdin.write(chunk, callback);
    },
    final(callback) {
      stdin.end();
      callback();
    },
    read() {},
    destroy(error, callback) {
      handle?.close();
      callback(error);
    },
  });
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      session.push(chunk);
      callback();
    },
  });
  const env = Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`);
  const command = env.length > 0 ? ["env", ...env, ...argv] : argv;
  handle = await api.exec(target.namespace, target.pod, target.container, command, {
    stdin,
    stdout: output,
    stderr: options.tty ? null : output,
    tty: options.tty,
  });
  const started = handle;
  if (options.cols && options.rows) started.resize({ cols: options.cols, rows: options.rows });
  return Object.assign(session, {
    resize: async (size: { cols: number; rows: number }) => started.resize(size),
    exited: started.exited.then((code) => {
      session.push(null);
      return code;
    }),
  });
}
