import type { Actor } from "./auth/actor";
import type { Database } from "./db/client";
import type { RepositoryCheckSettings } from "./git/check-repository";
import type { NotificationTargetPolicy } from "./notifications/target-address";
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
  /** Whether webhook notifications may go to private, loopback and link-local addresses (server/notifications/target-address.ts). */
  notificationTargets: NotificationTargetPolicy;
};

export type DomainContext = Services & { actor: Actor };
