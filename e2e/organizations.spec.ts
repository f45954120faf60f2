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

test("the instance admin opens sign-up; a newcomer signs up, creates their organization and lands in it", async ({
  page,
  browser,
  platform,
  signIn,
  unique,
}) => {
  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto("/settings/organization");
  const invitedOnly = page.getByRole("radio", { name: "Only invited people" });
  const anyone = page.getByRole("radio", { name: /^Anyone/ });
  await expect(invitedOnly).toBeChecked();
  // The choice is saved as it is made, and shown once the server has it.
  await anyone.click();
  await expect(page.getByText("Anyone may now sign up")).toBeVisible();
  await expect(anyone).toBeChecked();

  const newcomer = await browser.newPage({ baseURL: platform.url });
  try {
    await newcomer.goto("/signin");
    await newcomer.getByRole("link", { name: "Create an account" }).click();
    const email = `${unique("newcomer")}@e2e.slipway.test`;
    await newcomer.getByRole("textbox", { name: "Your name" }).fill("New Comer");
    await newcomer.getByRole("textbox", { name: "Email" }).fill(email);
    await newcomer.getByRole("textbox", { name: "Password" }).fill("a long enough password");
    await newcomer.getByRole("button", { name: "Create account" }).click();

    // Signed in but in no organization yet: the dashboard asks for one.
    await expect(newcomer.getByRole("heading", { level: 1, name: "Create your organization" })).toBeVisible();
    const name = unique("Newcomers");
    await newcomer.getByRole("textbox", { name: "Organization name" }).fill(name);
    await newcomer.getByRole("button", { name: "Create organization" }).click();
    await expect(newcomer.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
    await expect(newcomer.getByRole("button", { name: `Organization: ${name}. Switch organization` })).toBeVisible();
    await expect(newcomer.getByRole("button", { name: `Account: ${email}` })).toContainText(/owner/i);
  } finally {
    await invitedOnly.click();
    await expect(page.getByText("Only invited people may now sign up")).toBeVisible();
    await expect(invitedOnly).toBeChecked();
  }
  await newcomer.goto("/signup");
  await expect(newcomer.getByRole("heading", { level: 1, name: "Sign-up is by invitation" })).toBeVisible();
  await newcomer.close();
});

test("an organization whose environments are still being deleted is marked in the switcher", async ({ page, api, platform, signIn, unique, capture }) => {
  // Made through the API by the admin, with an environment on a cluster no engine serves: its DELETE waits in the queue.
  const name = unique("Winding");
  const call = async <T>(method: "POST" | "DELETE", path: string, token: string, data: unknown): Promise<T> => {
    const response = await api.request.fetch(`/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}` }, data });
    expect(response.ok(), await response.text()).toBe(true);
    return (await response.json()) as T;
  };
  const { token } = await call<{ token: string }>("POST", "/organizations", platform.apiToken, { name, issueToken: true });
  const { cluster } = await call<{ cluster: { id: string } }>("POST", "/clusters", token, { name: "edge", kind: "local" });
  const project = await call<{ id: string }>("POST", "/projects", token, { name: "shop" });
  await call("POST", "/environments", token, { projectId: project.id, name: "dev", clusterId: cluster.id });
  expect(await call<{ status: string }>("DELETE", `/organization?confirm=${encodeURIComponent(name)}`, token, undefined)).toMatchObject({ status: "DELETING" });

  await signIn({ email: platform.adminEmail, password: platform.adminPassword });
  await page.goto("/");
  const switcher = page.getByRole("button", { name: /^Organization: .+\. Switch organization$/ });
  await expect(switcher).not.toHaveAccessibleName(/loading/);
  await switcher.click();
  await expect(page.getByRole("menuitem", { name })).toContainText("deleting");
  await capture("organization-deleting");
});
