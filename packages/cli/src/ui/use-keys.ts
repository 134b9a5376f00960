/**
 * The keys: `q` / Ctrl-C quit gracefully (in raw mode the terminal sends
 * Ctrl-C as input, not SIGINT, so it is handled here), `p` pauses or resumes
 * the selected entry, ↑/↓ select, `enter` opens the last runs, `esc` closes.
 */
import { useInput, useStdin } from "ink";
import type { TuiStore } from "./tui-store.js";

/** Returns whether keys are read (stdin is a terminal that supports raw mode). */
export function useKeys(store: TuiStore): boolean {
  const { isRawModeSupported } = useStdin();
  useInput(
    (input, key) => {
      if (input === "q" || (key.ctrl && input === "c")) store.quit();
      else if (input === "p" || input === " ") store.togglePause();
      else if (key.upArrow || input === "k") store.select(-1);
      else if (key.downArrow || input === "j") store.select(1);
      else if (key.return) store.toggleRuns();
      else if (key.escape) store.closePanel();
    },
    // `stdin.isTTY` is undefined (not false) on a pipe.
    { isActive: isRawModeSupported === true },
  );
  return isRawModeSupported === true;
}
