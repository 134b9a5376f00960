/** `purger demo`: written with the TUI issue; until then it says so. */
import { PurgerError } from "@purger/core";
import type { Io } from "../context.js";

export async function demoCommand(_flags: { json?: boolean; tui?: boolean; scale?: number }, _io: Io): Promise<number> {
  throw new PurgerError("USAGE", "purger demo is not available yet");
}
