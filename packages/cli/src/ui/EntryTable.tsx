/* @jsxRuntime automatic */
/** Every entry of the config, one row each (two lines each on a narrow terminal), the selected one marked. */
import { Box, Text } from "ink";
import { EntryRow, showsClock } from "./EntryRow.js";
import type { RowLayout } from "./layout.js";
import type { EntryView, RemoteRun } from "./tui-store.js";

export interface EntryTableProps {
  entries: EntryView[];
  remote: RemoteRun[];
  layout: RowLayout;
  selected: number;
  now: number;
}

export function EntryTable({ entries, remote, layout, selected, now }: EntryTableProps) {
  return (
    <Box flexDirection="column">
      {layout.mode !== "stacked" && <HeaderRow layout={layout} />}
      {entries.map((entry, index) => (
        <EntryRow
          key={entry.id}
          entry={entry}
          layout={layout}
          selected={index === selected}
          now={showsClock(entry) ? now : 0}
          remote={remote.find((r) => r.entry === entry.id)}
        />
      ))}
    </Box>
  );
}

function HeaderRow({ layout }: { layout: RowLayout }) {
  const cell = (width: number, text: string, right = false) => (
    <Box width={width} flexShrink={0} justifyContent={right ? "flex-end" : "flex-start"}>
      <Text dimColor>{text}</Text>
    </Box>
  );
  return (
    <Box columnGap={1}>
      <Box width={1} />
      {cell(layout.id, "entry")}
      {layout.plugin > 0 && cell(layout.plugin, "plugin")}
      {cell(layout.state, "state")}
      {cell(layout.bar, "progress")}
      {cell(layout.count, "done/total", true)}
      {cell(layout.rate, "rate", true)}
      {layout.elapsed > 0 && cell(layout.elapsed, "time", true)}
      {cell(layout.eta, "eta", true)}
    </Box>
  );
}
