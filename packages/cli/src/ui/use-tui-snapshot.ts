/** The store's latest snapshot; the component re-renders when the store publishes (≤ 10 times a second). */
import { useSyncExternalStore } from "react";
import type { TuiSnapshot, TuiStore } from "./tui-store.js";

export function useTuiSnapshot(store: TuiStore): TuiSnapshot {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
