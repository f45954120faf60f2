/**
 * A preview's name, and so its services' hostnames (`<service>-pr-<number>-<project>`), can be
 * refused: taken by another service's hostname, or longer than DNS allows in a label. Then the
 * next name is tried, also after a name too long (a later one may be shorter), and a blueprint
 * whose preview no name fits is skipped, saying why, while the other blueprints' previews open:
 * the delivery is processed, not failed. On a real PostgreSQL, with the intake over real HTTP and
 * graphile-worker processing the deliveries; no engine (deployments are checked as requested).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { and, eq } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { environments, webhookDeliveries } from "../db/schema";
import { startWorker } from "../../worker/runner";
import { createTestDatabase, type TestDatabase } from "../../test/database";
import { eventually } from "../../test/engine-harness";
import { seedOrganization, testServices, type SeededOrganization } from "../../test/support/seed";
import { deliver } from "../../test/support/webhooks";
import { createWebhookIntake } from "./intake";
import type { PreviewOutcome } from "./previews";
import { summarizeDelivery } from "./summary";

const logger = pino({ level: "silent" });
const SHOP_REPO = "https://git.example.com/team/shop.git";
const SITE_REPO = "https://git.example.com/team/site.git";
const STOREFRONT_REPO = "https://git.example.com/team/customer-facing-storefront-application.git";
/**
 * Blueprints of 33 characters in project `partner-integrations-eu` (23): `web` in them has a label
 * of 3 + 33 + 23 + 2 = 61, in `pr-<n>-<blueprint>` 66.
 */
const LONG_BLUEPRINT = "integrations-with-partner-systems";
const OTHER_LONG_BLUEPRINT = "integrations-with-partner-storage";

let database: TestDatabase;
let services: Services;
let org: SeededOrganization;
let worker: Runner;
let server: http.Server;
let intake: ReturnType<typeof createWebhookIntake>;
let hook: { url: string; secret: string };
/** Environment ids by `<project>/<environment>`. */
const env: Record<string, string> = {};

const developer = () => createCaller({ services, actor: org.as("DEVELOPER") });

async function environment(project: string, name: string, service: string, url: string, blueprint: boolean) {
  const projectId = (await developer().projects.list({})).find((p) => p.name === project)?.id ?? (await developer().projects.create({ name: project })).id;
  const id = (await developer().environments.create({ projectId, name })).id;
  await developer().services.create({ environmentId: id, name: service, config: { git: { url, ref: { branch: "main" } } } });
  if (blueprint) await developer().git.setPreviewBlueprint({ environmentId: id, enabled: true });
  env[`${project}/${name}`] = id;
}

/** Opens pull request `number` of the repository through the generic hook; the delivery once processed. */
async function openPullRequest(number: number, repository: string) {
  const payload = { action: "opened", number, repository, baseBranch: "main", headBranch: "feature", headCommit: "a".repeat(40) };
  const sent = await deliver(hook.url, { provider: "generic", secret: hook.secret, event: "pull_request", payload });
  expect(sent.status, JSON.stringify(sent.body)).toBe(202);
  const id = sent.body.id as string;
  const row = await eventually(
    async () => {
      const [found] = await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id));
      return found && found.status !== "PENDING" ? found : undefined;
    },
    15_000,
    `delivery ${id} to be processed`,
  );
  expect({ status: row.status, error: row.error }).toEqual({ status: "PROCESSED", error: null });
  return { ...(row.outcome as { events: PreviewOutcome[] }).events[0]!, summary: summarizeDelivery(row) };
}

const previewsOf = (blueprintId: string) =>
  services.db
    .select({ name: environments.name })
    .from(environments)
    .where(and(eq(environments.clonedFromId, blueprintId), eq(environments.mode, "PREVIEW")));

