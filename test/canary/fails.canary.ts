import { expect, it } from "vitest";

// Deliberately failing: test/canary/run checks that `vitest run`, with the suite's real global
// setup (an embedded PostgreSQL), exits non-zero when a test fails. Never part of `npm test`.
it("fails on purpose, so that the runner's exit code can be checked", () => {
  expect(1 + 1).toBe(3);
});
