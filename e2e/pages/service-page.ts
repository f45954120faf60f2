import { expect, type Locator, type Page } from "@playwright/test";

/** The tabs of a service's page, as their links are labelled. */
export type ServiceTabName = "Overview" | "Deployments" | "Logs" | "Metrics" | "Shell" | "Variables" | "Domains" | "Settings";

const SEGMENTS: Record<ServiceTabName, string> = {
  Overview: "",
  Deployments: "/deployments",
  Logs: "/logs",
  Metrics: "/metrics",
  Shell: "/shell",
  Variables: "/variables",
  Domains: "/domains",
  Settings: "/settings",
};

/** A service's page (`/services/<id>[/<tab>]`): the shared header and its tab bar, one URL per tab. */
export class ServicePage {
  readonly tabs: Locator;

  constructor(readonly page: Page) {
    this.tabs = page.getByRole("tablist", { name: /^Sections of / });
  }

  static url(serviceId: string, tab: ServiceTabName = "Overview"): string {
    return `/services/${serviceId}${SEGMENTS[tab]}`;
  }

  /** Opens a tab by its URL (a deep link), as a bookmark or a shared link would. */
  static async goto(page: Page, serviceId: string, tab: ServiceTabName = "Overview"): Promise<ServicePage> {
    await page.goto(ServicePage.url(serviceId, tab));
    const service = new ServicePage(page);
    await service.expectTab(tab);
    return service;
  }

  /** The status badge beside the service's name: its runtime state once it runs (running, sleeping…). */
  status(): Locator {
    return this.page.getByRole("heading", { level: 1 }).locator("xpath=..").locator("[data-status]");
  }

  tab(name: ServiceTabName): Locator {
    return this.tabs.getByRole("tab", { name, exact: true });
  }

  /** Switches tab with a click, and waits for its URL and its selection. */
  async open(name: ServiceTabName): Promise<void> {
    await this.tab(name).click();
    await this.expectTab(name);
  }

  async expectTab(name: ServiceTabName): Promise<void> {
    await expect(this.page).toHaveURL(new RegExp(`/services/[0-9a-f-]{36}${SEGMENTS[name]}$`));
    await expect(this.tab(name)).toHaveAttribute("aria-selected", "true");
  }
}
