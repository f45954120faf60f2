/**
 * The only environment the engine passes on from its own: where programs are and the home
 * directory (npm and pip need one). Everything else an app sees comes from its variables.
 */
export function engineBaseEnv(): { PATH: string; HOME: string } {
  return { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };
}

/**
 * A child's environment as spawn() types it. Next.js's types declare NODE_ENV required on
 * ProcessEnv; a child environment built from variables need not have it, hence the cast.
 */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return env as unknown as NodeJS.ProcessEnv;
}
