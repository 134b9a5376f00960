/**
 * Item locks of the bin: while a handler works on an item, its process holds
 * a PostgreSQL session advisory lock on the item. graphile-worker's job lock
 * is not enough: the heartbeat force-unlocks the jobs of a process it takes
 * for dead, and a live but silent process (a long GC pause, a network blip)
 * would then see its item handled a second time elsewhere. The advisory lock
 * lives exactly as long as the session, so it says whether the holder is
 * really alive.
 *
 * One dedicated connection per process holds every lock of that process (a
 * connection per item would take from the pool the handlers need). Session
 * locks are re-entrant within a session, so items in flight are also tracked
 * here, in memory. When the connection dies its locks are gone: the holders'
 * signals abort, and their writes are fenced by `purger.bin.claimed_by`.
 */
import pg from "pg";
import type { Logger } from "../log.js";

export interface BinItemLock {
  /** Aborts when the lock is lost (its connection died): another process may take the item. */
  signal: AbortSignal;
  release(): Promise<void>;
}

export interface BinItemLocks {
  /** The item's lock, or null when another handler (of this or another process) holds it. */
  tryLock(itemId: string): Promise<BinItemLock | null>;
  close(): Promise<void>;
}

/** Sessions holding item locks carry this application name (to tell them apart in `pg_stat_activity`). */
export const BIN_LOCKS_APPLICATION = "purger-bin-locks";

export function binItemLockKey(itemId: string): string {
  return `purger:bin:${itemId}`;
}

export function createBinItemLocks(pool: pg.Pool, log: Logger): BinItemLocks {
  /** Items locked (or being locked) by this process, with the session holding each lock. */
  const held = new Map<string, { controller: AbortController; client: pg.Client | null }>();
  let session: Promise<pg.Client> | null = null;
  let active: pg.Client | null = null;
  let closed = false;
  // One query at a time on the session (pg deprecates overlapping ones on a client).
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  const lose = (client: pg.Client, error: Error) => {
    // Only the session in use counts: an old one's late `end` must not touch the locks of its successor.
    if (client !== active) return;
    active = null;
    session = null;
    client.end().catch(() => {});
    const lost = [...held].filter(([, h]) => h.client === client);
    if (lost.length > 0)
      log.warn({ items: lost.map(([id]) => id), error: error.message }, "lost the bin item locks: their connection died");
    for (const [id, h] of lost) {
      held.delete(id);
      h.controller.abort(new Error(`the item lock was lost: ${error.message}`));
    }
  };

  const connect = (): Promise<pg.Client> => {
    session ??= (async () => {
      const client = new pg.Client({ ...pool.options, application_name: BIN_LOCKS_APPLICATION });
      client.on("error", (error) => lose(client, error));
      client.on("end", () => lose(client, new Error("the connection ended")));
      try {
        await client.connect();
      } catch (error) {
        session = null;
        throw error;
      }
      active = client;
      return client;
    })();
    return session;
  };

  return {
    async tryLock(itemId) {
      if (closed || held.has(itemId)) return null;
      // Claimed in memory before the round trip, so two jobs of one item in this process cannot both pass.
      const mine = { controller: new AbortController(), client: null as pg.Client | null };
      held.set(itemId, mine);
      let client: pg.Client;
      try {
        client = await connect();
        const { rows } = await serial(() =>
          client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [binItemLockKey(itemId)]),
        );
        if (rows[0]?.locked !== true) {
          if (held.get(itemId) === mine) held.delete(itemId);
          return null;
        }
      } catch (error) {
        if (held.get(itemId) === mine) held.delete(itemId);
        throw error;
      }
      if (held.get(itemId) !== mine || client !== active) {
        // The session died while the lock was taken: it is gone with it.
        if (held.get(itemId) === mine) held.delete(itemId);
        mine.controller.abort(new Error("the item lock was lost: its connection died"));
      } else {
        mine.client = client;
      }
      return {
        signal: mine.controller.signal,
        async release() {
          if (held.get(itemId) !== mine) return;
          held.delete(itemId);
          // An unlock that fails means the connection is going away, and the lock with it.
          await serial(() => client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [binItemLockKey(itemId)])).catch(() => {});
        },
      };
    },
    async close() {
      closed = true;
      const current = active;
      active = null;
      session = null;
      held.clear();
      await current?.end().catch(() => {});
    },
  };
}
