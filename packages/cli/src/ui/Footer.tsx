/* @jsxRuntime automatic */
/** The keys, where the logs go while the UI owns the terminal, and what is happening on the way out. */
import { memo } from "react";
import { Box, Text } from "ink";

export interface FooterProps {
  interactive: boolean;
  quitting: boolean;
  ended: boolean;
  logFile: string | null;
  notice: string | null;
  quitHint: string;
}

export const Footer = memo(function Footer({ interactive, quitting, ended, logFile, notice, quitHint }: FooterProps) {
  if (ended) {
    return logFile === null ? null : (
      <Box marginTop={1}>
        <Text dimColor wrap="truncate-middle">
          logs → {logFile}
        </Text>
      </Box>
    );
  }
  return (
    <Box flexDirection="column" marginTop={1}>
      {notice !== null && (
        <Text color="yellow" wrap="truncate-end">
          {notice}
        </Text>
      )}
      {quitting ? (
        <Text color="yellow">stopping: the batch in flight commits or rolls back…</Text>
      ) : (
        <Box flexWrap="wrap" columnGap={2}>
          {interactive ? (
            <Text>
              <Text bold>q</Text> {quitHint} · <Text bold>p</Text> pause/resume · <Text bold>↑↓</Text> select · <Text bold>enter</Text> last
              runs
            </Text>
          ) : (
            <Text>
              <Text bold>Ctrl-C</Text> {quitHint}
            </Text>
          )}
          {logFile !== null && (
            <Text dimColor wrap="truncate-middle">
              logs → {logFile}
            </Text>
          )}
        </Box>
      )}
    </Box>
  );
});
