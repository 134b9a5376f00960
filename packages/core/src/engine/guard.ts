/**
 * Guards (README, "How the engine runs entries"): before its first change a run counts exactly what
 * qualifies, capped, and stops when a limit is passed.
 */
import type { Guard } from "../config/types.js";
import { PurgerError } from "../errors.js";
import type { AnyPlugin, RunContext } from "../plugin.js";

/** Returns why the run is guarded (which guard and the figures), or null when it may proceed. */
export async function checkGuard(plugin: AnyPlugin, ctx: RunContext<unknown, unknown>, guard: Guard): Promise<string | null> {
  if (!plugin.count) {
    throw new PurgerError("CONFIG", `plugin ${plugin.name} cannot count what qualifies, so entry "${ctx.entry.id}" cannot have a guard`, {
      hint: "remove `guard:` from this entry",
    });
  }
  let all: number | null = null;
  let limit = Number.POSITIVE_INFINITY;
  if (guard.maxRows !== undefined) limit = guard.maxRows + 1;
  if (guard.maxFraction !== undefined) {
    if (!plugin.countAll) {
      throw new PurgerError(
        "CONFIG",
        `plugin ${plugin.name} cannot count all items, so entry "${ctx.entry.id}" cannot use guard.maxFraction`,
        {
          hint: "use guard.maxRows instead",
        },
      );
    }
    all = await plugin.countAll(ctx);
    limit = Math.min(limit, Math.floor(guard.maxFraction * all) + 1);
  }
  const qualifying = await plugin.count(ctx, limit);
  if (guard.maxRows !== undefined && qualifying > guard.maxRows) {
    return `guard.maxRows: more than ${guard.maxRows} items qualify (counted ${qualifying}, stopped counting at ${limit}); nothing was changed`;
  }
  if (guard.maxFraction !== undefined && all !== null && all > 0 && qualifying / all > guard.maxFraction) {
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    return `guard.maxFraction: at least ${qualifying} of ${all} items (${pct(qualifying / all)}) qualify, more than the limit of ${pct(guard.maxFraction)}; nothing was changed`;
  }
  return null;
}
