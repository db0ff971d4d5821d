/** Bench fixtures: sharp users with API keys, today's picks, and limits that do not trip. */
import type { Db } from "../db/client.ts";
import { upsertSetting } from "../db/settings.ts";
import type { SettingKey } from "../lib/settings.ts";
import { dateInZone } from "../lib/dates.ts";
import { createApiKey, createUser, type TestUser } from "../tests/support/fixtures.ts";

/** What the scenarios send: one hot user, and one key for each of many users. */
export interface Seeded {
  hot: TestUser;
  hotKey: string;
  keys: string[];
}

/** Sets every rate-limit quota high enough not to trip (limits are still charged exactly). */
export async function setHighLimits(db: Db): Promise<void> {
  const keys: SettingKey[] = [
    "ratelimit.sharp.perMinute",
    "ratelimit.sharp.perDay",
    "ratelimit.login.perEmailIp",
    "ratelimit.login.perIp",
  ];
  for (const key of keys) await upsertSetting(db, key, 1_000_000_000, "bench");
  await upsertSetting(db, "data.timezone", "UTC", "bench");
}

/** Inserts `users` sharp users with a key each, plus 20 picks for today (UTC). */
export async function seed(db: Db, users: number): Promise<Seeded> {
  await setHighLimits(db);
  const hot = await createUser(db, { tier: "sharp" });
  const hotKey = await createApiKey(db, hot.id);
  const keys: string[] = [];
  for (let i = 0; i < users; i++) {
    const u = await createUser(db, { tier: "sharp" });
    keys.push(await createApiKey(db, u.id));
  }
  const today = dateInZone(Date.now(), "UTC");
  await db.query("delete from picks where game_date = $1::date", [today]);
  for (let i = 0; i < 20; i++) {
    await db.query(
      `insert into picks (id, game_date, player, team, opponent, market, line, side, odds)
       values ($1, $2::date, $3, 'BOS', 'NYK', 'points', 24.5, 'over', -110)`,
      [crypto.randomUUID(), today, `Player ${i}`],
    );
  }
  // Statistics as autovacuum would have them a minute later: the bench measures steady state.
  await db.exec("analyze");
  return { hot, hotKey, keys };
}

/** A wrk Lua script sending each request with the next of `keys` in `X-API-Key`. */
export function rotatingKeysScript(keys: readonly string[]): string {
  return `local keys = {${keys.map((k) => `"${k}"`).join(",")}}
local i = math.random(#keys)
request = function()
  i = (i % #keys) + 1
  return wrk.format("GET", nil, {["X-API-Key"] = keys[i]})
end
`;
}
