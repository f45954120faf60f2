import path from "node:path";
import { expect, NODE_APP, test } from "./fixtures/test";

/** Jobs that write to $SLIPWAY_OUTPUT_FILE (seed.sh: GREETING and SEED_ROWS). */
const JOBS = path.resolve(NODE_APP, "../jobs");

/**
 * Variables in the dashboard (issue 15, items 10 and 11): adding a key the environment already
 * has asks before overwriting it, and cancelling keeps the old value; a secret is masked while
 * typed, with a toggle that reveals it, and never shown once saved.
 */
test("adding an existing key asks before overwriting; a secret is masked while typed", async ({ page, platform, api, unique, signIn, capture }) => {
  const { id: projectId } = await api.createProject(unique("vars"));
  const environment = await api.createEnvironment(projectId, "dev");
  await api.setVariable({ scope: "ENVIRONMENT", targetId: environment.id, key: "LOG_LEVEL", value: "info" });
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${environment.id}`);
  const table = page.getByRole("table", { name: "environment variables" });
  const row = (key: string) => table.getByRole("row").filter({ has: page.getByText(key, { exact: true }) });
  await expect(row("LOG_LEVEL")).toContainText("info");

  const add = async (key: string, value: string) => {
    await page.getByRole("button", { name: "Add variable" }).click();
    const dialog = page.getByRole("dialog", { name: "Add variable" });
    await dialog.getByRole("textbox", { name: "Key", exact: true }).fill(key);
    await dialog.getByLabel("Value", { exact: true }).fill(value);
    await dialog.getByRole("button", { name: "Save variable" }).click();
    return dialog;
  };

  await test.step("an existing key: asked, and cancelling keeps the old value", async () => {
    const dialog = await add("LOG_LEVEL", "debug");
    const confirm = page.getByRole("dialog", { name: "Overwrite variable" });
    await expect(confirm).toContainText("LOG_LEVEL is already set on this environment. Overwrite its value?");
    await capture("overwrite-confirmation");
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await expect(row("LOG_LEVEL")).toContainText("info");
  });

  await test.step("confirmed, the value is replaced", async () => {
    await add("LOG_LEVEL", "debug");
    await page.getByRole("dialog", { name: "Overwrite variable" }).getByRole("button", { name: "Overwrite" }).click();
    await expect(row("LOG_LEVEL")).toContainText("debug");
    await expect(row("LOG_LEVEL")).not.toContainText("info");
  });

  await test.step("a new key is added without a question", async () => {
    await add("REGION", "eu");
    await expect(page.getByRole("dialog", { name: "Overwrite variable" })).toHaveCount(0);
    await expect(row("REGION")).toContainText("eu");
  });

  await test.step("a secret is masked while typed and revealed on demand, never shown once saved", async () => {
    await page.getByRole("button", { name: "Add variable" }).click();
    const dialog = page.getByRole("dialog", { name: "Add variable" });
    await dialog.getByRole("textbox", { name: "Key", exact: true }).fill("API_TOKEN");
    await dialog.getByLabel("Secret", { exact: true }).check();
    const value = dialog.getByLabel("Value", { exact: true });
    await value.fill("sk-e2e-reveal-7731");
    await expect(value).toHaveAttribute("type", "password");
    await dialog.getByRole("button", { name: "Show or hide the value" }).click();
    await expect(value).toHaveAttribute("type", "text");
    await expect(value).toHaveValue("sk-e2e-reveal-7731");
    await dialog.getByRole("button", { name: "Show or hide the value" }).click();
    await expect(value).toHaveAttribute("type", "password");
    await capture("secret-masked");
    await dialog.getByRole("button", { name: "Save variable" }).click();
    await expect(row("API_TOKEN")).toContainText("secret");
    await expect(page.locator("body")).not.toContainText("sk-e2e-reveal-7731");
  });
});

/**
 * What a lifecycle job outputs (issue 15, item 11) is listed with the environment's variables,
 * marked as set by the job and without an edit control; its value stays with the engine.
 */
test("a lifecycle job's outputs are listed as set by the job, read-only", async ({ page, platform, api, git, unique, signIn, capture }) => {
  const repo = unique("jobs");
  await git.createRepo(repo, JOBS);
  const { id: projectId } = await api.createProject(unique("outputs"));
  const environment = await api.createEnvironment(projectId, "dev");
  await api.createStartJob(environment.id, "seed", git.url(repo), "sh seed.sh");
  expect((await api.waitForDeployment((await api.deploy(environment.id)).deployment.id)).status).toBe("DEPLOYED");

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/environments/${environment.id}`);
  const table = page.getByRole("table", { name: "environment variables" });
  for (const key of ["GREETING", "SEED_ROWS"]) {
    const row = table.getByRole("row").filter({ has: page.getByText(key, { exact: true }) });
    await expect(row).toContainText("set by job seed");
    await expect(row.getByRole("button", { name: `Edit ${key}` })).toHaveCount(0);
  }
  // The value is the engine's: the page never has it.
  await expect(page.locator("body")).not.toContainText("hello from the seed");
  await capture("job-outputs");
});
