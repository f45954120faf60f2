import type { DatabaseServiceSpec } from "../../protocol";

/**
 * What a clone's copy Job runs (copy-data.ts), per engine: a script for `sh -c` in the source
 * database's own image, which reads both sides' connections from the variables the Job sets
 * from Secrets (SOURCE_* and TARGET_*: HOST, PORT, USER, PASSWORD, and for PostgreSQL DATABASE).
 * Each leaves a target that already holds data as it is, saying so, and exits 0: the copy is
 * then done. A copy that fails exits with the tools' own messages and leaves the target empty
 * (a Redis target that could not be emptied is marked, for the next attempt to empty it).
 */

/**
 * PostgreSQL, in the container's shell. libpq reads each side's connection from PG* variables set
 * in a subshell (never on a command line, where `ps` would show a password). The target must be
 * empty: one that already holds relations (a copy that succeeded before, or data its users wrote)
 * is left as it is. The restore is one transaction that stops at the first error (a role the
 * target lacks, a relation that exists); should pg_dump fail midway, the statement written after
 * its output raises an error, so psql rolls back instead of committing a part of the dump.
 */
export const POSTGRES_COPY_SCRIPT = `set -eu
from_source() (
  export PGHOST="$SOURCE_HOST" PGPORT="$SOURCE_PORT" PGUSER="$SOURCE_USER" PGPASSWORD="$SOURCE_PASSWORD" PGDATABASE="$SOURCE_DATABASE"
  "$@"
)
into_target() (
  export PGHOST="$TARGET_HOST" PGPORT="$TARGET_PORT" PGUSER="$TARGET_USER" PGPASSWORD="$TARGET_PASSWORD" PGDATABASE="$TARGET_DATABASE"
  "$@"
)
relations() {
  into_target psql -X -A -t -v ON_ERROR_STOP=1 -c "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'"
}
held=$(relations)
if [ "$held" != 0 ]; then
  echo "$TARGET_DATABASE already holds $held relations: nothing copied"
  exit 0
fi
echo "Copying database $SOURCE_DATABASE from $SOURCE_HOST:$SOURCE_PORT into $TARGET_DATABASE"
{
  from_source pg_dump --no-owner --no-privileges --quote-all-identifiers \\
    || echo "DO \\$\\$ BEGIN RAISE EXCEPTION 'pg_dump failed: nothing was copied'; END \\$\\$;"
} | into_target psql -X -q -v ON_ERROR_STOP=1 --single-transaction -f -
echo "Copied: $TARGET_DATABASE holds $(relations) relations"
`;

/**
 * Redis, in the container's shell: every key of every logical database of the source, with its
 * time to live, DUMPed from the source and RESTOREd into the target by redis-cli, the client of
 * the image the source runs (so of its server's DUMP format). redis-cli reads each side's
 * password from REDISCLI_AUTH, set in a subshell (never on a command line).
 *
 * DUMP/RESTORE through the Job rather than MIGRATE: MIGRATE runs on the source server, which
 * would have to connect into the clone's namespace (network policies that let the clone reach
 * the source need not allow the way back), would block its clients while each batch travels
 * (the source is a live environment's database), and would take the target's password as an
 * argument of a command. Here the Job talks to both servers, as the PostgreSQL copy does.
 *
 * Binary keys and values, and keys with spaces or newlines, cross the pipes intact because no
 * byte of data travels raw: redis-cli prints each key (`--scan --no-raw`) and each reply (`--csv`)
 * as a double-quoted string in which every byte other than printable ASCII is escaped (`\n`,
 * `\x00`), one per line, and splits the commands it reads from stdin by the same quoting rules,
 * so `RESTORE "<key>" <ttl> "<payload>"` gives the server back each byte it printed. A line of
 * data always starts with a quote: the marks that close each stream (`END` after the scan, an
 * integer where a key would be) cannot be data. `sh` has no pipefail: a stage that stops early
 * (a server going away, a reply out of place) never passes its end mark on, and the last stage,
 * whose status is the pipeline's, fails without it; a refused RESTORE (out of memory) fails it
 * too. The keys SCAN finds (in batches; a key may come twice, hence REPLACE) are each read with
 * ECHO, DUMP and PTTL on one connection, and restored with the time they had left, in
 * milliseconds (so each expires at most the copy's lag later than on the source, whatever the
 * two servers' clocks say); a key that expired or went away in between is not restored. A source written
 * to during the copy gives each key as it was when read.
 *
 * The target must hold no keys: one that does (a copy that succeeded before, or data its users
 * wrote) is left as it is. A copy that fails removes what it restored (FLUSHALL: the target was
 * empty when it began); a marker key, set before the first key is restored and deleted after the
 * last, tells the next attempt that the keys it finds are a failed copy's to remove, should even
 * that have failed (a target restarting).
 */
