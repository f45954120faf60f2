/**
 * Variables of this process's environment a test changes, for an engine that runs in the test's
 * process and reads them at each deploy (its proxy, its CAs, its PATH). Only the names given are
 * touched, so restore() puts back exactly what the host had, unset ones unset.
 */
export function testEnv(names: readonly string[]) {
  const saved = new Map(names.map((name) => [name, process.env[name]]));
  return {
    /** Sets `values` and unsets every other of the names: each test starts from the same environment, whatever the last one left. */
    replace(values: Record<string, string>): void {
      const unknown = Object.keys(values).filter((name) => !saved.has(name));
      if (unknown.length > 0) throw new Error(`testEnv: ${unknown.join(", ")} not among the variables it restores (${names.join(", ")})`);
      for (const name of names) delete process.env[name];
      Object.assign(process.env, values);
    },
    /** Puts the names back as they were when testEnv was called. */
    restore(): void {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    },
  };
}
