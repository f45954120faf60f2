import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { eq } from "drizzle-orm";
import { io } from "socket.io-client";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { instanceSettings, rateLimits, users } from "../db/schema";
import { UI_NAMESPACE } from "../realtime/ui-protocol";
import { startWebServer } from "../web-server";
import { hashPassword } from "./passwords";
import { AUTH_LIMITS, addressKey } from "./rate-limits";

/**
 * Issue 13, part 7: guessing is rate limited with counters in PostgreSQL, so two web processes
 * count the same attempts. Requests leave from chosen loopback addresses (127.0.0.x), so the
 * server sees different clients.
 */
const AUTH_SECRET = "test-secret-of-at-least-32-characters!!";
const EMAIL = "ada@example.test";
const PASSWORD = "correct horse battery";

let database: TestDatabase;
let org: SeededOrganization;
let webA: Awaited<ReturnType<typeof startWebServer>>;
let webB: Awaited<ReturnType<typeof startWebServer>>;

beforeAll(async () => {
  database = await createTestDatabase();
  const services = testServices(database.db);
  org = await seedOrganization(services, "limits");
  await database.db
    .update(users)
    .set({ email: EMAIL, passwordHash: await hashPassword(PASSWORD) })
    .where(eq(users.email, "limits@example.test"));
  const start = () =>
    startWebServer({ services, databaseUrl: database.url, logger: pino({ level: "silent" }), port: 0, host: "127.0.0.1", authSecret: AUTH_SECRET });
  webA = await start();
  webB = await start();
});
afterAll(async () => {
  await webA?.close();
  await webB?.close();
});

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string; ms: number };

/** One HTTP request from `from` (a loopback address): fetch cannot choose its source address. */
function request(url: string, from: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? "GET", headers: init.headers, localAddress: from, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: Date.now() - started }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

const cookiesOf = (answer: Answer) => (answer.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]!);

/** A sign-in the way the dashboard's form makes it (CSRF token first), from `from`. */
async function signIn(url: string, from: string, password: string) {
  const csrf = await request(`${url}/api/auth/csrf`, from);
  const { csrfToken } = JSON.parse(csrf.body) as { csrfToken: string };
  const answer = await request(`${url}/api/auth/callback/credentials`, from, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookiesOf(csrf).join("; "), "x-auth-return-redirect": "1" },
    body: new URLSearchParams({ csrfToken, email: EMAIL, password }).toString(),
  });
  return { ...answer, signedIn: cookiesOf(answer).some((c) => /^authjs\.session-token=./.test(c)) };
}

