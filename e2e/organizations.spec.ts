import { expect, test } from "./fixtures/test";

test("a member creates a second organization from the switcher, switches between them, renames it and deletes it", async ({
  page,
  seedUser,
  signIn,
  unique,
  capture,
}) => {
  const user = await seedUser("DEVELOPER");
  await signIn(user);
  await page.goto("/");
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  const switcher = page.getByRole("button", { name: /^Organization: .+\. Switch organization$/ });
  await expect(switcher).not.toHaveAccessibleName(/loading/);
  const firstName = (await switcher.innerText()).trim();

  // Create: the new organization is entered at once, with the creator as its OWNER.
  const name = unique("Team");
  await switcher.click();
  await page.getByRole("menuitem", { name: "New organization" }).click();
  const dialog = page.getByRole("dialog", { name: "New organization" });
  await dialog.getByRole("textbox", { name: "Organization name" }).fill(name);
  await dialog.getByRole("button", { name: "Create organization" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("button", { name: `Organization: ${name}. Switch organization` })).toBeVisible();
  await expect(page.getByRole("button", { name: `Account: ${user.email}` })).toContainText(/owner/i);

  // Switch back to the first organization, and to the new one again.
  await page.getByRole("button", { name: `Organization: ${name}. Switch organization` }).click();
  await page.getByRole("menuitem", { name: firstName }).click();
  await expect(page.getByRole("button", { name: `Organization: ${firstName}. Switch organization` })).toBeVisible();
  await expect(page.getByRole("button", { name: `Account: ${user.email}` })).toContainText(/developer/i);
  await page.getByRole("button", { name: `Organization: ${firstName}. Switch organization` }).click();
  await page.getByRole("menuitem", { name }).click();
  await expect(page.getByRole("button", { name: `Organization: ${name}. Switch organization` })).toBeVisible();

  // Rename it in Settings > Organization.
  await page.getByRole("link", { name: "Organization" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Organization" })).toBeVisible();
  const renamed = `${name} renamed`;
  await page.getByRole("textbox", { name: "Organization name" }).fill(renamed);
  await page.getByRole("button", { name: "Rename" }).click();
  await expect(page.getByRole("button", { name: `Organization: ${renamed}. Switch organization` })).toBeVisible();
  await capture("organization-settings");

  // Delete it: the button waits for the name typed out; the dashboard then returns to the first organization.
  await page.getByRole("button", { name: "Delete organization" }).click();
  const confirm = page.getByRole("dialog", { name: `Delete ${renamed}` });
  const deleteButton = confirm.getByRole("button", { name: "Delete organization" });
  await confirm.getByRole("textbox").fill(name);
  await expect(deleteButton).toBeDisabled();
  await confirm.getByRole("textbox").fill(renamed);
  await deleteButton.click();
  await expect(page.getByRole("button", { name: `Organization: ${firstName}. Switch organization` })).toBeVisible();
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await page.getByRole("button", { name: `Organization: ${firstName}. Switch organization` }).click();
  await expect(page.getByRole("menuitem", { name: firstName })).toBeVisible();
  await expect(page.getByRole("menuitem", { name: renamed })).toHaveCount(0);
});

test("a non-owner sees the organization's name but no way to rename, transfer or delete it", async ({ page, seedUser, signIn }) => {
  const user = await seedUser("ADMIN");
  await signIn(user);
  await page.goto("/settings/organization");
  await expect(page.getByText("Only an OWNER can rename, transfer or delete the organization.")).toBeVisible();
  await expect(page.getByRole("textbox", { name: "Organization name" })).toHaveAttribute("readonly", "");
  await expect(page.getByRole("button", { name: "Rename" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Delete organization" })).toHaveCount(0);
});
