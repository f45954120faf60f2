import { expect, type Locator, type Page } from "@playwright/test";

/** The Stages panel of an environment's page (issue 16), driven from the keyboard as a user without a mouse would. */
export class StagesPanel {
  constructor(readonly page: Page) {}

  stage(name: string): Locator {
    return this.page.getByRole("region", { name: `Stage ${name}` });
  }

  /** The stages' names in the order the panel lists them. */
  names(): Promise<string[]> {
    return this.page
      .getByRole("region", { name: /^Stage / })
      .evaluateAll((regions) => regions.map((region) => region.getAttribute("aria-label")!.replace(/^Stage /, "")));
  }

  async expectOrder(names: string[]): Promise<void> {
    await expect.poll(() => this.names()).toEqual(names);
  }

  field(): Locator {
    return this.page.getByRole("textbox", { name: "New stage" });
  }

  /** Adds a stage by typing its name and pressing Enter; the field is then empty for the next one. */
  async add(name: string): Promise<void> {
    await this.field().fill(name);
    await this.field().press("Enter");
    await expect(this.stage(name)).toBeVisible();
    await expect(this.field()).toHaveValue("");
  }

  /** Puts a service in a stage with its select. */
  async assign(service: string, stage: string): Promise<void> {
    const select = this.page.getByRole("combobox", { name: `Stage of ${service}` });
    await select.focus();
    await select.selectOption(stage);
    await expect(this.stage(stage).getByText(service, { exact: true })).toBeVisible();
  }

  /** Presses a stage's "Move up" or "Move down" button with the keyboard. */
  async move(name: string, direction: "up" | "down"): Promise<void> {
    const button = this.stage(name).getByRole("button", { name: `Move stage ${name} ${direction}` });
    await button.focus();
    await this.page.keyboard.press("Enter");
  }
}
