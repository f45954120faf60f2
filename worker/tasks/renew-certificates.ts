import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { scheduleRenewals } from "../../server/domains/acme";
import { taskCatalog } from "../../server/jobs/catalog";

/**
 * Daily (crontab): queues the renewal of ACME certificates that expire within 30 days, and
 * another try at first certificates that failed or were left unfinished.
 */
export function renewCertificates(services: Services): Task {
  return async (payload, helpers) => {
    taskCatalog.renew_certificates.parse(payload ?? {});
    const count = await scheduleRenewals(services);
    if (count > 0) helpers.logger.info(`renewing or retrying ${count} certificate(s)`);
  };
}
