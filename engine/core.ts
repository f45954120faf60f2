/** The engine's public surface for the agent (engine/agent.ts). */
export { createLocalEngine, type Engine, type EngineReporter, type LocalEngineOptions } from "./local-engine";
