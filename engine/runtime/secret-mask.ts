import type { ResolvedVariable } from "../protocol";

export type Masker = (text: string) => string;

/**
 * Replaces every secret variable value with ****. Longest values first, so a secret that
 * contains another is masked whole.
 */
export function secretMasker(variables: readonly ResolvedVariable[]): Masker {
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

/**
 * What a log line becomes while the secrets to mask it with are unknown: a placeholder saying
 * why, never the line itself (DESIGN.md: secrets are masked in every log line; fail closed).
 */
export function withheldLine(reason: string): string {
  return `[slipway] a line was withheld: the secrets to mask it with could not be loaded (${reason})`;
}

/**
 * A masker whose secrets are loaded when the first line comes. Until `load` succeeds every line
 * is withheld (withheldLine) and `load` is tried again for the next line, so the lines after the
 * secrets become readable are masked (a failing load is rare and cheap: a missing file).
 */
export function loadingMasker(load: () => readonly ResolvedVariable[]): Masker {
  let masker: Masker | null = null;
  return (text) => {
    if (!masker) {
      try {
        masker = secretMasker(load());
      } catch (error) {
        return withheldLine(error instanceof Error ? error.message : String(error));
      }
    }
    return masker(text);
  };
}
