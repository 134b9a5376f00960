/**
 * The rate a row shows: items per second, smoothed exponentially over time
 * so that it neither jumps with each batch nor lags for minutes.
 */

/** Time constant of the rate's exponential smoothing. */
const RATE_TAU_MS = 3_000;
const RATE_WINDOW_MS = 250;

/** Where the rate was last measured from. */
export interface RateMark {
  at: number;
  done: number;
}

/**
 * Exponential smoothing over time: the rate since the last mark (at least
 * RATE_WINDOW_MS ago, so that bursts of quick batches count whole), weighted
 * by how long that was (time constant RATE_TAU_MS). The first update takes
 * the engine's own average.
 */
export function smooth(previous: number, mark: RateMark | null, now: number, done: number, average: number): [number, RateMark | null] {
  if (mark === null) return [average, { at: now, done }];
  const dt = now - mark.at;
  if (dt < RATE_WINDOW_MS) return [previous, mark];
  const instant = ((done - mark.done) / dt) * 1000;
  const alpha = 1 - Math.exp(-dt / RATE_TAU_MS);
  return [previous + alpha * (instant - previous), { at: now, done }];
}
