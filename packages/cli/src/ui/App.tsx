/* @jsxRuntime automatic */
/** The live UI: the store's snapshots on the screen, the keys wired to the store. */
import { Screen } from "./Screen.js";
import { useKeys } from "./use-keys.js";
import { useTerminalSize } from "./use-terminal-size.js";
import { useTuiSnapshot } from "./use-tui-snapshot.js";
import type { TuiStore } from "./tui-store.js";

export interface AppProps {
  store: TuiStore;
  /** Fix the size (tests); default: the terminal's, following resizes. */
  columns?: number;
  rows?: number;
}

export function App({ store, columns, rows }: AppProps) {
  const snapshot = useTuiSnapshot(store);
  const interactive = useKeys(store);
  const size = useTerminalSize({ ...(columns !== undefined ? { columns } : {}), ...(rows !== undefined ? { rows } : {}) });
  return <Screen snapshot={snapshot} columns={size.columns} rows={size.rows} interactive={interactive} />;
}
