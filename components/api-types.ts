import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "../server/api/root";

/** What the API returns and accepts, by procedure: `Outputs["services"]["get"]`. Types only. */
export type Outputs = inferRouterOutputs<AppRouter>;
export type Inputs = inferRouterInputs<AppRouter>;

export type Environment = Outputs["environments"]["get"];
export type Service = Outputs["services"]["get"];
export type EnvironmentMode = Environment["mode"];
export type VariableScope = Outputs["variables"]["list"][number]["scope"];

export const ENVIRONMENT_MODES = ["DEVELOPMENT", "STAGING", "PRODUCTION", "PREVIEW"] as const satisfies readonly EnvironmentMode[];

const MODE_COLORS: Record<EnvironmentMode, string> = { PRODUCTION: "red", STAGING: "orange", DEVELOPMENT: "blue", PREVIEW: "violet" };
export function modeColor(mode: EnvironmentMode): string {
  return MODE_COLORS[mode];
}
