import type { Task } from "graphile-worker";
import type { Services } from "../../server/context";
import { issueCertificate } from "../../server/domains/acme";
import { taskCatalog } from "../../server/jobs/catalog";

/**
 * Obtains or renews one domain's certificate; a failure is recorded on the domain (not retried
 * here: the daily renewal scheduler tries renewals and first certificates again).
 */
export function issueCertificateTask(services: Services): Task {
  return async (payload, helpers) => {
    const { domainId } = taskCatalog.issue_certificate.parse(payload);
    const outcome = await issueCertificate(services, domainId);
    if (outcome.status === "failed") helpers.logger.warn(`certificate of domain ${domainId} failed: ${outcome.error}`);
    else helpers.logger.info(`certificate of domain ${domainId}: ${outcome.status}`);
  };
}
