/* @jsxRuntime automatic */
/**
 * Render a representative screen a few times off-screen while the command
 * connects to its database: the first frames of a React/Ink tree run cold
 * (JIT, first calls) and would otherwise cost the run's first seconds.
 */
import { renderToString } from "ink";
// Without <Static>: see ScreenProps.withFinished.
import { Screen } from "./Screen.js";
import type { EntryView, TuiSnapshot } from "./snapshot.js";

export function warmUp(columns: number, rounds = 3): void {
  const now = Date.now();
  const entry = (id: string, patch: Partial<EntryView>): EntryView => ({
    id,
    plugin: "retention",
    state: { kind: "running" },
    pause: "no",
    done: 1_000,
    total: 10_000,
    rate: 500,
    startedAt: now - 2_000,
    durationMs: null,
    last: null,
    lastError: null,
    binItem: null,
    ...patch,
  });
  const snapshot: TuiSnapshot = {
    mode: "run",
    title: "warm-up",
    database: "postgres://localhost/warm-up",
    processId: "warm-up",
    startedAt: now - 5_000,
    now,
    concurrency: 1,
    processes: 1,
    entries: [
      entry("a", {}),
      entry("b", { total: null }),
      entry("c", { state: { kind: "scheduled", at: now + 60_000 }, last: { processed: 10, durationMs: 100 } }),
      entry("d", { state: { kind: "finished", status: "failed" }, durationMs: 1_000, lastError: "warm-up" }),
    ],
    bin: [{ kind: "a.prefix", pending: 1, failed: 0, oldestMs: 1_000, handled: 0, failedHere: 0 }],
    remote: [],
    finished: [],
    selected: 0,
    runsPanel: null,
    quitting: false,
    ended: false,
    logFile: ".purger/purger.log",
    notice: null,
    stage: null,
  };
  for (let i = 0; i < rounds; i++) {
    renderToString(
      <Screen snapshot={{ ...snapshot, now: now + i * 200 }} columns={columns} rows={undefined} interactive withFinished={false} />,
      {
        columns,
      },
    );
  }
}
