/* @jsxRuntime automatic */
/** The last runs of the selected entry (`enter`), from the run store. */
import { Box, Text } from "ink";
import { Busy } from "./Busy.js";
import { formatCount, formatDuration } from "./format.js";
import type { RunsPanel as RunsPanelState } from "./snapshot.js";

export interface RunsPanelProps {
  panel: RunsPanelState;
  now: number;
}

const STATUS_COLOR = {
  succeeded: "green",
  failed: "red",
  guarded: "yellow",
  interrupted: "yellow",
  superseded: "yellow",
  cancelled: "yellow",
  running: "cyan",
} as const;

export function RunsPanel({ panel, now }: RunsPanelProps) {
  return (
    <Box flexDirection="column" marginTop={1} borderStyle="round" borderDimColor paddingX={1}>
      <Text>
        <Text bold>last runs of {panel.entry}</Text>
        <Text dimColor> · enter or esc closes</Text>
      </Text>
      {panel.error !== null ? (
        <Text color="red">{panel.error}</Text>
      ) : panel.runs === null ? (
        <Busy label=" loading" />
      ) : panel.runs.length === 0 ? (
        <Text dimColor>no runs yet</Text>
      ) : (
        panel.runs.map((run) => (
          <Box key={run.id} columnGap={1}>
            <Box width={7} flexShrink={0}>
              <Text dimColor>#{run.id}</Text>
            </Box>
            <Box width={12} flexShrink={0}>
              <Text color={STATUS_COLOR[run.status]}>{run.status}</Text>
            </Box>
            <Box width={9} flexShrink={0}>
              <Text dimColor>{run.dryRun ? "dry run" : run.trigger}</Text>
            </Box>
            <Box width={10} flexShrink={0} justifyContent="flex-end">
              <Text>{formatCount(run.processed)}</Text>
            </Box>
            <Box width={7} flexShrink={0} justifyContent="flex-end">
              <Text>{run.durationMs === null ? "" : formatDuration(run.durationMs)}</Text>
            </Box>
            <Box width={9} flexShrink={0} justifyContent="flex-end">
              <Text dimColor>{formatDuration(now - run.startedAt.getTime())} ago</Text>
            </Box>
            <Text color="red" wrap="truncate-end">
              {run.error ?? run.guard ?? ""}
            </Text>
          </Box>
        ))
      )}
    </Box>
  );
}
