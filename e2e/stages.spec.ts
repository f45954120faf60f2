import { DeploymentPage } from "./pages/deployment-page";
import { StagesPanel } from "./pages/stages-panel";
import { expect, NODE_APP, test } from "./fixtures/test";

/**
 * Deployment stages (issue 16, part 2): on the environment's page a developer adds two stages,
 * puts services in them and reorders them, all from the keyboard; the next deployment runs the
 * stages in that order, shows its steps grouped by stage, and says which services are live on
 * which release.
 */
test("reorder deployment stages and deploy them in that order", async ({ page, platform, api, git, unique, signIn, capture }) => {
  // Three stages of real builds, one after the other.
  test.setTimeout(180_000);
  const project = unique("stages");
  const repo = unique("repo");
  await git.createRepo(repo, NODE_APP);
  const { id: projectId } = await api.createProject(project);
  const environment = await api.createEnvironment(projectId, "dev");
  for (const name of ["api", "web", "admin"]) await api.createService(environment.id, name, git.url(repo));
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  const stages = new StagesPanel(page);

  await test.step("add two stages and put a service in each", async () => {
    await page.goto(`/environments/${environment.id}`);
    await expect(page.getByRole("heading", { level: 1, name: "dev" })).toBeVisible();
    await stages.expectOrder(["default"]);
    // The implicit stage's name is taken: the form says so and adds nothing.
    await stages.field().fill("default");
    await stages.field().press("Enter");
    await expect(page.getByText('"default" is the stage of services placed in no other: pick another name')).toBeVisible();
    await stages.add("backend");
    await stages.add("frontends");
    await stages.assign("api", "backend");
    await stages.assign("web", "frontends");
    await stages.expectOrder(["default", "backend", "frontends"]);
    await expect(stages.stage("default").getByText("admin", { exact: true })).toBeVisible();
  });

  await test.step("move frontends before backend with the keyboard", async () => {
    await stages.move("frontends", "up");
    await stages.expectOrder(["default", "frontends", "backend"]);
    // The first stage after default cannot go further up.
    await expect(stages.stage("frontends").getByRole("button", { name: "Move stage frontends up" })).toBeDisabled();
    await capture("stages-reordered");
    // What the page shows is what is stored.
    await page.reload();
    await stages.expectOrder(["default", "frontends", "backend"]);
  });

  await test.step("deploy: the stages run in that order and every service goes live", async () => {
    await page.getByRole("button", { name: "Deploy", exact: true }).click();
    const { deployment, id } = await DeploymentPage.opened(page);
    await expect(deployment.status()).toHaveAttribute("data-status", "DEPLOYED", { timeout: 120_000 });
    const groups = page.getByRole("region", { name: /^Stage \d: / });
    await expect(groups).toHaveText([/Stage 1 · default/, /Stage 2 · frontends/, /Stage 3 · backend/]);
    await expect(page.getByRole("region", { name: "Stage 2: frontends" }).getByRole("list", { name: "Steps of web" })).toBeVisible();

    const releases = page.getByRole("table", { name: "Live releases" });
    for (const [service, stage] of [
      ["admin", "default"],
      ["web", "frontends"],
      ["api", "backend"],
    ]) {
      await expect(releases.getByRole("row").filter({ hasText: service })).toContainText(`${stage}Live`);
      await expect(releases.getByRole("row").filter({ hasText: service })).toContainText("This deployment");
    }
    await capture("stages-deployed");

    // The engine ran them stage by stage: web went live before api started.
    const events = await api.deploymentEvents(id);
    const names = await api.deployment(id);
    const serviceOf = (name: string) => Object.entries(names.serviceNames).find(([, value]) => value === name)![0];
    const at = (service: string, step: string, status: string) =>
      events.findIndex((e) => e.serviceId === serviceOf(service) && e.step === step && e.status === status);
    expect(at("web", "drain", "succeeded")).toBeLessThan(at("api", "clone", "started"));
    expect(at("admin", "drain", "succeeded")).toBeLessThan(at("web", "clone", "started"));
  });
});