beforeAll(async () => {
  database = await createTestDatabase();
  services = testServices(database.db);
  org = await seedOrganization(services, "preview-names");
  intake = createWebhookIntake(services, { logger, cacheMs: 0, rejectFlushMs: 20 });
  server = http.createServer((req, res) => {
    void intake.handle(req, res).then((handled) => handled || res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  services = { ...services, publicUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  worker = await startWorker({ services, connectionString: database.url, logger });
  const { connection, secret } = await createCaller({ services, actor: org.as("ADMIN") }).git.connect({ provider: "generic", name: "generic" });
  hook = { url: connection.webhookUrl, secret };

  // 31 + 3 + 27 + 2 = 63 in `dev`: in `pr-7` and every longer name, 64 and more.
  await environment("customer-analytics-platform", "dev", "nightly-report-generator-for-eu", SHOP_REPO, true);
  await environment("shop", "dev", "web", SHOP_REPO, true);
  // `web` in `pr-8` (or `pr-9`) of this project would be web-pr-8-partner-integrations-eu: `web-pr`'s in `8`.
  // `pr-8-site` makes a label of 37 characters.
  await environment("partner-integrations-eu", LONG_BLUEPRINT, "web", SITE_REPO, true);
  await environment("partner-integrations-eu", OTHER_LONG_BLUEPRINT, "web", STOREFRONT_REPO, true);
  await environment("partner-integrations-eu", "8", "web-pr", SITE_REPO, false);
  await environment("partner-integrations-eu", "9", "web-pr", STOREFRONT_REPO, false);
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await intake?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

describe("a preview's name", () => {
  it("too long under every name skips that blueprint, saying why, and the delivery's other previews open", async () => {
    const outcome = await openPullRequest(7, SHOP_REPO);
    expect(outcome.previews).toMatchObject([{ blueprintEnvironmentId: env["shop/dev"], name: "pr-7", created: true }]);
    expect(outcome.skippedBlueprints).toEqual([
      {
        blueprintEnvironmentId: env["customer-analytics-platform/dev"],
        blueprint: "dev",
        reason: expect.stringMatching(
          /^No free name for the preview of pull request #7: pr-7: too long: the hostname of service "nightly-report-generator-for-eu" would begin with "nightly-report-generator-for-eu-pr-7-customer-analytics-platform", 64 characters where DNS allows 63 in a label; pr-7-dev: too long: /,
        ),
      },
    ]);
    expect(await previewsOf(env["customer-analytics-platform/dev"]!)).toEqual([]);
    // What delivery lists show: the preview opened, and the one that was not.
    expect(outcome.summary).toBe("PR #7 opened: pr-7, no preview of dev (no name fits)");
  });

  it("too long after one taken moves on to a later name that fits", async () => {
    const outcome = await openPullRequest(8, SITE_REPO);
    expect(outcome.skippedBlueprints).toBeUndefined();
    expect(outcome.previews).toMatchObject([{ blueprintEnvironmentId: env[`partner-integrations-eu/${LONG_BLUEPRINT}`], name: "pr-8-site", created: true }]);
    expect(await previewsOf(env[`partner-integrations-eu/${LONG_BLUEPRINT}`]!)).toEqual([{ name: "pr-8-site" }]);
  });

  it("refused under every name says, for each, whose hostname it would take or how long it would be", async () => {
    const outcome = await openPullRequest(9, STOREFRONT_REPO);
    expect(outcome.previews).toEqual([]);
    const taken =
      'pr-9: Service "web" would be served at web-pr-9-partner-integrations-eu.localhost, the hostname of service "web-pr" in environment "9" of project "partner-integrations-eu" on the same cluster: choose another name for the copy';
    const tooLong = (name: string) =>
      `${name}: too long: the hostname of service "web" would begin with "web-${name}-partner-integrations-eu", ${name.length + 28} characters where DNS allows 63 in a label`;
    expect(outcome.skippedBlueprints).toMatchObject([
      { blueprintEnvironmentId: env[`partner-integrations-eu/${OTHER_LONG_BLUEPRINT}`], blueprint: OTHER_LONG_BLUEPRINT },
    ]);
    const [why, refusals] = outcome.skippedBlueprints![0]!.reason.split(/(?<=#9): /) as [string, string];
    expect(why).toBe("No free name for the preview of pull request #9");
    // The names in the order tried: `pr-9`, `pr-9-<blueprint>`, `pr-9-<repository>` (cut to 40 characters), then one made unique.
    expect(refusals.split("; ")).toEqual([
      taken,
      tooLong(`pr-9-${OTHER_LONG_BLUEPRINT}`),
      tooLong("pr-9-customer-facing-storefront-applicat"),
      expect.stringMatching(new RegExp(`^pr-9-${OTHER_LONG_BLUEPRINT}-[0-9a-z]: too long: .* 68 characters where DNS allows 63 in a label$`)),
    ]);
    expect(await previewsOf(env[`partner-integrations-eu/${OTHER_LONG_BLUEPRINT}`]!)).toEqual([]);
  });
});
