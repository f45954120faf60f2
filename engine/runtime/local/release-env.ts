import type { ResolvedVariable } from "../../protocol";
import type { EnvRecipe } from "./layout";

/**
 * A release's environment, made from the service's variables the way its build made it: the
 * engine's base (PATH, HOME) under the variables, the app's tools first on PATH, the engine's own
 * settings (SLIPWAY_RELEASE_ID, a virtualenv) over them. The launch file keeps the recipe, so a
 * restart makes the environment again with the variables its deployment resolved, without a
 * rebuild, as Heroku applies a config change (issue 15, item 18).
 */
export function releaseEnv(recipe: EnvRecipe, variables: readonly ResolvedVariable[]): Record<string, string> {
  const values = Object.fromEntries(variables.map((variable) => [variable.key, variable.value]));
  const basePath = values.PATH ?? recipe.base.PATH;
  return { ...recipe.base, ...values, PATH: [...recipe.pathPrefix, ...(basePath ? [basePath] : [])].join(":"), ...recipe.over };
}

export function secretKeysOf(variables: readonly ResolvedVariable[]): string[] {
  return variables.filter((variable) => variable.secret).map((variable) => variable.key);
}
