import { clustersRouter } from "./routers/clusters";
import { deploymentsRouter } from "./routers/deployments";
import { environmentsRouter } from "./routers/environments";
import { invitesRouter, membersRouter } from "./routers/members";
import { organizationRouter } from "./routers/organization";
import { projectsRouter } from "./routers/projects";
import { servicesRouter } from "./routers/services";
import { variablesRouter } from "./routers/variables";
import { createCallerFactory, router } from "./trpc";

export const appRouter = router({
  organization: organizationRouter,
  projects: projectsRouter,
  environments: environmentsRouter,
  services: servicesRouter,
  variables: variablesRouter,
  deployments: deploymentsRouter,
  clusters: clustersRouter,
  members: membersRouter,
  invites: invitesRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
