import { expect, type Locator, type Page } from "@playwright/test";

/** The deployment page (`/deployments/<id>`): header, live stepper and logs. */
export class DeploymentPage {
  readonly logs: Locator;

  constructor(readonly page: Page) {
    this.logs = page.getByRole("log", { name: "Deployment logs" });
  }

  static async opened(page: Page): Promise<{ deployment: DeploymentPage; id: string }> {
    await expect(page).toHaveURL(/\/deployments\/[0-9a-f-]{36}$/);
    const id = page.url().split("/").pop()!;
    return { deployment: new DeploymentPage(page), id };
  }

  status(): Locator {
    return this.page.getByRole("heading", { level: 1 }).locator("..").locator("[data-status]");
  }

  /** The steps of one service, as a list with one item per step. */
  steps(service: string): Locator {
    return this.page.getByRole("list", { name: `Steps of ${service}` });
  }

  step(service: string, step: string): Locator {
    return this.steps(service).locator(`li[data-step="${step}"]`);
  }

  /** Waits for the deployment to be live, watching each step of a deploy succeed on screen. */
  async expectDeployed(service: string, timeout = 90_000): Promise<void> {
    await expect(this.status()).toHaveAttribute("data-status", "DEPLOYED", { timeout });
    for (const step of ["clone", "build", "start", "health_check", "switch", "drain"]) {
      await expect(this.step(service, step)).toHaveAttribute("data-state", "succeeded");
    }
  }

  /** The seqs of the lines the viewer shows, in DOM order. */
  static seqs(log: Locator): Promise<number[]> {
    return log.locator("[data-seq]").evaluateAll((lines) => lines.map((line) => Number(line.getAttribute("data-seq"))));
  }
}
