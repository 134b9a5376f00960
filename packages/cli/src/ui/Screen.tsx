/* @jsxRuntime automatic */
/** The whole screen for one snapshot: finished runs above (<Static>), then header, entries, panels, footer. */
import { useMemo } from "react";
import { Box, Static } from "ink";
import { Busy } from "./Busy.js";
import { BinPanel, binPanelHeight } from "./BinPanel.js";
import { ClusterPanel } from "./ClusterPanel.js";
import { EntryTable } from "./EntryTable.js";
import { FinishedRun } from "./FinishedRun.js";
import { Footer } from "./Footer.js";
import { Header } from "./Header.js";
import { rowLayout } from "./layout.js";
import { RunsPanel } from "./RunsPanel.js";
import type { TuiSnapshot } from "./snapshot.js";

export interface ScreenProps {
  snapshot: TuiSnapshot;
  columns: number;
  /** Terminal rows (undefined: no limit). */
  rows?: number | undefined;
  /** Keys are read (stdin is a terminal). */
  interactive: boolean;
  /**
   * Print finished runs above the live area (Ink's <Static>). Off for the
   * off-screen warm-up: Ink tracks the <Static> of one root at a time
   * (a module-level variable), and a second one would steal the live one's.
   * @defaultValue true
   */
  withFinished?: boolean;
}

/** Header (2–3 lines and a blank), a stage line (and its blank), footer (a blank and 1–2 lines). */
const STABLE_CHROME = 4 + 2 + 3;
/** Bin kinds assumed on screen when choosing the layout. */
const BIN_RESERVE = 5;

const QUIT_HINT = { once: "stop (the run is interrupted)", run: "quit (drain, then exit)", demo: "stop" } as const;

export function Screen({ snapshot, columns, rows, interactive, withFinished = true }: ScreenProps) {
  const { entries, bin } = snapshot;
  // The layout is chosen from what stays put (entries, kinds), not from what comes and goes
  // (a stage line, bin activity), so rows do not jump between one and two lines as work goes on.
  const chrome = STABLE_CHROME + (snapshot.runsPanel ? 4 + (snapshot.runsPanel.runs?.length ?? 1) : 0);
  const binLines = Math.min(binPanelHeight(bin, false), 2 + BIN_RESERVE);
  const details = entries.reduce((n, e) => n + (e.lastError ? 1 : 0), 0);
  const tight = rows !== undefined && chrome + binPanelHeight(bin, false) + entries.length + 1 + details >= rows;
  const ids = entries.map((e) => e.id).join("\n");
  const layout = useMemo(
    () => rowLayout({ columns, rows, ids: ids.split("\n"), detailLines: details, otherLines: chrome + binLines }),
    [columns, rows, ids, details, chrome, binLines],
  );
  return (
    <>
      {withFinished && <Static items={snapshot.finished}>{(run) => <FinishedRun key={run.key} run={run} />}</Static>}
      <Box flexDirection="column" width={layout.columns}>
        <Header
          mode={snapshot.mode}
          title={snapshot.title}
          database={snapshot.database}
          processId={snapshot.processId}
          concurrency={snapshot.concurrency}
          processes={snapshot.processes}
          uptimeSeconds={Math.floor((snapshot.now - snapshot.startedAt) / 1000)}
        />
        <Box marginTop={1}>
          <EntryTable entries={entries} remote={snapshot.remote} layout={layout} selected={snapshot.selected} now={snapshot.now} />
        </Box>
        {snapshot.stage !== null && (
          <Box marginTop={1}>
            <Busy label={` ${snapshot.stage}`} />
          </Box>
        )}
        {snapshot.runsPanel && <RunsPanel panel={snapshot.runsPanel} now={snapshot.now} />}
        <BinPanel bin={bin} columns={layout.columns} activeOnly={tight} />
        {snapshot.mode === "run" && <ClusterPanel remote={snapshot.remote} now={snapshot.now} columns={layout.columns} />}
        <Footer
          interactive={interactive}
          quitting={snapshot.quitting}
          ended={snapshot.ended}
          logFile={snapshot.logFile}
          notice={snapshot.notice}
          quitHint={QUIT_HINT[snapshot.mode]}
        />
      </Box>
    </>
  );
}
