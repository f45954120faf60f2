import { expect, NODE_APP, test } from "./fixtures/test";

/**
 * After a variable changes, the page says that what runs keeps its old values until a restart
 * or a deploy, and offers the restart (issue F10 of the newcomer walkthrough): the restart is a
 * RESTART deployment of the service alone.
 */
test("a saved variable says it applies at the next restart, and Restart now restarts the service", async ({
  page,
  platform,
  api,
  git,
  unique,
  signIn,
  capture,
}) => {
  const repo = unique("restart");
  await git.createRepo(repo, NODE_APP);
  const { id: projectId } = await api.createProject(unique("restart"));
  const environment = await api.createEnvironment(projectId, "dev");
  const service = await api.createService(environment.id, "web", git.url(repo));
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto(`/services/${service.id}/variables`);

  await page.getByRole("button", { name: "Add variable" }).click();
  const dialog = page.getByRole("dialog", { name: "Add variable" });
  await dialog.getByRole("textbox", { name: "Key", exact: true }).fill("MY_SECRET");
  await dialog.getByLabel("Value", { exact: true }).fill("s3cret");
  await dialog.getByRole("button", { name: "Save variable" }).click();

  const pending = page.getByRole("status").filter({ hasText: "MY_SECRET saved" });
  await expect(pending).toContainText("The running service keeps its old values until the next restart or deploy.");
  await expect(page.getByText(/^What the service receives at its next restart or deploy/)).toBeVisible();
  await capture("variable-pending-restart");
  await pending.getByRole("button", { name: "Restart now" }).click();
  await expect(page.getByText("Restart requested: the service starts again with its new variables.")).toBeVisible();
  await expect(pending).toHaveCount(0);
  const [restart] = await api.deployments(environment.id);
  expect(restart).toMatchObject({ action: "RESTART", serviceIds: [service.id] });
});