describe("rate limits", () => {
  it(
    "slows and then refuses 50 failed sign-ins in a row across two web processes; the right password still works afterwards",
    { timeout: 90_000 },
    async () => {
      const attacker = "127.0.0.2";
      const attempts = [];
      for (let i = 0; i < 50; i++) attempts.push(await signIn(i % 2 === 0 ? webA.url : webB.url, attacker, `wrong ${i}`));
      expect(attempts.some((attempt) => attempt.signedIn)).toBe(false);

      const refusedFrom = attempts.findIndex((attempt) => attempt.status === 429);
      // The limit counts attempts on both processes together: one process alone saw only half of them.
      expect(refusedFrom).toBe(AUTH_LIMITS.signInPerAddress.points);
      expect(attempts.slice(refusedFrom).every((attempt) => attempt.status === 429)).toBe(true);
      for (const refused of attempts.slice(refusedFrom)) {
        expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
        expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(AUTH_LIMITS.signInPerAddress.blockDuration);
        // What the dashboard's signIn() reads: an error it can name, and the seconds to wait.
        expect(new URL((JSON.parse(refused.body) as { url: string }).url).searchParams.get("error")).toBe("TooManyAttempts");
      }
      // Slowed before refused: the last attempts that were checked waited a second each, the first did not.
      const checked = attempts.slice(0, refusedFrom);
      expect(Math.min(...checked.slice(-5).map((attempt) => attempt.ms))).toBeGreaterThanOrEqual(AUTH_LIMITS.maxDelayMs);
      expect(checked[0]!.ms).toBeLessThan(AUTH_LIMITS.maxDelayMs);
      // Refused without checking the password, so at once.
      expect(Math.max(...attempts.slice(refusedFrom).map((attempt) => attempt.ms))).toBeLessThan(AUTH_LIMITS.maxDelayMs);

      // The right password from the attacker's address is refused too, until the block ends...
      expect((await signIn(webA.url, attacker, PASSWORD)).status).toBe(429);
      // ...but its owner, elsewhere, signs in at once: one address cannot lock an account.
      const owner = await signIn(webB.url, "127.0.0.3", PASSWORD);
      expect(owner.signedIn).toBe(true);
      expect(owner.status).toBe(200);

      // Afterwards: once the window has passed (its counters expired), the right password works from there too.
      await database.db.update(rateLimits).set({ expire: Date.now() - 1 });
      expect((await signIn(webA.url, attacker, PASSWORD)).signedIn).toBe(true);
    },
  );

  it("refuses bad API tokens per address with Retry-After, on the API and the socket, and leaves other addresses alone", async () => {
    const prober = "127.0.0.4";
    const whoami = (url: string, from: string, token: string) => request(`${url}/api/v1/whoami`, from, { headers: { authorization: `Bearer ${token}` } });
    const statuses = [];
    for (let i = 0; i < AUTH_LIMITS.badTokensPerAddress.points + 5; i++) {
      statuses.push((await whoami(i % 2 === 0 ? webA.url : webB.url, prober, `swp_guess${i}`)).status);
    }
    expect(statuses.slice(0, AUTH_LIMITS.badTokensPerAddress.points).every((status) => status === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);

    const token = await org.apiToken("VIEWER");
    const blocked = await whoami(webB.url, prober, token);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    const trpc = await request(`${webA.url}/api/trpc/organization.whoami?input=${encodeURIComponent("{}")}`, prober, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(trpc.status).toBe(429);
    // `localAddress` reaches Node's WebSocket client, though socket.io-client's types do not list it.
    const options = { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true, localAddress: prober };
    const socket = io(`${webA.url}${UI_NAMESPACE}`, options);
    const refusal = await new Promise<Error & { data?: { code?: string } }>((resolve) => socket.once("connect_error", resolve));
    socket.disconnect();
    expect(refusal.message).toMatch(/too many bad API tokens/i);
    expect(refusal.data?.code).toBe("TOO_MANY_REQUESTS");

    expect((await whoami(webA.url, "127.0.0.5", token)).status).toBe(200);
  });

  it("limits sign-ups per address where anyone may sign up, on every web process", async () => {
    await database.db.insert(instanceSettings).values({ signup: "OPEN" });
    const signUp = (url: string, from: string, email: string) =>
      request(`${url}/api/v1/signup`, from, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "Bulk", email, password: "a long enough password" }),
      });
    const statuses = [];
    for (let i = 0; i <= AUTH_LIMITS.signUpsPerAddress.points; i++) {
      statuses.push((await signUp(i % 2 === 0 ? webA.url : webB.url, "127.0.0.6", `bulk-${i}@example.test`)).status);
    }
    expect(statuses.slice(0, AUTH_LIMITS.signUpsPerAddress.points).every((status) => status === 200)).toBe(true);
    const refused = await signUp(webA.url, "127.0.0.6", "one-more@example.test");
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body)).toMatchObject({ message: expect.stringMatching(/^Too many sign-ups from this address/) });
    expect(await database.db.select().from(users).where(eq(users.email, "one-more@example.test"))).toEqual([]);
    expect((await signUp(webB.url, "127.0.0.7", "elsewhere@example.test")).status).toBe(200);
  });

  it("counts IPv6 clients by their /64 and IPv4-mapped ones as IPv4", () => {
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("192.0.2.7")).toBe("192.0.2.7");
  });
});
