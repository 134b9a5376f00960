/**
 * What decides a run: the plugin and its version, the resolved options, the
 * retention and the guard — not how fast it goes (batch size, timeout,
 * schedule). Stored with the run; a run is resumed only while its entry's
 * fingerprint is unchanged, otherwise it ends `superseded` and a new run
 * starts under the new config (test: packages/core/test/resume.test.ts).
 */
import { createHash } from "node:crypto";
import type { EntryConfig, Guard } from "../config/types.js";
import { formatDuration } from "../config/durations.js";

export interface RunFingerprint {
  plugin: string;
  version: string;
  retentionMs: number | null;
  guard: Guard | null;
  /**
   * sha256 of the options as canonical JSON: options may hold secrets (a webhook
   * token), which have no place in `purger.runs`.
   */
  options: string;
}

export function runFingerprint(entry: EntryConfig): RunFingerprint {
  return {
    plugin: entry.plugin.name,
    version: entry.plugin.version,
    retentionMs: entry.retentionMs,
    guard: entry.guard && (entry.guard.maxRows !== undefined || entry.guard.maxFraction !== undefined) ? { ...entry.guard } : null,
    options: createHash("sha256").update(canonicalJson(entry.options)).digest("hex"),
  };
}

/**
 * What differs between the fingerprint stored with a run and the entry's, one
 * phrase each; empty when the run may be resumed. A run without one (recorded
 * before fingerprints existed) cannot be shown to match, so it never does.
 */
export function fingerprintChanges(stored: unknown, current: RunFingerprint): string[] {
  if (!isFingerprint(stored)) return ["it has no record of the config it started with"];
  const changes: string[] = [];
  if (stored.plugin !== current.plugin || stored.version !== current.version) {
    changes.push(`plugin ${stored.plugin}@${stored.version} → ${current.plugin}@${current.version}`);
  }
  if (stored.retentionMs !== current.retentionMs) {
    changes.push(`retention ${retentionText(stored.retentionMs)} → ${retentionText(current.retentionMs)}`);
  }
  if (canonicalJson(stored.guard) !== canonicalJson(current.guard)) {
    changes.push(`guard ${guardText(stored.guard)} → ${guardText(current.guard)}`);
  }
  if (stored.options !== current.options) changes.push("options changed");
  return changes;
}

function isFingerprint(value: unknown): value is RunFingerprint {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.plugin === "string" && typeof v.version === "string" && typeof v.options === "string" && "retentionMs" in v && "guard" in v
  );
}

function retentionText(ms: number | null): string {
  return ms === null ? "none" : formatDuration(ms);
}

function guardText(guard: Guard | null): string {
  if (!guard) return "none";
  const parts: string[] = [];
  if (guard.maxRows !== undefined) parts.push(`maxRows ${guard.maxRows}`);
  if (guard.maxFraction !== undefined) parts.push(`maxFraction ${guard.maxFraction}`);
  return parts.length > 0 ? parts.join(", ") : "none";
}

/** JSON with object keys sorted at every level, so equal values give equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
