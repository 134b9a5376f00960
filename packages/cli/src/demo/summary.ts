/** The demo's closing words: a table per entry (items, rate, duration) and the bin, or one JSON object. */
import { formatTable } from "../format.js";
import { formatCount, formatDuration, formatRate } from "../ui/format.js";
import type { DemoSummary } from "./run-demo.js";

/** `--json`: `{ entries: [{ id, plugin, processed, durationMs, rate }], bin: { pending, failed }, durationMs, … }`. */
export function demoSummaryJson(summary: DemoSummary): string {
  return `${JSON.stringify({
    entries: summary.entries,
    bin: summary.bin,
    durationMs: summary.durationMs,
    setupMs: summary.setupMs,
    outcome: summary.outcome,
    failures: summary.failures,
    pendingSerials: summary.pendingSerials,
  })}\n`;
}

export function formatDemoSummary(summary: DemoSummary): string {
  const total = summary.entries.reduce((n, e) => n + e.processed, 0);
  const head = {
    done: `purger demo: every backlog is empty and the bin is drained — ${formatCount(total)} items in ${seconds(summary.durationMs)}`,
    interrupted: `purger demo: stopped after ${seconds(summary.durationMs)} — ${formatCount(total)} items so far`,
    timeout: `purger demo: gave up after ${seconds(summary.durationMs)} with work left — ${formatCount(total)} items`,
  }[summary.outcome];
  const table = formatTable(
    ["entry", "plugin", "items", "rate", "duration"],
    summary.entries.map((e) => [
      e.id,
      e.plugin,
      formatCount(e.processed),
      e.durationMs > 0 ? formatRate(e.rate) : "—",
      e.durationMs > 0 ? seconds(e.durationMs) : "—",
    ]),
  );
  const lines = [
    head,
    `(setting up — PostgreSQL, S3, seeding — took ${seconds(summary.setupMs)})`,
    "",
    table.trimEnd(),
    "",
    `bin: ${summary.bin.pending} pending, ${summary.bin.failed} failed`,
  ];
  if (summary.pendingSerials > 0) lines.push(`${summary.pendingSerials} certificates wait for their serial to be revoked`);
  for (const f of summary.failures) lines.push(`${f.id} failed: ${f.error}`);
  lines.push("", `the demo's purger.yaml (every first-party plugin): ${summary.file}`);
  return `${lines.join("\n")}\n`;
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms);
}
