import { describe, expect, it } from "vitest";
import { formatReady, formatStopped } from "./banner";
import { createPaint } from "./prefix-lines";

const paint = createPaint(false);

describe("the banner npm start prints as it stops", () => {
  it("says the local engine keeps running, which pid it is, and how to stop it too", () => {
    const text = formatStopped(paint, { controlPlaneStarted: true, embeddedPostgres: true, engine: { pid: 4242 } });
    expect(text).toMatch(/^Slipway stopped \(web, worker and PostgreSQL\)\. Deployed apps and the router keep running/);
    expect(text).toContain("The local engine keeps running too (pid 4242): cron jobs keep their schedule");
    expect(text).toContain("npm start -- --stop-engine");
  });

  it("names only what it stopped", () => {
    expect(formatStopped(paint, { controlPlaneStarted: true, embeddedPostgres: false, engine: null })).not.toMatch(/PostgreSQL|local engine/);
    expect(formatStopped(paint, { controlPlaneStarted: false, embeddedPostgres: false, engine: null })).toBe("Slipway stopped.\n");
  });
});

describe("the banner npm start prints once up", () => {
  it("says how to reach *.localhost app URLs from clients other than browsers and curl", () => {
    const text = formatReady(paint, { dashboardUrl: "http://localhost:3000", routerPattern: "http://<service>-<env>-<project>.localhost:8917" });
    expect(text).toContain("Apps       http://<service>-<env>-<project>.localhost:8917\n");
    expect(text).toContain("(browsers and curl only; elsewhere send the Host header to 127.0.0.1:8917, or add the name to /etc/hosts)");
  });

  it("says nothing of it for a domain that resolves like any other", () => {
    const text = formatReady(paint, { dashboardUrl: "https://slipway.example.com", routerPattern: "http://<service>-<env>-<project>.apps.example.com:80" });
    expect(text).not.toContain("/etc/hosts");
  });
});
