export * from "./audit";
export * from "./clusters";
export * from "./deployments";
export * from "./organizations";
export * from "./projects";
export * from "./realtime";
