/** `purger bin list|retry|drop [ids…]`: see and act on the bin's items (failed ones above all). */
import { dropBinItems, listBinItems, PurgerError, retryBinItems, type BinItem } from "@purger/core/host";
import { connectDatabase } from "../database.js";
import { loadCliConfig, type ConfigFlags, type Io } from "../context.js";

export interface BinFlags extends ConfigFlags {
  json?: boolean;
  status?: string;
  kind?: string;
  all?: boolean;
}

export async function binCommand(action: string, ids: string[], flags: BinFlags, io: Io): Promise<number> {
  if (!["list", "retry", "drop"].includes(action)) {
    throw new PurgerError("USAGE", `unknown bin action "${action}"`, {
      hint: "use: purger bin list | retry [ids…|--all] | drop [ids…|--all]",
    });
  }
  for (const id of ids) if (!/^\d+$/.test(id)) throw new PurgerError("USAGE", `bin item ids are numbers, found "${id}"`);
  if (action !== "list" && ids.length === 0 && !flags.all) {
    throw new PurgerError("USAGE", `purger bin ${action} needs item ids, or --all for every failed item`);
  }
  const config = await loadCliConfig(flags, io);
  const db = await connectDatabase(config, { log: io.log, cwd: io.cwd });
  try {
    if (action === "list") {
      const status = (flags.status ?? "failed") as BinItem["status"];
      const items = await listBinItems(db.pool, { status, ...(flags.kind ? { kind: flags.kind } : {}), limit: 1000 });
      if (flags.json) io.out(`${JSON.stringify({ items })}\n`);
      else if (items.length === 0) io.out(`no ${status} items\n`);
      else
        for (const i of items)
          io.out(
            `${i.id}\t${i.kind}\t${i.status}\tattempts ${i.attempts}/${i.maxAttempts}\t${JSON.stringify(i.payload)}${i.lastError ? `\t${i.lastError}` : ""}\n`,
          );
      return 0;
    }
    const selected = ids.length > 0 ? ids : undefined;
    const n = action === "retry" ? await retryBinItems(db.pool, config.worker.schema, selected) : await dropBinItems(db.pool, selected);
    io.out(`${action === "retry" ? "re-queued" : "dropped"} ${n} failed item${n === 1 ? "" : "s"}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
