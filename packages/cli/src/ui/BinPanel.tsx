/* @jsxRuntime automatic */
/** The bin: depth per kind (pending, oldest pending item, failed), and what this process handled. */
import { memo } from "react";
import { Box, Text } from "ink";
import { fit, formatCount, formatDuration } from "./format.js";
import type { BinKindView } from "./snapshot.js";

export interface BinPanelProps {
  bin: BinKindView[];
  columns: number;
  /** Leave out the kinds with nothing pending, failed or handled (a short screen, or many kinds). */
  activeOnly?: boolean;
}

/** Lines the panel takes. */
export function binPanelHeight(bin: BinKindView[], activeOnly: boolean): number {
  if (bin.length === 0) return 0;
  const shown = activeOnly || bin.length > MAX_IDLE_KINDS ? bin.filter(isActive).length : bin.length;
  return 2 + shown + (shown < bin.length ? 1 : 0);
}

function isActive(b: BinKindView): boolean {
  return b.pending > 0 || b.failed > 0 || b.handled > 0;
}

const NUMBER = 8;
/** With more kinds than this, the ones with nothing going on are summed up in one line. */
const MAX_IDLE_KINDS = 4;

export const BinPanel = memo(function BinPanel({ bin, columns, activeOnly = false }: BinPanelProps) {
  if (bin.length === 0) return null;
  const shown = activeOnly || bin.length > MAX_IDLE_KINDS ? bin.filter(isActive) : bin;
  const hidden = bin.length - shown.length;
  const empty = bin.every((b) => b.pending === 0 && b.failed === 0);
  const kind = Math.max(12, Math.min(32, columns - 4 * (NUMBER + 1) - 2));
  // One text line per kind: columns are padded spans, not boxes (layout nodes cost every frame).
  const cell = (text: string, color?: "red" | "yellow", dim = false) => (
    <Text color={color} dimColor={dim}>
      {` ${fit(text, NUMBER, "right")}`}
    </Text>
  );
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text>
        <Text bold>bin</Text>
        <Text
          dimColor
        >{`${fit(empty ? " · empty" : "", kind - 2)}${["pending", "oldest", "failed", "handled"].map((h) => ` ${fit(h, NUMBER, "right")}`).join("")}`}</Text>
      </Text>
      {shown.map((b) => (
        <Text key={b.kind}>
          <Text dimColor={b.pending === 0 && b.failed === 0}>{`  ${fit(b.kind, kind)}`}</Text>
          {cell(formatCount(b.pending), b.pending > 0 ? "yellow" : undefined, b.pending === 0)}
          {cell(b.oldestMs === null ? "—" : formatDuration(b.oldestMs), undefined, b.oldestMs === null)}
          {cell(formatCount(b.failed), b.failed > 0 ? "red" : undefined, b.failed === 0)}
          {cell(formatCount(b.handled), undefined, b.handled === 0)}
        </Text>
      ))}
      {hidden > 0 && (
        <Text dimColor>
          {"  "}
          {hidden} more kind{hidden === 1 ? "" : "s"}, empty
        </Text>
      )}
    </Box>
  );
});
