/** Where the dashboard remembers the organization in use; the server reads the same cookie (server/auth/sessions.ts). */
export const ORGANIZATION_COOKIE = "slipway-organization";

/** Makes `organizationId` the organization the dashboard acts in; null forgets the choice (the server takes the first). */
export function chooseOrganization(organizationId: string | null): void {
  document.cookie =
    organizationId === null
      ? `${ORGANIZATION_COOKIE}=; path=/; max-age=0; samesite=lax`
      : `${ORGANIZATION_COOKIE}=${encodeURIComponent(organizationId)}; path=/; max-age=31536000; samesite=lax`;
}
