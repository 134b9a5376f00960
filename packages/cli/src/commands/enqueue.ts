/** `purger enqueue <kind> <json>`: put an item in the bin (validated against the handler's schema first). */
import { binKinds, enqueue, PurgerError } from "@purger/core";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export async function enqueueCommand(kind: string, json: string, flags: ConfigFlags, io: Io): Promise<number> {
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (error) {
    throw new PurgerError("USAGE", `the payload is not valid JSON: ${(error as Error).message}`, { hint: `e.g. purger enqueue ${kind} '{"prefix":"teams/42/"}'` });
  }
  const config = await loadCliConfig(flags, io);
  const kinds = binKinds(config.entries);
  if (!kinds.some((k) => k.kind === kind)) {
    throw new PurgerError("USAGE", `unknown bin kind "${kind}"`, { hint: `kinds of this config: ${kinds.map((k) => k.kind).join(", ") || "(none)"}` });
  }
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    const id = await enqueue(db.pool, kind, payload, kinds);
    io.out(`${id}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
