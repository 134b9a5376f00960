/**
 * What the fleet's web server does when a team is deleted: in one
 * transaction with its own change (the team marked deleted), it puts into
 * purger's bin the team's blob prefix, every robot certificate and every
 * provisioning credential — through `purger.enqueue`, callable from any
 * language. A rollback would un-bin them too.
 */
import type pg from "pg";
import { DELETED_TEAM } from "./schema.js";

export interface TeamDeletion {
  team: number;
  /** Bin items put in by kind. */
  items: Record<string, number>;
}

export async function deleteTeam(
  pool: pg.Pool,
  kinds: { prefix: string | null; revoke: string | null; credential: string | null },
): Promise<TeamDeletion> {
  const team = DELETED_TEAM;
  const items: Record<string, number> = {};
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("UPDATE fleet.teams SET deleted_at = now() WHERE team_id = $1", [team]);
    if (kinds.prefix) {
      await client.query("SELECT purger.enqueue($1, jsonb_build_object('prefix', $2::text))", [kinds.prefix, `teams/${team}/`]);
      items[kinds.prefix] = 1;
    }
    if (kinds.credential) {
      const { rowCount } = await client.query(
        `SELECT purger.enqueue($1, jsonb_build_object('id', c.credential_id, 'reason', 'team deleted'))
           FROM fleet.credentials c JOIN fleet.certificates cert ON cert.certificate_id = c.robot_certificate_id
           JOIN fleet.robots r ON r.robot_id = cert.robot_id
          WHERE r.team_id = $2`,
        [kinds.credential, team],
      );
      items[kinds.credential] = rowCount ?? 0;
    }
    if (kinds.revoke) {
      const { rowCount } = await client.query(
        `SELECT purger.enqueue($1, jsonb_build_object('id', cert.certificate_id, 'reason', 'team deleted'))
           FROM fleet.certificates cert JOIN fleet.robots r ON r.robot_id = cert.robot_id
          WHERE r.team_id = $2`,
        [kinds.revoke, team],
      );
      items[kinds.revoke] = rowCount ?? 0;
    }
    await client.query("COMMIT");
    return { team, items };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** The robots of the deleted team download their pending certificates: serials appear, the certs sweep revokes them. */
export async function downloadPendingCertificates(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE fleet.certificates SET serial = upper(md5('late-serial' || certificate_id))
      WHERE serial IS NULL AND status = 'revoking'`,
  );
  return rowCount ?? 0;
}
