import { expect, test } from "./fixtures/test";
import { ClustersPage } from "./pages/clusters-page";

test("an ADMIN moves a kubernetes cluster's image builds to the engine's host, a bad Docker API is refused, and a VIEWER reads the setting", async ({
  page,
  api,
  unique,
  seedUser,
  signIn,
  capture,
}) => {
  const name = unique("fleet");
  await api.createCluster({ name, kind: "kubernetes" });
  await signIn(await seedUser("ADMIN"));

  let clusters = await ClustersPage.goto(page);
  let builds = clusters.imageBuilds(name);
  await expect(builds.location).toHaveValue("cluster");
  await expect(builds.dockerApi).toHaveCount(0);
  await expect(builds.save).toBeDisabled();

  await builds.location.selectOption("engine-host");
  await builds.dockerApi.fill("/var/run/docker.sock");
  // The API's own rule, said before anything is sent.
  await expect(builds.form.getByText("give the Docker API as unix:///path/to/docker.sock or tcp://host:port")).toBeVisible();
  await expect(builds.save).toBeDisabled();
  expect((await api.clusters()).find((cluster) => cluster.name === name)?.kubernetesBuild).toEqual({ location: "cluster" });

  await builds.dockerApi.fill("unix:///var/run/docker.sock");
  await builds.save.click();
  await expect(builds.save).toBeDisabled();
  await expect
    .poll(async () => (await api.clusters()).find((cluster) => cluster.name === name)?.kubernetesBuild)
    .toEqual({ location: "engine-host", dockerHost: "unix:///var/run/docker.sock" });
  expect((await api.audit()).some((event) => event.action === "cluster.update" && event.targetType === "cluster")).toBe(true);
  await capture("kubernetes-image-builds");

  // Kept: the page shows the saved setting after a reload.
  clusters = await ClustersPage.goto(page);
  builds = clusters.imageBuilds(name);
  await expect(builds.location).toHaveValue("engine-host");
  await expect(builds.dockerApi).toHaveValue("unix:///var/run/docker.sock");

  await signIn(await seedUser("VIEWER"));
  clusters = await ClustersPage.goto(page);
  await expect(clusters.card(name).getByText("Image builds: on the engine's host, through the Docker API at unix:///var/run/docker.sock")).toBeVisible();
  await expect(clusters.card(name).getByRole("button", { name: "Save image builds" })).toHaveCount(0);
});
