/**
 * The copy a clone's database Job runs on a kubernetes cluster (copy-data.ts), run for real: the
 * exact script of the Job's container, in `sh`, with the PostgreSQL client tools of this machine,
 * between two real PostgreSQL servers on 127.0.0.1. No cluster is involved: this shows the
 * pipeline moves a database's data, not that a cluster runs the Job (kubernetes-runtime.test.ts
 * shows what the runtime asks of a cluster, manifests.test.ts that the Job is a valid one).
 *
 * The source is Debian's PostgreSQL server, the target the tests' embedded one: pg_dump refuses
 * to dump a server newer than itself, and the embedded package (PostgreSQL 18) ships no pg_dump,
 * so the dump tool here is Debian's, of its own server's version; in the cluster the Job runs the
 * source image's own pg_dump. Both sides use owners that are not superusers, as CloudNativePG's
 * `<name>-app` owner is not.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { withDatabase } from "../../../test/database";
import { debianPostgresBin, startDebianPostgres, type ExternalPostgres } from "../../../test/support/debian-postgres";
import { skipWithout } from "../../../test/support/requirements";
import { childEnv, engineBaseEnv } from "../shared/processes-env";
import { POSTGRES_COPY_SCRIPT } from "./copy-scripts";

const run = promisify(execFile);
const bin = debianPostgresBin();
const skip = skipWithout(bin === null ? "Debian's postgresql server and client (apt-get install postgresql)" : null);

let source: ExternalPostgres;

beforeAll(async () => {
  if (skip) return;
  source = await startDebianPostgres(bin!);
}, 60_000);

afterAll(async () => {
  await source?.stop();
}, 60_000);

type Side = { host: string; port: string; user: string; password: string; database: string; url: string };

/** A database owned by a new role that is not a superuser, on the server `adminUrl` reaches. */
async function ownedDatabase(adminUrl: string, name: string): Promise<Side> {
  const password = randomBytes(12).toString("base64url");
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create role ${name} login password '${password}'`);
  await admin.query(`create database ${name} owner ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  const side = { host: url.hostname, port: url.port, user: name, password, database: name };
  return { ...side, url: `postgres://${name}:${password}@${side.host}:${side.port}/${name}` };
}

async function query<T extends pg.QueryResultRow>(side: Side, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: side.url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** The Job container's command, `sh -c <script>`, with the variables its Secrets and manifest give it. */
async function copy(from: Side, into: Side): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = childEnv({
    PATH: engineBaseEnv().PATH,
    ...Object.fromEntries(
      (["SOURCE", "TARGET"] as const).flatMap((prefix) => {
        const side = prefix === "SOURCE" ? from : into;
        return Object.entries({ HOST: side.host, PORT: side.port, USER: side.user, PASSWORD: side.password, DATABASE: side.database }).map(([key, value]) => [
          `${prefix}_${key}`,
          value,
        ]);
      }),
    ),
  });
  try {
    const { stdout, stderr } = await run("sh", ["-c", POSTGRES_COPY_SCRIPT], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const RELATIONS =
  "select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'";

describe.skipIf(skip)("the clone's database copy (pg_dump | psql), for real", () => {
  it("streams the source's schema and rows into the empty target, then leaves a target that holds data alone", async () => {
    const from = await ownedDatabase(source.url("postgres"), "shop");
    await query(
      from,
      `create table orders (id serial primary key, customer text not null, total numeric(10,2), placed_at timestamptz default now());
       create index orders_customer on orders (customer);
       comment on table orders is 'one row per order';
       create schema reports;
       create view reports.big_orders as select * from orders where total > 100;
       insert into orders (customer, total) select 'customer ' || i, i * 7.5 from generate_series(1, 500) i;`,
    );
    const into = await ownedDatabase(inject("postgresUrl"), `shop_clone_${randomBytes(3).toString("hex")}`);

    const first = await copy(from, into);
    expect(first, first.stderr).toMatchObject({ code: 0 });
    expect(first.stdout).toContain(`Copying database shop from 127.0.0.1:${from.port} into ${into.database}`);
    expect(first.stdout).toMatch(new RegExp(`Copied: ${into.database} holds \\d+ relations`));
    // Never a password in what the Job's log shows.
    expect(first.stdout + first.stderr).not.toContain(from.password);
    expect(first.stdout + first.stderr).not.toContain(into.password);

    expect(await query(into, "select count(*)::int as n, sum(total)::text as total from orders")).toEqual([{ n: 500, total: "939375.00" }]);
    expect(await query(into, "select count(*)::int as n from reports.big_orders")).toEqual([{ n: 487 }]);
    expect(await query(into, "select obj_description('orders'::regclass) as comment")).toEqual([{ comment: "one row per order" }]);
    expect(await query(into, "select indexname from pg_indexes where tablename = 'orders' order by indexname")).toEqual([
      { indexname: "orders_customer" },
      { indexname: "orders_pkey" },
    ]);
    // The sequence goes on where the source's was, and the target's owner owns what was copied.
    expect(await query(into, "insert into orders (customer, total) values ('new', 1) returning id")).toEqual([{ id: 501 }]);
    expect(await query(into, "select tableowner from pg_tables where tablename = 'orders'")).toEqual([{ tableowner: into.user }]);

    // Run again (a re-delivered task, a later deployment): the target holds data, nothing is copied over it.
    const again = await copy(from, into);
    expect(again, again.stderr).toMatchObject({ code: 0 });
    expect(again.stdout).toMatch(new RegExp(`^${into.database} already holds \\d+ relations: nothing copied$`, "m"));
    expect(await query(into, "select count(*)::int as n from orders")).toEqual([{ n: 501 }]);
  });

  it("a copy that fails leaves the target empty and exits with the tools' reasons", async () => {
    const from = await ownedDatabase(source.url("postgres"), "billing");
    await query(from, "create table invoices (id int primary key); insert into invoices select generate_series(1, 10);");
    // An object only a superuser may create, after the table in the dump: the restore stops there, past the table.
    const admin = new pg.Client({ connectionString: withDatabase(source.url("postgres"), "billing") });
    await admin.connect();
    await admin.query(
      `create function stamp() returns event_trigger language plpgsql as $$ begin end $$;
       create event trigger stamp_ddl on ddl_command_end execute function stamp();`,
    );
    await admin.end();
    const into = await ownedDatabase(inject("postgresUrl"), `billing_clone_${randomBytes(3).toString("hex")}`);

    const failed = await copy(from, into);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/permission denied to create event trigger/);
    expect(await query(into, RELATIONS)).toEqual([{ n: 0 }]);

    // pg_dump itself failing (the source refuses the password): nothing is committed, and the reason is pg_dump's.
    const refused = await copy({ ...from, password: "not-the-password" }, into);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/pg_dump: error: .*password authentication failed for user "billing"/s);
    expect(refused.stderr).toContain("pg_dump failed: nothing was copied");
    expect(await query(into, RELATIONS)).toEqual([{ n: 0 }]);
  });
});
