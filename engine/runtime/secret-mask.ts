import type { ResolvedVariable } from "../protocol";

/**
 * Replaces every secret variable value with ****. Longest values first, so a secret that
 * contains another is masked whole.
 */
export function secretMasker(variables: readonly ResolvedVariable[]): (text: string) => string {
  const secrets = [...new Set(variables.filter((variable) => variable.secret && variable.value !== "").map((variable) => variable.value))].sort(
    (a, b) => b.length - a.length,
  );
  if (secrets.length === 0) return (text) => text;
  return (text) => {
    let masked = text;
    for (const secret of secrets) masked = masked.split(secret).join("****");
    return masked;
  };
}
