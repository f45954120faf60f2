/**
 * The toolchains of test engines unless a test says otherwise: apps that name no Node version
 * run on the host's Node (SLIPWAY_NODE_VERSION=system), and the npm registry is a loopback port
 * nothing listens on, so no test reaches the internet and one that needs a registry starts its
 * own (test/support/npm-registry.ts). Installing Node itself is tested in engine/local-engine.node.test.ts.
 */
// Port 2: nothing listens there, and fetch() does not refuse it as it does 9 and other well-known ports (a "bad port").
export const TEST_NPM_REGISTRY = "http://127.0.0.1:2";

/** For an engine made in the test's process (createLocalEngine's `toolchains`). */
export const testToolchains = { registry: TEST_NPM_REGISTRY, nodeDefault: "system" } as const;

/** For an engine started as a process (engine/config.ts reads these). */
export const testToolchainEnv = { SLIPWAY_NPM_REGISTRY: TEST_NPM_REGISTRY, SLIPWAY_NODE_VERSION: "system" } as const;
