import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "../server/api/root";

/**
 * The shapes the REST API answers with, inferred from the control plane's own procedure
 * declarations (types only: nothing of server/ is loaded at run time), so a changed output
 * schema breaks `tsc` here rather than a user's terminal.
 */
type Outputs = inferRouterOutputs<AppRouter>;
type Inputs = inferRouterInputs<AppRouter>;

export type WhoAmI = Outputs["organization"]["whoami"];
export type Resolved = Outputs["organization"]["resolve"];
export type Overview = Outputs["organization"]["overview"];
export type ApiToken = Outputs["organization"]["tokens"][number];
export type AuditEvent = Outputs["organization"]["audit"][number];
export type CreatedApiToken = Outputs["organization"]["createToken"];
export type Project = Outputs["projects"]["list"][number];
export type Environment = Outputs["environments"]["list"][number];
export type Service = Outputs["services"]["list"][number];
export type BuildPlan = Outputs["services"]["plan"];
export type Variable = Outputs["variables"]["list"][number];
export type Deployment = Outputs["deployments"]["get"];
export type DeploymentRequest = Outputs["deployments"]["create"];
export type DeploymentEvent = Outputs["deployments"]["events"][number];
export type DeploymentChanges = Outputs["deployments"]["changes"];
export type DeploymentSummary = Outputs["deployments"]["summary"];
export type LogLine = Outputs["deployments"]["logs"][number];
export type Cluster = Outputs["clusters"]["list"][number];
export type CreatedCluster = Outputs["clusters"]["create"];
export type Role = WhoAmI["role"];
export type MetricsCurrent = Outputs["metrics"]["current"];
export type MetricPoint = Outputs["metrics"]["series"][number];
export type MetricWindow = NonNullable<Inputs["metrics"]["series"]["window"]>;
export type GitConnection = Outputs["git"]["list"][number];
export type GitConnectionWithSecret = Outputs["git"]["connect"];
export type GitDelivery = Outputs["git"]["deliveries"][number];
export type GitDeliveryDetail = Outputs["git"]["delivery"];
export type GitTriggers = Outputs["services"]["gitTriggers"];
export type PreviewBlueprint = Outputs["git"]["setPreviewBlueprint"];
export type Preview = Outputs["git"]["previews"][number];
export type GitProvider = Inputs["git"]["connect"]["provider"];
export type MyOrganization = Outputs["organization"]["mine"][number];
export type CreatedOrganization = Outputs["organizations"]["create"];
export type RenamedOrganization = Outputs["organizations"]["rename"];
export type TransferredOrganization = Outputs["organizations"]["transfer"];
export type DeletedOrganization = Outputs["organizations"]["delete"];
export type NotificationRule = Outputs["notifications"]["list"][number];
export type NotificationRuleWithSecret = Outputs["notifications"]["create"];
export type NotificationDelivery = Outputs["notifications"]["deliveries"][number];
export type NotificationEvent = Outputs["notifications"]["events"][number];
export type Stage = Outputs["stages"]["list"][number];
export type ChangedStage = Outputs["stages"]["add"];
export type RemovedStage = Outputs["stages"]["remove"];
export type ServiceStage = Outputs["stages"]["setService"];
export type ServiceDomain = Outputs["domains"]["list"][number];
export type DnsProvider = Outputs["dnsProviders"]["list"][number];
