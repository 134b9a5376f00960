/**
 * How purger reads PostgreSQL's bigint: bigint (count(*), bigserial ids, processed counters) arrives as text by
 * default; our counts fit in a double. Imported for its effect by every module that opens connections (the pool,
 * the test databases), so the rule holds whichever entry point (SDK, host, testing) loaded core.
 */
import pg from "pg";

pg.types.setTypeParser(20, (value) => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
});
