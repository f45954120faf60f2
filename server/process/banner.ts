import type { Paint } from "./prefix-lines";

/** What `npm start` prints once: the first boot's credentials, and where things are. */

export function formatBox(lines: string[]): string {
  const width = Math.max(...lines.map((line) => line.length));
  const rule = "─".repeat(width + 2);
  return [`┌${rule}┐`, ...lines.map((line) => `│ ${line.padEnd(width)} │`), `└${rule}┘`].join("\n") + "\n";
}

export function formatCredentials(input: { adminEmail: string; adminPassword: string; apiToken: string; cliConfigPath: string | null }): string {
  return formatBox([
    "Slipway is installed. Your admin account and API token are shown this once;",
    "only their hashes are stored.",
    "",
    `  email      ${input.adminEmail}`,
    `  password   ${input.adminPassword}`,
    `  API token  ${input.apiToken}`,
    "",
    input.cliConfigPath ? `The CLI is logged in with this token (${input.cliConfigPath}).` : "Log the CLI in with: npx slipway login",
  ]);
}

/**
 * Browsers and curl answer `*.localhost` names themselves (RFC 6761, section 6.3); other clients
 * ask the system's resolver, and glibc's finds nothing for them: said where the app URLs are.
 */
function localhostHint(routerPattern: string): string | null {
  const url = /^https?:\/\/[^/:]*\.localhost(?::(\d+))?/.exec(routerPattern);
  if (!url) return null;
  return `(browsers and curl only; elsewhere send the Host header to 127.0.0.1${url[1] ? `:${url[1]}` : ""}, or add the name to /etc/hosts)`;
}

export function formatReady(paint: Paint, input: { dashboardUrl: string; routerPattern: string }): string {
  const row = (name: string, value: string) => `  ${paint.dim(name.padEnd(10))} ${value}`;
  const hint = localhostHint(input.routerPattern);
  return [
    "",
    paint.bold("Slipway is running."),
    row("Dashboard", input.dashboardUrl),
    row("Apps", input.routerPattern),
    ...(hint ? [row("", hint)] : []),
    row("CLI", "npx slipway project create demo, then see README.md"),
    row("Stop", "Ctrl-C (deployed apps, the router and the local engine keep running)"),
    "",
  ].join("\n");
}

/**
 * Said once `npm start` has stopped: what stopped, and what keeps running by design (issue 12):
 * the apps, the router and the local engine, whose cron jobs keep their schedule; and how to
 * stop the engine too.
 */
export function formatStopped(paint: Paint, input: { controlPlaneStarted: boolean; embeddedPostgres: boolean; engine: { pid: number } | null }): string {
  if (!input.controlPlaneStarted) return `${paint.bold("Slipway stopped.")}\n`;
  const stopped = input.embeddedPostgres ? "web, worker and PostgreSQL" : "web and worker";
  const lines = [`${paint.bold("Slipway stopped")} (${stopped}). Deployed apps and the router keep running: they are designed to outlive the control plane.`];
  if (input.engine) {
    lines.push(
      `The local engine keeps running too (pid ${input.engine.pid}): cron jobs keep their schedule, and it reconnects to the next npm start.`,
      `To stop it as well: ${paint.bold("npm start -- --stop-engine")}`,
    );
  }
  lines.push("Run `npm start` again to pick up where you left off; all data is kept.");
  return `${lines.join("\n")}\n`;
}
