import type { Page } from "@playwright/test";
import { expect, NODE_APP, test } from "./fixtures/test";
import { ServicePage } from "./pages/service-page";

/** One fact of a database page's connection table: the value beside its label. */
function connectionFact(page: Page, label: string) {
  const table = page.getByRole("table", { name: "Database connection" });
  return table
    .getByRole("row")
    .filter({ has: page.getByRole("rowheader", { name: label, exact: true }) })
    .getByRole("cell");
}

/** The port in a database page's connection facts. */
async function databasePort(page: Page): Promise<number> {
  const text = await connectionFact(page, "Port").textContent();
  const port = Number(text);
  expect(Number.isInteger(port) && port > 1024, `port "${text}"`).toBe(true);
  return port;
}

/**
 * A PostgreSQL database created from the dashboard shows its generated connection (the password
 * hidden) and the variables the environment's applications receive; a cron job's form checks its
 * schedule as the engine reads it; cloning the environment from its page gives the copy its own
 * database on another port. The copy is not deployed, so the
 * journey does not wait for the engine.
 */
test("create a database and a job, clone their environment, and see the copy's own database", async ({
  page,
  platform,
  git,
  unique,
  signIn,
  capture,
  allowConsoleError,
}) => {
  allowConsoleError(/status of 409 .*environments\.clone/, "the last step clones under a taken name on purpose: the API refuses it with 409");
  const project = unique("clone");
  // The job's repository: the control plane checks that it answers when the job is saved.
  const reports = unique("reports");
  await git.createRepo(reports, NODE_APP);
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  let sourcePort = 0;

  await test.step("create a project, an environment and a PostgreSQL database", async () => {
    await page.goto("/");
    await page.getByRole("button", { name: "New project" }).first().click();
    await page.getByLabel("Project name").fill(project);
    await page.getByRole("button", { name: "Create project" }).click();
    await expect(page.getByRole("heading", { level: 1, name: project })).toBeVisible();

    await page.getByRole("button", { name: "New environment" }).first().click();
    await page.getByLabel("Environment name").fill("dev");
    await page.getByRole("button", { name: "Create environment" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();

    await page.getByRole("button", { name: "New service" }).first().click();
    const dialog = page.getByRole("dialog", { name: "New service" });
    await dialog.getByText("Database", { exact: true }).click();
    await dialog.getByLabel("Service name").fill("main-db");
    await expect(dialog.getByLabel("Engine")).toHaveValue("postgresql");
    await dialog.getByRole("button", { name: "Create database" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "main-db" })).toBeVisible();
  });

  await test.step("see the connection, the password hidden, and the variables applications receive", async () => {
    await expect(connectionFact(page, "Engine")).toHaveText("PostgreSQL");
    await expect(connectionFact(page, "Host")).toHaveText("127.0.0.1");
    await expect(connectionFact(page, "User")).toHaveText("main_db");
    await expect(connectionFact(page, "Database")).toHaveText("main_db");
    // Hidden: a mask and a badge, nothing else.
    await expect(connectionFact(page, "Password")).toHaveText(/^•+\s*secret$/);
    sourcePort = await databasePort(page);

    const names = page.getByRole("table", { name: "Database variables" });
    for (const suffix of ["URL", "HOST", "PORT", "USER", "PASSWORD", "DATABASE"]) {
      await expect(names.getByText(`SLIPWAY_MAIN_DB_${suffix}`, { exact: true })).toBeVisible();
    }
    await expect(names.getByRole("button", { name: "Copy SLIPWAY_MAIN_DB_URL" })).toBeVisible();
    await new ServicePage(page).open("Variables");
    // The server's resolution agrees: the built-in variables are there, the secret ones hidden.
    const effective = page.getByRole("table", { name: "effective variables" });
    await expect(effective.getByRole("row").filter({ hasText: "SLIPWAY_MAIN_DB_PORT" })).toContainText(String(sourcePort));
    await expect(effective.getByRole("row").filter({ hasText: "SLIPWAY_MAIN_DB_PASSWORD" })).toContainText("secret");
    await capture("database");
  });

  await test.step("add a cron job, refused a bad schedule, then change its retries", async () => {
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "dev" }).click();
    await page.getByRole("button", { name: "New service" }).first().click();
    const dialog = page.getByRole("dialog", { name: "New service" });
    await dialog.getByText("Job", { exact: true }).click();
    await dialog.getByLabel("Service name").fill("nightly");
    await dialog.getByLabel("Git URL").fill(git.url(reports));
    await dialog.getByLabel(/^Command/).fill("node report.js");
    await dialog.getByRole("textbox", { name: "Schedule" }).fill("0 99 * * *");
    await dialog.getByRole("button", { name: "Create job" }).click();
    await expect(dialog.getByText(/Invalid value for hour/)).toBeVisible();
    await dialog.getByRole("textbox", { name: "Schedule" }).fill("30 2 * * 1-5");
    await expect(dialog.getByText(/^Next runs:/)).toBeVisible();
    await dialog.getByRole("button", { name: "Create job" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "nightly" })).toBeVisible();
    await expect(page.getByText("30 2 * * 1-5", { exact: true })).toBeVisible();
    await expect(page.getByText("Never ran")).toBeVisible();
    await expect(page.getByText("10 min timeout, no retry")).toBeVisible();

    const job = new ServicePage(page);
    await job.open("Settings");
    await page.getByRole("textbox", { name: "Retries" }).fill("2");
    await page.getByRole("button", { name: "Save settings" }).click();
    await expect(page.getByText(/^Settings saved/)).toBeVisible();
    await job.open("Overview");
    await expect(page.getByText("10 min timeout, 2 retries")).toBeVisible();
    await capture("job");
  });

  await test.step("clone the environment without deploying", async () => {
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "dev" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();
    await page.getByRole("button", { name: "Clone", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Clone dev" });
    await expect(dialog.getByLabel("Environment name")).toHaveValue("dev-copy");
    await dialog.getByLabel("Environment name").fill("dev-2");
    await dialog.getByLabel("Lifetime").selectOption({ label: "1 day" });
    // Deployed now, a copy builds what its source runs, and says which commit that is per service.
    const commits = dialog.getByLabel("Commits to deploy");
    await expect(commits).toHaveValue("live");
    await expect(dialog.getByText("Each service builds the commit it runs in dev now: nightly at its branch's latest (never live in dev).")).toBeVisible();
    // Another branch has none of the source's commits: its latest is what the copy builds.
    await dialog.getByLabel("Branch").fill("feature/reports");
    await expect(commits).toHaveValue("latest");
    await expect(commits).toBeDisabled();
    await expect(dialog.getByText("Each service builds its branch's latest commit, which may not be what runs in dev.")).toBeVisible();
    await dialog.getByLabel("Branch").fill("");
    await expect(commits).toHaveValue("live");
    await dialog.getByLabel("Deploy now").uncheck();
    await expect(commits).toBeHidden();
    await capture("clone-dialog");
    await dialog.getByRole("button", { name: "Clone environment" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "dev-2" })).toBeVisible();
    await expect(page).toHaveURL(/\/environments\/[0-9a-f-]{36}$/);
    await expect(page.getByText(/^Cloned from/)).toContainText("dev");
    // "Expires tomorrow" or "Expires in 24 hours", as the relative time reads.
    await expect(page.getByText(/^Expires (in |tomorrow)/)).toBeVisible();
  });

  await test.step("the copy has its own database, on another port", async () => {
    await page.getByRole("link", { name: "main-db", exact: true }).click();
    await expect(page.getByRole("heading", { level: 1, name: "main-db" })).toBeVisible();
    await expect(page.getByRole("navigation", { name: "Breadcrumb" })).toContainText("dev-2");
    const copyPort = await databasePort(page);
    expect(copyPort).not.toBe(sourcePort);
    await new ServicePage(page).open("Variables");
    await expect(page.getByRole("table", { name: "effective variables" }).getByRole("row").filter({ hasText: "SLIPWAY_MAIN_DB_PORT" })).toContainText(
      String(copyPort),
    );
    await capture("cloned-database");
  });

  await test.step("cloning again under a taken name shows the server's refusal", async () => {
    await page.getByRole("navigation", { name: "Breadcrumb" }).getByRole("link", { name: "dev-2" }).click();
    await page.getByRole("button", { name: "Clone", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Clone dev-2" });
    await dialog.getByLabel("Environment name").fill("dev");
    await dialog.getByRole("button", { name: "Clone environment" }).click();
    await expect(dialog.getByRole("alert")).toContainText("already exists");
    // Stale once the name changes: the refusal goes as soon as it is edited (issue 15, item 10).
    await dialog.getByLabel("Environment name").fill("dev-3");
    await expect(dialog.getByRole("alert")).toHaveCount(0);
    // A name the protocol refuses says so under the field, before any round trip, and clears as it is fixed.
    await dialog.getByLabel("Environment name").fill("Dev 3");
    await dialog.getByLabel("Environment name").blur();
    await expect(dialog.getByText("Use lowercase letters, digits and inner hyphens")).toBeVisible();
    await dialog.getByLabel("Environment name").fill("dev-3");
    await expect(dialog.getByText("Use lowercase letters, digits and inner hyphens")).toHaveCount(0);
  });

  await test.step("clone only the job, on the same cluster, following another branch", async () => {
    const dialog = page.getByRole("dialog", { name: "Clone dev-2" });
    await expect(dialog.getByLabel("Cluster")).toHaveValue(/[0-9a-f-]{36}/);
    await dialog.getByRole("checkbox", { name: "main-db" }).uncheck();
    await dialog.getByLabel("Branch").fill("feature/x");
    await dialog.getByLabel("Deploy now").uncheck();
    await dialog.getByRole("button", { name: "Clone environment" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "dev-3" })).toBeVisible();
    await expect(page.getByRole("link", { name: "nightly", exact: true })).toBeVisible();
    await expect(page.getByRole("link", { name: "main-db", exact: true })).toHaveCount(0);
    await page.getByRole("link", { name: "nightly", exact: true }).click();
    await new ServicePage(page).open("Settings");
    await expect(page.getByRole("textbox", { name: "Branch" })).toHaveValue("feature/x");
  });
});
