/** Who changed which setting when: the stored rows' metadata and the audit trail. */
import type { Queryable } from "./client.ts";
import type { Cursor } from "../lib/pagination.ts";

/** When and by whom each overridden setting was last written, by key. */
export async function findSettingUpdates(
  q: Queryable,
): Promise<Map<string, { updatedAt: Date; updatedBy: string }>> {
  const rows = await q.query<{ key: string; updated_at: Date; updated_by: string }>(
    "select key, updated_at, updated_by from settings",
  );
  return new Map(
    rows.map((r) => [r.key, { updatedAt: new Date(r.updated_at), updatedBy: r.updated_by }]),
  );
}

/** One audited change. */
export interface SettingAuditEntry {
  id: string;
  key: string;
  oldValue: unknown;
  newValue: unknown;
  changedBy: string;
  changedAt: Date;
}

/** Audited changes, newest first, strictly older than `cursor` (ids compared as numbers). */
export async function findSettingAudit(
  q: Queryable,
  cursor: Cursor | null,
  limit: number,
  key: string | null,
): Promise<SettingAuditEntry[]> {
  const rows = await q.query<Record<string, unknown>>(
    `select id::text as id, key, old_value, new_value, changed_by,
            date_trunc('milliseconds', changed_at) as changed_at
       from settings_audit
      where ($1::text is null or key = $1)
        and ($2::timestamptz is null
             or (date_trunc('milliseconds', changed_at), id) < ($2::timestamptz, $3::bigint))
      order by date_trunc('milliseconds', changed_at) desc, id desc
      limit $4`,
    [key, cursor?.at ?? null, cursor?.id ?? null, limit],
  );
  return rows.map((r) => ({
    id: String(r.id),
    key: String(r.key),
    oldValue: r.old_value ?? null,
    newValue: r.new_value,
    changedBy: String(r.changed_by),
    changedAt: new Date(r.changed_at as Date),
  }));
}
