import { expect, NODE_APP, test } from "./fixtures/test";
import { seedApp } from "./fixtures/seed";
import { ServicePage } from "./pages/service-page";

test("a VIEWER sees deployments but no deploy controls, and the server refuses a deploy", async ({ page, api, git, unique, seedUser, signIn, capture }) => {
  const app = await seedApp(api, git, { project: unique("ro"), repo: unique("repo") }, NODE_APP);
  const { deployment } = await api.deploy(app.environmentId);
  const viewer = await seedUser("VIEWER");
  await signIn(viewer);

  await page.goto(`/environments/${app.environmentId}`);
  await expect(page.getByRole("heading", { level: 2, name: "Deployments" })).toBeVisible();
  // The history is readable...
  await expect(page.locator(`tr[data-deployment-id="${deployment.id}"]`)).toBeVisible();
  // ...but none of the controls are there.
  for (const name of ["Deploy", "Redeploy", "Restart", "Stop"]) await expect(page.getByRole("button", { name, exact: true })).toHaveCount(0);
  await capture("viewer-environment");

  await ServicePage.goto(page, app.serviceId, "Deployments");
  await expect(page.getByRole("heading", { level: 1, name: "web" })).toBeVisible();
  await expect(page.getByRole("heading", { level: 2, name: "Deployments" })).toBeVisible();
  for (const name of ["Deploy", "Redeploy", "Restart", "Stop"]) await expect(page.getByRole("button", { name, exact: true })).toHaveCount(0);

  await page.goto(`/deployments/${deployment.id}`);
  await expect(page.getByRole("heading", { level: 1, name: /^Deploy/ })).toBeVisible();
  await expect(page.getByRole("button", { name: "Cancel" })).toHaveCount(0);

  // The server refuses what the UI hides: the viewer's own session, straight to the API.
  const refused = await page.request.post("/api/trpc/deployments.create", { data: { environmentId: app.environmentId, action: "DEPLOY" } });
  expect(refused.status()).toBe(403);
  await expect.poll(async () => (await api.deployments(app.environmentId)).length).toBe(1);
  await api.waitForDeployment(deployment.id);
});
