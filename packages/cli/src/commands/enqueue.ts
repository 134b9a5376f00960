/** `purger enqueue <kind> <json>`: put an item in the bin (validated against the handler's schema first). */
import { binKinds, enqueue, PurgerError, type BinKind } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export async function enqueueCommand(kind: string, json: string, flags: ConfigFlags, io: Io): Promise<number> {
  const config = await loadCliConfig(flags, io);
  const kinds = binKinds(config.entries);
  const known = kinds.find((k) => k.kind === kind);
  if (!known) {
    throw new PurgerError("USAGE", `unknown bin kind "${kind}"`, {
      hint: `kinds of this config: ${kinds.map((k) => k.kind).join(", ") || "(none)"}`,
    });
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (error) {
    throw new PurgerError("USAGE", `the payload is not valid JSON: ${(error as Error).message}`, {
      hint: `${kind} takes a JSON object${describePayload(known)}, quoted for the shell: purger enqueue ${kind} '{…}'`,
    });
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

/** ` with id (integer, required), reason (string)`, from the handler's JSON Schema. */
function describePayload(kind: BinKind): string {
  const schema = kind.handler.schema as { properties?: Record<string, { type?: string | string[] }>; required?: string[] };
  const keys = Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const type = Array.isArray(property.type) ? property.type.join(" or ") : property.type;
    const details = [type, schema.required?.includes(name) ? "required" : undefined].filter(Boolean).join(", ");
    return details ? `${name} (${details})` : name;
  });
  return keys.length > 0 ? ` with ${keys.join(", ")}` : "";
}
