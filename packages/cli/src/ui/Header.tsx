/* @jsxRuntime automatic */
/** The header: what runs, where (database, process), for how long, and the cluster around it. */
import { memo } from "react";
import { Box, Text } from "ink";
import { Badge } from "@inkjs/ui";
import { formatDuration } from "./format.js";
import type { TuiSnapshot } from "./snapshot.js";

export type HeaderProps = Pick<TuiSnapshot, "mode" | "title" | "database" | "processId" | "concurrency" | "processes"> & {
  /** Whole seconds since the command started (the header changes once a second at most). */
  uptimeSeconds: number;
};

export const Header = memo(function Header(snapshot: HeaderProps) {
  const { processes } = snapshot;
  return (
    <Box flexDirection="column">
      <Box columnGap={1}>
        <Badge color="cyan">{snapshot.mode}</Badge>
        <Text bold>purger {snapshot.title}</Text>
        <Text dimColor>· up {formatDuration(snapshot.uptimeSeconds * 1000)}</Text>
      </Box>
      <Box flexWrap="wrap" columnGap={2}>
        <Text wrap="truncate-middle">
          <Text dimColor>db </Text>
          {snapshot.database}
        </Text>
        <Text>
          <Text dimColor>process </Text>
          {snapshot.processId}
        </Text>
        <Text>
          <Text dimColor>concurrency </Text>
          {snapshot.concurrency}
        </Text>
        <Text>
          <Text dimColor>cluster </Text>
          {processes === null ? "…" : `${processes} process${processes === 1 ? "" : "es"}`}
        </Text>
      </Box>
    </Box>
  );
});
