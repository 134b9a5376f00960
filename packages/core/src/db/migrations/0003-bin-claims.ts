/**
 * Bin workers: the handler holding an item (every write is fenced by it),
 * items parked for a kind no live worker knows, and what each process knows
 * and its pid namespace (a same-named host in another container is not "this host").
 */
export const sql = `
ALTER TABLE purger.bin ADD COLUMN IF NOT EXISTS claimed_by text;
ALTER TABLE purger.bin ADD COLUMN IF NOT EXISTS parked_at timestamptz;
CREATE INDEX IF NOT EXISTS bin_parked_idx ON purger.bin (kind) WHERE parked_at IS NOT NULL;
ALTER TABLE purger.processes ADD COLUMN IF NOT EXISTS kinds text[];
ALTER TABLE purger.processes ADD COLUMN IF NOT EXISTS pid_namespace text;
`;
