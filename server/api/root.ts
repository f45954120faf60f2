import { clustersRouter } from "./routers/clusters";
import { deploymentsRouter } from "./routers/deployments";
import { environmentsRouter } from "./routers/environments";
import { instanceRouter } from "./routers/instance";
import { invitesRouter, membersRouter } from "./routers/members";
import { metricsRouter } from "./routers/metrics";
import { notificationsRouter } from "./routers/notifications";
import { dnsProvidersRouter } from "./routers/dns-providers";
import { domainsRouter } from "./routers/domains";
import { organizationRouter } from "./routers/organization";
import { organizationsRouter } from "./routers/organizations";
import { projectsRouter } from "./routers/projects";
import { servicesRouter } from "./routers/services";
import { stagesRouter } from "./routers/stages";
import { variablesRouter } from "./routers/variables";
import { webhooksRouter } from "./routers/webhooks";
import { createCallerFactory, router } from "./trpc";

export const appRouter = router({
  organization: organizationRouter,
  organizations: organizationsRouter,
  instance: instanceRouter,
  projects: projectsRouter,
  environments: environmentsRouter,
  services: servicesRouter,
  stages: stagesRouter,
  domains: domainsRouter,
  dnsProviders: dnsProvidersRouter,
  variables: variablesRouter,
  deployments: deploymentsRouter,
  clusters: clustersRouter,
  members: membersRouter,
  invites: invitesRouter,
  metrics: metricsRouter,
  git: webhooksRouter,
  notifications: notificationsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
