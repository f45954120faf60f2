/**
 * For a test that needs something this machine may lack (Podman, cgroups, Redis, Python's venv):
 * whether to skip it. On a developer's machine it skips, saying what is missing. Under CI
 * (`CI=true`) nothing may skip silently: a missing requirement means `.ci/run` no longer
 * installs what the tests need, so this throws and the test file fails with the reason.
 */
export function skipWithout(missing: string | null): boolean {
  if (missing === null) return false;
  if (process.env.CI) throw new Error(`This test needs ${missing}, and CI must provide it: .ci/run installs what the tests need.`);
  console.warn(`skipped: this machine lacks ${missing}`);
  return true;
}
