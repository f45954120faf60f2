import { expect, type Locator, type Page } from "@playwright/test";

/** The Clusters page: one card per cluster, its settings on it. */
export class ClustersPage {
  constructor(readonly page: Page) {}

  static async goto(page: Page): Promise<ClustersPage> {
    await page.goto("/clusters");
    await expect(page.getByRole("heading", { level: 1, name: "Clusters" })).toBeVisible();
    return new ClustersPage(page);
  }

  card(cluster: string): Locator {
    return this.page.getByRole("article", { name: cluster });
  }

  /** A kubernetes cluster's "Image builds" form on its card (ADMIN only). */
  imageBuilds(cluster: string) {
    const form = this.card(cluster).getByRole("form", { name: `Image builds of ${cluster}` });
    return {
      form,
      location: form.getByRole("combobox", { name: "Image builds" }),
      dockerApi: form.getByRole("textbox", { name: "Docker API" }),
      save: form.getByRole("button", { name: "Save image builds" }),
    };
  }
}
