/**
 * The entry lock: a PostgreSQL session advisory lock per entry, held on the
 * connection that runs the entry's batches. It dies with the connection, so a
 * killed process never blocks an entry.
 */
import type pg from "pg";

export function entryLockKey(entry: string): string {
  return `purger:entry:${entry}`;
}

export async function tryLockEntry(client: pg.ClientBase, entry: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [
    entryLockKey(entry),
  ]);
  return rows[0]?.locked === true;
}

export async function unlockEntry(client: pg.ClientBase, entry: string): Promise<void> {
  await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [entryLockKey(entry)]);
}

/** Who holds the entry's lock right now (application name and pid of the backend), if anyone. */
export async function lockHolder(pool: pg.Pool, entry: string): Promise<string | null> {
  const { rows } = await pool.query<{ holder: string }>(
    `SELECT coalesce(a.application_name, '') || ' (backend pid ' || l.pid || ', since ' || to_char(a.backend_start, 'HH24:MI:SS') || ')' AS holder
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)
      LIMIT 1`,
    [entryLockKey(entry)],
  );
  return rows[0]?.holder ?? null;
}

/** Which of `entries` some session of this database holds the lock of, i.e. is running right now. */
export async function lockedEntries(db: pg.Pool | pg.ClientBase, entries: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ key: string }>(
    `SELECT k AS key FROM unnest($1::text[]) AS k
      WHERE EXISTS (SELECT 1 FROM pg_locks l
                     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(k, 0))`,
    [entries.map(entryLockKey)],
  );
  const held = new Set(rows.map((r) => r.key));
  return new Set(entries.filter((e) => held.has(entryLockKey(e))));
}
