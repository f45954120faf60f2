export * from "./events";
export * from "./messages";
export * from "./snapshot";
export * from "./metrics";
export * from "./sequence-buffer";
export * from "./shell";
export * from "./backoff";
export * from "./steps";
