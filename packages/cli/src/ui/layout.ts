/**
 * Column widths of the entry table for a terminal's size:
 *
 * - `inline`: one line per entry under a header row, every column (wide terminals);
 * - `stacked`: two lines per entry — id, plugin and state, then the figures
 *   (80 columns, when the rows allow it);
 * - `compact`: one line per entry without the plugin and elapsed columns,
 *   shorter state texts and figures (80 columns with many entries, so the UI
 *   never outgrows the screen, which would make Ink redraw it whole).
 */

export type RowMode = "inline" | "stacked" | "compact";

export interface RowLayout {
  mode: RowMode;
  columns: number;
  id: number;
  /** 0 when hidden. */
  plugin: number;
  state: number;
  /** The progress bar (or spinner) column. */
  bar: number;
  count: number;
  rate: number;
  /** 0 when hidden. */
  elapsed: number;
  eta: number;
}

export interface LayoutInput {
  columns: number;
  /** Terminal rows; undefined: no limit. */
  rows?: number | undefined;
  ids: string[];
  /** Lines the entries take besides their rows (error lines). */
  detailLines?: number;
  /** Lines of everything else on screen (header, bin, footer). */
  otherLines?: number;
}

const MARKER = 2;
const PLUGIN = 10;
const STATE = 18;
const SHORT_STATE = 12;
const COUNT = 19;
const SHORT_COUNT = 11;
const RATE = 9;
const ELAPSED = 6;
const ETA = 6;
const MIN_BAR = 12;
const MIN_ID = 8;
const MAX_ID = 28;

export function rowLayout(input: LayoutInput): RowLayout {
  const width = Math.max(40, input.columns);
  const longest = Math.min(MAX_ID, Math.max(MIN_ID, ...input.ids.map((id) => id.length)));
  const figures = { count: COUNT, rate: RATE, elapsed: ELAPSED, eta: ETA };
  // Nine columns, eight gaps of one (the marker's box is 1 wide plus its gap).
  const inlineBar = width - (MARKER + PLUGIN + STATE + COUNT + RATE + ELAPSED + ETA + 7) - longest;
  if (inlineBar >= MIN_BAR) {
    return { mode: "inline", columns: width, id: longest, plugin: PLUGIN, state: STATE, bar: inlineBar, ...figures };
  }
  const entries = input.ids.length;
  const stackedHeight = 2 * entries + (input.detailLines ?? 0) + (input.otherLines ?? 0);
  if (input.rows === undefined || stackedHeight < input.rows) {
    const id = Math.min(longest, width - MARKER - PLUGIN - STATE - 2);
    const bar = Math.max(6, width - MARKER - COUNT - RATE - ELAPSED - ETA - 4);
    return { mode: "stacked", columns: width, id, plugin: PLUGIN, state: STATE, bar, ...figures };
  }
  // Marker, id, state, bar, count, rate, eta: six gaps.
  const rest = width - (MARKER + SHORT_STATE + SHORT_COUNT + RATE + ETA + 5);
  const id = Math.max(MIN_ID, Math.min(longest, Math.floor(rest * 0.55)));
  return {
    mode: "compact",
    columns: width,
    id,
    plugin: 0,
    state: SHORT_STATE,
    bar: Math.max(4, rest - id),
    count: SHORT_COUNT,
    rate: RATE,
    elapsed: 0,
    eta: ETA,
  };
}
