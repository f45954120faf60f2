import { createHash } from "node:crypto";
import type pg from "pg";

/** Distinct statement texts a process names; beyond, texts go unnamed (lists of ids of every length, say). */
export const MAX_NAMED_STATEMENTS = 2_000;

/** Too short to be worth it, or what a named statement cannot be (transaction control, several commands). */
const UNNAMED = /^\s*(begin|commit|rollback|savepoint|release|set|listen|unlisten|notify)\b|;/i;

/**
 * Sends the pool's statements as named prepared statements, each parsed once per connection:
 * PostgreSQL otherwise parses and plans each of the ORM's statements at every execution, which
 * on the fleet bench cost it more than executing them (pg_stat_statements: 3.4 s of planning
 * against 2.0 s of execution while 1,000 deployments were dispatched). After five executions of
 * a statement PostgreSQL keeps a generic plan when it is estimated to cost no more than the
 * custom ones (plan_cache_mode), as it does for any driver's prepared statements.
 *
 * Statement texts are the ORM's, fixed per query shape; the number of names is bounded. A pooler
 * in transaction mode would hand a connection's statements to another client: Slipway supports
 * a pooler in session mode only (deploy/README.md).
 */
export function nameStatements(pool: pg.Pool, options: { max?: number } = {}): void {
  const max = options.max ?? MAX_NAMED_STATEMENTS;
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    const known = names.get(text);
    if (known !== undefined || names.size >= max || text.length < 40 || UNNAMED.test(text)) return known;
    const name = `slipway_${createHash("sha1").update(text).digest("base64url")}`;
    names.set(text, name);
    return name;
  };
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((config: unknown, ...rest: unknown[]) => {
      if (config && typeof config === "object" && "text" in config && typeof config.text === "string" && !("name" in config && config.name)) {
        const name = nameOf(config.text);
        if (name) return query({ ...config, name }, ...rest);
      }
      return query(config, ...rest);
    }) as typeof client.query;
  });
}
