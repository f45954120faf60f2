import type { DatabaseConnection, DatabaseEngine } from "../../../protocol";
import type { ProcessUser } from "../database-user";
import type { LaunchSpec } from "../layout";
import { postgresql } from "./postgresql";
import { redis } from "./redis";

/** A database on this engine whose data a clone copies. */
export type SourceDatabase = {
  name: string;
  dataDir: string;
  /** Whether its server runs now (then the copy must be taken through the server). */
  running: boolean;
  port: number;
  /** Its launch environment (how the engine reaches it: PGHOST…, REDISCLI_AUTH). */
  env: Record<string, string>;
};

export type PrepareInput = {
  dataDir: string;
  runDir: string;
  connection: DatabaseConnection;
  /** Set on a clone's first deployment, while its data directory is still empty. */
  copyFrom: SourceDatabase | null;
  user: ProcessUser | null;
  /** Puts a maintenance command (initdb) in the service's sandbox, as its user; absent without one (it then runs as `user`). */
  confine?: (argv: string[]) => string[];
  signal: AbortSignal;
  output: (fd: "stdout" | "stderr" | "system", text: string) => void;
};

/** What the local runtime needs from each kind of database it runs as a process. */
export interface DatabaseDriver {
  readonly engine: DatabaseEngine;
  /** Whether this host has what the database needs (binaries). */
  available(): Promise<boolean>;
  /** The server's program, whose installation its sandbox shows (null: not installed). */
  program(): Promise<string | null>;
  /** Makes the data directory ready (first use: a new cluster, or a copy) and says how to start the server. */
  prepare(input: PrepareInput): Promise<LaunchSpec>;
  /** Resolves once the server accepts the service's credentials (making them current); throws while it does not. */
  ready(input: { runDir: string; connection: DatabaseConnection }): Promise<void>;
}

export const databaseDrivers: Record<DatabaseEngine, DatabaseDriver> = { postgresql, redis };

/** The database engines this host can run. */
export async function availableDatabases(): Promise<DatabaseEngine[]> {
  const found = await Promise.all(Object.values(databaseDrivers).map(async (driver) => ((await driver.available()) ? driver.engine : null)));
  return found.filter((engine): engine is DatabaseEngine => engine !== null);
}