export const REDIS_COPY_SCRIPT = `set -eu
from_source() (
  export REDISCLI_AUTH="$SOURCE_PASSWORD"
  exec redis-cli -h "$SOURCE_HOST" -p "$SOURCE_PORT" --user "$SOURCE_USER" "$@"
)
into_target() (
  export REDISCLI_AUTH="$TARGET_PASSWORD"
  exec redis-cli -h "$TARGET_HOST" -p "$TARGET_PORT" --user "$TARGET_USER" "$@"
)
keyspace() {
  printf '%s\\n' "$1" | awk -F '[:=,]' '/^db[0-9]+:keys=/ { print substr($1, 3), $3 }'
}
keys_in() {
  keyspace "$1" | awk '{ n += $2 } END { print n + 0 }'
}
copy_database() {
  { from_source -n "$1" --no-raw --scan && echo END; } |
    awk '$0 == "END" { print "DBSIZE"; next } { print "ECHO " $0; print "DUMP " $0; print "PTTL " $0 }' |
    from_source -n "$1" --csv |
    awk '
      function fail(why) { print why | "cat 1>&2"; failed = 1; exit 1 }
      step == 0 && /^"/ { key = $0; step = 1; next }
      step == 0 && /^[0-9]+$/ { print "DBSIZE"; done = 1; exit }
      step == 1 && (/^"/ || $0 == "NULL") { dump = $0; step = 2; next }
      step == 2 && /^-?[0-9]+$/ {
        if (dump != "NULL" && $0 != -2 && $0 != 0) print "RESTORE " key " " ($0 == -1 ? 0 : $0) " " dump " REPLACE"
        step = 0; next
      }
      { fail("the source answered: " substr($0, 1, 200)) }
      END { if (!done && !failed) fail("the source stopped answering before its last key") }' |
    into_target -n "$1" --csv |
    awk -v database="$1" '
      function fail(why) { print why | "cat 1>&2"; failed = 1; exit 1 }
      /^"OK"$/ { copied++; next }
      /^[0-9]+$/ { done = 1; next }
      { fail("the target answered: " substr($0, 1, 200)) }
      END {
        if (failed) exit 1
        if (!done) fail("the copy of database " database " stopped before its last key")
        print "Database " database ": " copied + 0 " keys copied"
      }'
}
MARKER=slipway:data-copy-incomplete
target=$(into_target -e INFO keyspace) || { echo "Could not read the keys of $TARGET_HOST:$TARGET_PORT" >&2; exit 1; }
held=$(keys_in "$target")
if [ "$held" != 0 ]; then
  marked=$(into_target -e EXISTS "$MARKER")
  if [ "$marked" != 1 ]; then
    echo "$TARGET_HOST already holds $held keys: nothing copied"
    exit 0
  fi
  echo "$TARGET_HOST holds $held keys of a copy that did not finish: removing them to copy again"
  into_target -e FLUSHALL > /dev/null
fi
source=$(from_source -e INFO keyspace) || { echo "Could not read the keys of $SOURCE_HOST:$SOURCE_PORT" >&2; exit 1; }
echo "Copying the keys of $SOURCE_HOST:$SOURCE_PORT into $TARGET_HOST"
into_target -e SET "$MARKER" "$SOURCE_HOST:$SOURCE_PORT" > /dev/null
for database in $(keyspace "$source" | awk '{ print $1 }'); do
  if ! copy_database "$database"; then
    into_target -e FLUSHALL > /dev/null && echo "Nothing copied: the keys restored before the failure were removed" >&2
    exit 1
  fi
done
into_target -e DEL "$MARKER" > /dev/null
target=$(into_target -e INFO keyspace)
echo "Copied: $TARGET_HOST holds $(keys_in "$target") keys"
`;

/** The script of each engine's copy, and whether it reads a database name (a Redis copy takes every logical database). */
export const COPY_SCRIPTS: Record<DatabaseServiceSpec["config"]["engine"], { script: string; database: boolean }> = {
  postgresql: { script: POSTGRES_COPY_SCRIPT, database: true },
  redis: { script: REDIS_COPY_SCRIPT, database: false },
};
