/* @jsxRuntime automatic */
/** Every entry of the config, one row each (two lines each on a narrow terminal), the selected one marked. */
import { Box, Text } from "ink";
import { fit } from "./format.js";
import { EntryRow, showsClock } from "./EntryRow.js";
import type { RowLayout } from "./layout.js";
import type { EntryView, RemoteRun } from "./snapshot.js";

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
  const columns = [
    " ",
    fit("entry", layout.id),
    ...(layout.plugin > 0 ? [fit("plugin", layout.plugin)] : []),
    fit("state", layout.state),
    fit("progress", layout.bar),
    fit("done/total", layout.count, "right"),
    fit("rate", layout.rate, "right"),
    ...(layout.elapsed > 0 ? [fit("time", layout.elapsed, "right")] : []),
    fit("eta", layout.eta, "right"),
  ];
  return <Text dimColor>{columns.join(" ")}</Text>;
}
