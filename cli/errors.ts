/**
 * The CLI's one error type: a message for the single `error: …` line on stderr and the exit
 * code a script can branch on. Every failure, local or from the API, ends up as one of these.
 */
export const exitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  denied: 4,
  conflict: 5,
  /** Interrupted by the user (Ctrl-C), as shells report SIGINT. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode = exitCodes.failure, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/**
 * The control plane did not answer: connection refused or reset, no answer in time, or a proxy
 * in front of it saying 502/503/504. Waiting may fix it (a restart under `npm start` takes
 * seconds), so following commands retry on this one and on nothing else.
 */
export class ControlPlaneUnreachable extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, exitCodes.failure, options);
    this.name = "ControlPlaneUnreachable";
  }
}

export const usageError = (message: string) => new CliError(message, exitCodes.usage);

/** Shown at the end of `slipway --help`: scripts rely on these numbers. */
export const exitCodesHelp = `
Exit codes:
  0    success
  1    failure: server error, control plane unreachable, deployment failed or canceled
  2    usage: bad arguments, or input the API rejected as invalid
  3    not found
  4    not logged in, bad token, or a role too low for the action
  5    conflict: already exists, already finished, secret already set
  130  interrupted`;
