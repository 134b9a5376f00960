/**
 * Short, fixed-width texts for the terminal UI: counts, rates, durations.
 * Every function returns plain text; colour is the components' business.
 */

/** 950 → "950", 12_345 → "12,345", 1_234_567 → "1.23M", 12_345_678_901 → "12.3G". */
export function formatCount(n: number): string {
  const value = Math.max(0, Math.round(n));
  if (value < 1_000_000) return value.toLocaleString("en-US");
  if (value < 1_000_000_000) return `${trim(value / 1_000_000)}M`;
  return `${trim(value / 1_000_000_000)}G`;
}

/**
 * Done and total in one unit: "412,000/1,000,000" up to ten million, then
 * "12.34M/56.78M"; without a total, the count alone.
 */
export function formatProgress(done: number, total: number | null, short = false): string {
  if (short) return total === null ? formatShort(done) : `${formatShort(done)}/${formatShort(total)}`;
  if (total === null) return formatCount(done);
  if (total < 10_000_000) return `${Math.round(done).toLocaleString("en-US")}/${Math.round(total).toLocaleString("en-US")}`;
  const unit = total < 10_000_000_000 ? 1_000_000 : 1_000_000_000;
  const suffix = unit === 1_000_000 ? "M" : "G";
  return `${(done / unit).toFixed(2)}${suffix}/${(total / unit).toFixed(2)}${suffix}`;
}

/** 950 → "950", 41_234 → "41.2k", 412_345 → "412k", 1_234_567 → "1.23M". */
export function formatShort(n: number): string {
  const value = Math.max(0, Math.round(n));
  if (value < 1000) return String(value);
  if (value < 1_000_000) return `${trim(value / 1000)}k`;
  if (value < 1_000_000_000) return `${trim(value / 1_000_000)}M`;
  return `${trim(value / 1_000_000_000)}G`;
}

/** Items per second: 0.4 → "0.4/s", 812 → "812/s", 9_812 → "9,812/s", 123_456 → "123k/s". */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "0/s";
  if (perSecond < 10) return `${perSecond.toFixed(1)}/s`;
  if (perSecond < 100_000) return `${Math.round(perSecond).toLocaleString("en-US")}/s`;
  if (perSecond < 1_000_000) return `${Math.round(perSecond / 1000)}k/s`;
  return `${trim(perSecond / 1_000_000)}M/s`;
}

/** 420 → "0s", 5_400 → "5s", 75_000 → "1m15s", 3_725_000 → "1h02m", 2 days → "2d0h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** Percent done, or null when the total is unknown. */
export function percentOf(done: number, total: number | null): number | null {
  if (total === null) return null;
  if (total <= 0) return 100;
  return Math.min(100, (done / total) * 100);
}

/** "@purger/plugin-retention" → "retention", "purger-plugin-foo" → "foo", "./plugins/x.ts" → "x.ts". */
export function shortPluginName(name: string): string {
  const base = name.replace(/^@purger\/plugin-/, "").replace(/^(@[^/]+\/)?purger-plugin-/, "");
  return base.includes("/") ? (base.split("/").pop() ?? base) : base;
}

/** Cut a text to `width` columns, ending with "…" when it was longer. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (text.length <= width) return text;
  return width === 1 ? "…" : `${text.slice(0, width - 1)}…`;
}

/** `text` in exactly `width` columns: cut with "…" at the end (or, right-aligned, at the start) and padded. */
export function fit(text: string, width: number, align: "left" | "right" = "left"): string {
  if (width <= 0) return "";
  if (text.length > width) return align === "left" ? truncate(text, width) : width === 1 ? "…" : `…${text.slice(text.length - width + 1)}`;
  return align === "left" ? text.padEnd(width) : text.padStart(width);
}

function trim(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
