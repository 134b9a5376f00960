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
  const held = new Map<string, AbortController>();
  let session: Promise<pg.Client> | null = null;
  let closed = false;
  // One query at a time on the session (pg deprecates overlapping ones on a client).
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  const lose = (client: pg.Client, error: Error) => {
    if (session === null) return;
    const current = session;
    session = null;
    void current
      .then(async (c) => {
        if (c === client) await c.end();
      })
      .catch(() => {});
    if (held.size > 0) log.warn({ items: [...held.keys()], error: error.message }, "lost the bin item locks: their connection died");
    for (const controller of held.values()) controller.abort(new Error(`the item lock was lost: ${error.message}`));
    held.clear();
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
      return client;
    })();
    return session;
  };

  return {
    async tryLock(itemId) {
      if (closed || held.has(itemId)) return null;
      const controller = new AbortController();
      // Claimed in memory before the round trip, so two jobs of one item in this process cannot both pass.
      held.set(itemId, controller);
      let client: pg.Client;
      try {
        client = await connect();
        const { rows } = await serial(() =>
          client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [binItemLockKey(itemId)]),
        );
        if (rows[0]?.locked !== true) {
          held.delete(itemId);
          return null;
        }
      } catch (error) {
        if (held.get(itemId) === controller) held.delete(itemId);
        throw error;
      }
      return {
        signal: controller.signal,
        async release() {
          if (held.get(itemId) !== controller) return;
          held.delete(itemId);
          if (controller.signal.aborted) return;
          // An unlock that fails means the connection is going away, and the lock with it.
          await serial(() => client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [binItemLockKey(itemId)])).catch(() => {});
        },
      };
    },
    async close() {
      closed = true;
      const current = session;
      session = null;
      held.clear();
      if (current) await (await current.catch(() => null))?.end().catch(() => {});
    },
  };
}
