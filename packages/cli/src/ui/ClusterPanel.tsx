/* @jsxRuntime automatic */
/** Runs of other purger processes, read from the database (`clusterStatus`). */
import { Box, Text } from "ink";
import { formatCount, formatDuration, truncate } from "./format.js";
import type { RemoteRun } from "./snapshot.js";

export interface ClusterPanelProps {
  remote: RemoteRun[];
  now: number;
  columns: number;
}

export function ClusterPanel({ remote, now, columns }: ClusterPanelProps) {
  if (remote.length === 0) return null;
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text bold>elsewhere in the cluster</Text>
      {remote.map((r) => {
        const count = r.total === null ? formatCount(r.processed) : `${formatCount(r.processed)}/${formatCount(r.total)}`;
        const line = `${r.entry}  ${count}  for ${formatDuration(now - r.startedAt)}  on ${r.processId}`;
        return (
          <Text key={`${r.entry}@${r.processId}`} wrap="truncate-end">
            {"  "}
            {truncate(line, columns - 2)}
          </Text>
        );
      })}
    </Box>
  );
}
