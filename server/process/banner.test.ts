import { describe, expect, it } from "vitest";
import { formatStopped } from "./banner";
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
