/**
 * What decided a run (its config fingerprint: a run is resumed only while it
 * matches, else it ends superseded) and when its guard passed (a run resumed
 * without the mark counts again before any change).
 */
export const sql = `
ALTER TABLE purger.runs ADD COLUMN IF NOT EXISTS fingerprint jsonb;
ALTER TABLE purger.runs ADD COLUMN IF NOT EXISTS guard_passed_at timestamptz;
`;
