/** Settings rows and a per-instance cache kept fresh by NOTIFY and a short poll. */
import type { Db, Queryable } from "./client.ts";
import { type SettingKey, SETTINGS } from "../lib/settings.ts";
import type { Logger } from "../lib/log.ts";
import { errorFields } from "../lib/log.ts";

const CHANNEL = "proplab_settings";

/** The stored overrides, key → value. */
export async function findSettingOverrides(q: Queryable): Promise<Map<string, unknown>> {
  const rows = await q.query<{ key: string; value: unknown }>("select key, value from settings");
  return new Map(rows.map((r) => [r.key, r.value]));
}

/** Writes a setting and its audit row in one transaction; returns the previous value. */
export async function upsertSetting(
  db: Db,
  key: SettingKey,
  value: unknown,
  actor: string,
): Promise<unknown> {
  const old = await db.transaction(async (tx) => {
    const prev = await tx.query<{ value: unknown }>(
      "select value from settings where key = $1 for update",
      [key],
    );
    const json = JSON.stringify(value);
    // `$n::text::jsonb`, not `$n::jsonb`: postgres.js JSON-encodes a string bound to a jsonb
    // parameter a second time (120 would be stored as "120"); PGlite does not.
    await tx.query(
      `insert into settings (key, value, updated_by) values ($1, $2::text::jsonb, $3)
       on conflict (key) do update set value = excluded.value, updated_at = now(),
         updated_by = excluded.updated_by`,
      [key, json, actor],
    );
    const oldValue = prev.length ? prev[0].value : null;
    await tx.query(
      `insert into settings_audit (key, old_value, new_value, changed_by)
       values ($1, $2::text::jsonb, $3::text::jsonb, $4)`,
      [key, oldValue === null ? null : JSON.stringify(oldValue), json, actor],
    );
    await tx.query("select pg_notify($1, $2)", [CHANNEL, key]);
    return prev.length ? prev[0].value : SETTINGS[key].default;
  });
  return old;
}

// Values are JSON; the same text is the same value.
function sameValues(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) {
    if (!b.has(key) || JSON.stringify(b.get(key)) !== JSON.stringify(value)) return false;
  }
  return true;
}

/** Run-time settings as every instance sees them, refreshed within seconds of a change. */
export interface Settings {
  get<K extends SettingKey>(key: K): typeof SETTINGS[K]["default"];
  /** Counts the changes seen: while it stays the same, so does every `get`. */
  readonly version: number;
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

/** Loads settings and keeps them fresh: NOTIFY for speed, a poll every `pollMs` as a backstop. */
export async function createSettings(db: Db, log: Logger, pollMs = 2000): Promise<Settings> {
  let values = new Map<string, unknown>();
  let version = 0;
  const refresh = async () => {
    const fresh = await findSettingOverrides(db);
    if (!sameValues(values, fresh)) version++;
    values = fresh;
  };
  await refresh();
  const safeRefresh = () =>
    refresh().catch((err) => log.debug("settings refresh failed", errorFields(err)));
  const unlisten = await db.listen(CHANNEL, () => void safeRefresh()).catch(() => null);
  const timer = setInterval(safeRefresh, pollMs);
  return {
    get(key) {
      return (values.has(key) ? values.get(key) : SETTINGS[key].default) as never;
    },
    get version() {
      return version;
    },
    refresh,
    async stop() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
    },
  };
}
