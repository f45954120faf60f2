import { expect, type Locator, type Page } from "@playwright/test";

/** The account menu in the dashboard's header (components/shell/dashboard-shell.tsx): who is signed in, and signing out. */
export class AccountMenu {
  readonly button: Locator;

  constructor(
    readonly page: Page,
    email: string,
  ) {
    this.button = page.getByRole("button", { name: `Account: ${email}` });
  }

  async open(): Promise<void> {
    await this.button.click();
    await expect(this.page.getByRole("menu")).toBeVisible();
  }

  /** Signs this browser out; the dashboard goes to the sign-in page. */
  async signOut(): Promise<void> {
    await this.open();
    await this.page.getByRole("menuitem", { name: "Sign out", exact: true }).click();
  }

  /** Opens "Sign out everywhere" and returns its confirmation dialog. */
  async openSignOutEverywhere(): Promise<Locator> {
    await this.open();
    await this.page.getByRole("menuitem", { name: "Sign out everywhere" }).click();
    const dialog = this.page.getByRole("dialog", { name: "Sign out everywhere" });
    await expect(dialog).toBeVisible();
    return dialog;
  }
}
