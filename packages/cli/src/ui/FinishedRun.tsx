/* @jsxRuntime automatic */
/** One finished run (or long bin item), printed once above the live area through Ink's <Static>. */
import { Text } from "ink";
import { formatCount, formatDuration, formatRate } from "./format.js";
import type { FinishedRun as FinishedRunData } from "./snapshot.js";

const MARK = {
  succeeded: { mark: "✔", color: "green" },
  failed: { mark: "✖", color: "red" },
  guarded: { mark: "⊘", color: "yellow" },
  interrupted: { mark: "■", color: "yellow" },
  superseded: { mark: "↻", color: "yellow" },
  cancelled: { mark: "■", color: "yellow" },
} as const;

export function FinishedRun({ run }: { run: FinishedRunData }) {
  const { mark, color } = MARK[run.status];
  const rate = run.durationMs > 0 ? (run.processed / run.durationMs) * 1000 : 0;
  const what = run.what === "run" ? run.entry : run.what;
  return (
    <Text wrap="truncate-end">
      <Text color={color}>{mark}</Text> <Text bold>{what}</Text> <Text color={color}>{run.status}</Text>
      {run.dryRun ? " (dry run)" : ""}: {formatCount(run.processed)} {run.dryRun ? "would be processed" : "processed"} in{" "}
      {formatDuration(run.durationMs)}
      <Text dimColor> ({formatRate(rate)})</Text>
      {run.detail ? <Text color={color}> {run.detail}</Text> : null}
    </Text>
  );
}
