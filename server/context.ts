import type { Actor } from "./auth/actor";
import type { Database } from "./db/client";
import type { DomainSettings } from "./domains/settings";
import type { RepositoryCheckSettings } from "./git/check-repository";
import type { NotificationSettings } from "./notifications/settings";
import type { Keyring } from "./secrets/keyring";

/**
 * What every domain function receives: its dependencies as arguments, never globals, so tests
 * drive the same code with a real database and a controlled clock.
 */
export type Services = {
  db: Database;
  keyring: Keyring;
  now: () => Date;
  leaseSeconds: number;
  /** Where users reach the control plane: links the API hands out (invitations) start with it. */
  publicUrl: string;
  /** How a service's repository is checked when it is saved (server/git/check-repository.ts). */
  repositoryCheck: RepositoryCheckSettings;
  /** How custom domains are checked and certified (server/domains/settings.ts); its defaults when absent. */
  domains?: DomainSettings;
  /** Where webhook notifications may go, and how long an engine may be away before it is reported. */
  notifications: NotificationSettings;
};

export type DomainContext = Services & { actor: Actor };
