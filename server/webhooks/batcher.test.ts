import { randomUUID } from "node:crypto";
import { eq, inArray } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/database";
import { seedOrganization, testServices } from "../../test/support/seed";
import { createCaller } from "../api/root";
import type { Services } from "../context";
import { gitConnections, webhookDeliveries } from "../db/schema";
import { createDeliveryBatcher, type DeliveryRow } from "./batcher";

let services: Services;
let row: (deliveryId: string) => DeliveryRow;

beforeAll(async () => {
  const database = await createTestDatabase();
  services = testServices(database.db);
  const org = await seedOrganization(services, "batcher");
  const { connection: created } = await createCaller({ services, actor: org.as("ADMIN") }).git.connect({ provider: "generic", name: "batched" });
  const [connection] = await services.db.select().from(gitConnections).where(eq(gitConnections.id, created.id));
  row = (deliveryId) => ({
    organizationId: org.organizationId,
    connectionId: created.id,
    deliveryId,
    event: "push",
    repository: null,
    headers: { "x-slipway-delivery": deliveryId },
    body: Buffer.from(JSON.stringify({ deliveryId })),
    status: "IGNORED",
    sealedSecret: connection!.encryptedSecret,
  });
});

const storedRows = (ids: string[]) => services.db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.id, ids));

describe("the delivery batcher", () => {
  it("writes a lone delivery at once, and answers only once it is committed", async () => {
    const batcher = createDeliveryBatcher(services.db);
    const stored = await batcher.add(row("lone"));
    if (stored.outcome !== "stored") throw new Error("expected the delivery to be stored");
    // Read on another pooled connection: the row is committed, not merely written.
    const [found] = await storedRows([stored.id]);
    expect(found).toMatchObject({ deliveryId: "lone", headers: { "x-slipway-delivery": "lone" }, payload: '{"deliveryId":"lone"}', status: "IGNORED" });
    expect(batcher.stats).toMatchObject({ batches: 1, rows: 1 });
  });

  it("groups concurrent deliveries: at most maxInFlight batches at a time, none over maxRows, every one stored", async () => {
    const batcher = createDeliveryBatcher(services.db, { maxRows: 40, maxInFlight: 2 });
    const prefix = randomUUID();
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => batcher.add(row(`${prefix}-${i}`))));
    const ids = answers.map((answer) => (answer.outcome === "stored" ? answer.id : null));
    expect(ids.every((id) => id !== null)).toBe(true);
    expect(await storedRows(ids as string[])).toHaveLength(300);
    // All 300 arrived in one turn: full batches of 40 and one of 20, two of them in flight at a time.
    expect(batcher.stats).toMatchObject({ batches: 8, rows: 300, largestBatch: 40, mostInFlight: 2 });
  });

  it("stores a delivery sent twice once, whether the copies share a batch or not", async () => {
    const batcher = createDeliveryBatcher(services.db);
    const [first, second] = await Promise.all([batcher.add(row("twice")), batcher.add(row("twice"))]);
    expect(first!.outcome).toBe("stored");
    expect(second).toEqual({ outcome: "duplicate" });
    expect(await batcher.add(row("twice"))).toEqual({ outcome: "duplicate" });
    expect(await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, "twice"))).toHaveLength(1);
  });

  it("stores nothing for a connection whose secret is no longer the one verified with, and the rest of its batch", async () => {
    const batcher = createDeliveryBatcher(services.db);
    const rotatedAway = { ...row("rotated-away"), sealedSecret: "a secret sealed before a rotation" };
    const deleted = { ...row("deleted"), connectionId: randomUUID() };
    const answers = await Promise.all([batcher.add(rotatedAway), batcher.add(deleted), batcher.add(row("beside-them"))]);
    expect(answers.map((answer) => answer.outcome)).toEqual(["stale", "stale", "stored"]);
    expect(batcher.stats).toMatchObject({ batches: 1, rows: 3 });
    const stored = await services.db
      .select()
      .from(webhookDeliveries)
      .where(inArray(webhookDeliveries.deliveryId, ["rotated-away", "deleted", "beside-them"]));
    expect(stored.map((r) => r.deliveryId)).toEqual(["beside-them"]);
  });

  it("fails the callers of a batch that could not be written, and goes on with the next", async () => {
    const batcher = createDeliveryBatcher(services.db);
    // A body that is not UTF-8 (the intake refuses those before): PostgreSQL refuses the whole batch.
    const unreadable = { ...row("unreadable"), body: Buffer.from([0xff, 0xfe]) };
    const [refused, sharing] = await Promise.allSettled([batcher.add(unreadable), batcher.add(row("same-batch"))]);
    expect(refused.status).toBe("rejected");
    expect(sharing.status).toBe("rejected");
    expect(await batcher.add(row("next-batch"))).toMatchObject({ outcome: "stored" });
    await batcher.drain();
    expect(await services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.deliveryId, "same-batch"))).toHaveLength(0);
  });
});
