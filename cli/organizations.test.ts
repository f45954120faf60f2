import fs from "node:fs/promises";
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { memberships, organizations, users } from "../server/db/schema";
import type { MyOrganization, WhoAmI } from "./api-types";
import { startCliHarness, type CliHarness } from "./test-harness";

let h: CliHarness;
let firstName: string;

beforeAll(async () => {
  h = await startCliHarness();
  expect((await h.cli(["login", "--url", h.url, "--token", h.ownerToken])).code).toBe(0);
  firstName = (JSON.parse((await h.cli(["org", "list", "--json"])).stdout) as MyOrganization[])[0]!.name;
});

const whoami = async () => JSON.parse((await h.cli(["whoami", "--json"])).stdout) as WhoAmI;
const savedConfig = async () => JSON.parse(await fs.readFile(h.configFile, "utf8")) as { token: string; organizations?: { id: string; name: string }[] };

describe("slipway org", () => {
  it("creates an organization, acts in it with its own token, renames it, and switches back", async () => {
    const created = await h.cli(["org", "create", "platform"]);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toMatch(/^Created organization platform \([0-9a-f-]+\); you are its OWNER$/m);
    const inNew = await whoami();
    expect(inNew.organizationId).not.toBe(h.org.organizationId);
    expect(inNew.role).toBe("OWNER");
    expect((await savedConfig()).organizations?.map((o) => o.name).sort()).toEqual([firstName, "platform"].sort());

    const list = (await h.cli(["org", "list"])).stdout.split("\n");
    expect(list[0]).toMatch(/^NAME\s+ROLE\s+CLI TOKEN\s+ID$/);
    expect(list.find((line) => line.startsWith("platform *"))).toMatch(/OWNER\s+yes/);

    expect((await h.cli(["org", "rename", "platform-team"])).stdout).toBe("Renamed the organization to platform-team\n");
    expect((await h.cli(["org", "switch", firstName])).stdout).toMatch(new RegExp(`^Switched to organization ${firstName} as token:.* \\(OWNER\\)`));
    expect((await whoami()).organizationId).toBe(h.org.organizationId);
    expect((await h.cli(["org", "switch", "platform-team"])).code).toBe(0);
    expect((await whoami()).organizationId).toBe(inNew.organizationId);
  });

  it("deletes the current organization only once its name is typed, or with --yes", async () => {
    const { organizationId } = await whoami();
    const wrong = await h.cli(["org", "delete"], { stdin: "platform\n" });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('you typed "platform", not "platform-team": nothing was deleted');
    expect(await h.services.db.select().from(organizations).where(eq(organizations.id, organizationId))).toHaveLength(1);

    const deleted = await h.cli(["org", "delete"], { stdin: "platform-team\n" });
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`Deleted organization platform-team\nThe CLI now acts in ${firstName}\n`);
    expect(await h.services.db.select().from(organizations).where(eq(organizations.id, organizationId))).toEqual([]);
    expect((await savedConfig()).organizations?.map((o) => o.name)).toEqual([firstName]);
    expect((await whoami()).organizationId).toBe(h.org.organizationId);
    // The instance's first organization holds its built-in local cluster.
    expect((await h.cli(["org", "delete", "--yes"])).code).toBe(5);
  });

  it("transfers ownership to a member and is then refused what only an OWNER may do", async () => {
    expect((await h.cli(["org", "create", "handover", "--no-switch"])).code).toBe(0);
    expect((await whoami()).organizationId).toBe(h.org.organizationId);
    expect((await h.cli(["org", "switch", "handover"])).code).toBe(0);
    const { organizationId } = await whoami();
    const [bob] = await h.services.db.insert(users).values({ email: "bob@example.test", name: "Bob" }).returning();
    await h.services.db.insert(memberships).values({ organizationId, userId: bob!.id, role: "DEVELOPER" });

    const missing = await h.cli(["org", "transfer", "nobody@example.test"]);
    expect(missing.code).toBe(3);
    expect((await h.cli(["org", "transfer", "bob@example.test"])).stdout).toBe("bob@example.test now owns the organization; you are an ADMIN\n");
    const refused = await h.cli(["org", "delete", "--yes"]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain("This action needs the OWNER role or higher");
    expect((await h.cli(["org", "switch", "nowhere"])).code).toBe(3);
  });
});
