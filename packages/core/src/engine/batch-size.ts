/**
 * `batchSize: auto`: tune the batch to a time target, not a row count (as
 * GitLab's batch optimizer does), aiming at ~90 % of the target.
 */
import type { AutoBatchSize } from "../config/types.js";

const MIN_BATCH = 100;
const MAX_BATCH = 200_000;

export function initialBatchSize(setting: number | AutoBatchSize): number {
  return typeof setting === "number" ? setting : setting.initial;
}

/** The next batch size after a batch of `processed` items took `batchMs`. */
export function adaptBatchSize(setting: number | AutoBatchSize, current: number, processed: number, batchMs: number): number {
  if (typeof setting === "number") return setting;
  // A short batch says nothing about speed (the end of the backlog, or skipped locked rows).
  if (processed < current || batchMs <= 0) return current;
  const ideal = (current * (setting.targetMs * 0.9)) / batchMs;
  // Grow at most 2× and shrink at most 4× per step, so one slow batch (a checkpoint, a vacuum) does not swing it.
  const next = Math.min(current * 2, Math.max(current / 4, ideal));
  return Math.round(Math.min(MAX_BATCH, Math.max(MIN_BATCH, next)));
}
