import { Duplex } from "node:stream";
import type Docker from "dockerode";
import type { ExecOptions, ExecSession } from "../runtime";
import { describeError } from "./docker-host";
import { demultiplex } from "./streams";

/**
 * Starts `argv` in a running container (POST /containers/{id}/exec, then a hijacked
 * /exec/{id}/start) and returns it as a duplex stream: what is written goes to the process's
 * stdin, ending the writable side closes stdin; the readable side is its output (stdout and
 * stderr merged, as a terminal shows them). With a TTY the output is raw terminal bytes.
 */
export async function startExec(docker: Docker, containerId: string, argv: string[], options: ExecOptions): Promise<ExecSession> {
  const container = docker.getContainer(containerId);
  const exec = await container.exec({
    Cmd: argv,
    // As the container's own process: its user, no privileges beyond its own (hardening.ts).
    Privileged: false,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: options.tty,
    Env: Object.entries(options.env ?? {}).map(([key, value]) => `${key}=${value}`),
  });
  const socket = (await exec.start({ hijack: true, stdin: true, Tty: options.tty })) as unknown as Duplex;

  let settleExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((resolve) => (settleExit = resolve));
  const session = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      // Half-close: the process sees end of input and can still write its last output.
      socket.end();
      callback();
    },
    read() {
      socket.resume();
    },
    destroy(error, callback) {
      socket.destroy();
      callback(error);
    },
  }) as ExecSession;
  const push = (data: Buffer) => {
    if (!session.push(data)) socket.pause();
  };
  if (options.tty) socket.on("data", push);
  else demultiplex(socket, (_fd, payload) => push(payload));
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    session.push(null);
    exec
      .inspect()
      .then((info) => settleExit(typeof info.ExitCode === "number" ? info.ExitCode : null))
      .catch(() => settleExit(null));
  };
  socket.once("end", finish);
  socket.once("close", finish);
  socket.once("error", (error) => session.destroy(error));

  Object.defineProperty(session, "exited", { value: exited });
  session.resize = async ({ cols, rows }) => {
    try {
      await exec.resize({ h: rows, w: cols });
    } catch (error) {
      throw new Error(`could not resize the terminal: ${describeError(error)}`);
    }
  };
  if (options.tty && options.cols && options.rows) await session.resize({ cols: options.cols, rows: options.rows }).catch(() => undefined);
  return session;
}
