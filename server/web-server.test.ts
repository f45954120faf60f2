import pino from "pino";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../test/database";
import { testServices } from "../test/support/seed";
import { startWebServer } from "./web-server";

describe("the web server", () => {
  // The realtime adapter acquires its LISTEN connection in the background: a server closed
  // before that finished used to wait for that connection forever (a test timed out on a busy
  // machine, and a web process could outlive its supervisor).
  it("closes, and stops listening, even right after it started", async () => {
    const database = await createTestDatabase();
    const services = testServices(database.db);
    for (let round = 0; round < 8; round++) {
      const web = await startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1" });
      await web.close();
      await expect(fetch(`${web.url}/api/health`)).rejects.toThrow();
    }
  });
});
