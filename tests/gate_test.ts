/**
 * db/gate.ts on the real database: one statement looks credentials up as they are now,
 * charges only the requests whose credential still holds as expected (exactly, all windows
 * or none), and reads the data versions.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import {
  createApiKey,
  createOpsToken,
  createSession,
  createUser,
  windowCount,
} from "./support/fixtures.ts";
import { type GateItem, runGate } from "../db/gate.ts";
import type { WindowCharge } from "../db/ratelimits.ts";
import { hashSecret } from "../lib/secrets.ts";

const tdb = await openTestDb();
const NOW = Date.now();
// The gate's statements go where the server sends them: on PostgreSQL, db/wire.ts.
const gateDb = tdb.db.gateConnection ?? tdb.db;

const minute = (subject: string, quota: number): WindowCharge => ({
  key: `test-minute:${subject}`,
  policy: { name: "test-minute", quota, windowSeconds: 60 },
});
const day = (subject: string, quota: number): WindowCharge => ({
  key: `test-day:${subject}`,
  policy: { name: "test-day", quota, windowSeconds: 86_400 },
});

const charged = (key: string) => windowCount(tdb.db, key);

async function sharpKey() {
  const user = await createUser(tdb.db, { tier: "sharp" });
  const raw = await createApiKey(tdb.db, user.id);
  return { user, hash: hashSecret(raw) };
}

Deno.test({ ...DB_TEST, name: "runGate() looks credentials up as they are now" }, async () => {
  await tdb.reset();
  const { user, hash } = await sharpKey();
  const ops = hashSecret(await createOpsToken(tdb.db, ["ops:read"]));
  const sessionId = await createSession(tdb.db, user.id, NOW);
  const lookup = (ref: GateItem["ref"]): GateItem => ({ ref, expect: null, charges: [] });
  const [key, session, token, unknown] = await runGate(gateDb, [
    lookup({ kind: "apiKey", hash }),
    lookup({ kind: "session", sessionId }),
    lookup({ kind: "opsToken", hash: ops }),
    lookup({ kind: "apiKey", hash: hashSecret("npl_nothing") }),
  ], NOW);
  assert.equal(key.found?.live, true);
  assert.equal(key.found?.userId, user.id);
  assert.equal(key.found?.tier, "sharp");
  assert.equal(session.found?.credentialId, sessionId);
  assert.equal(session.found?.userId, user.id);
  assert.deepEqual(token.found?.scopes, ["ops:read"]);
  assert.equal(token.found?.userId, null);
  assert.equal(unknown.found, null);
  assert.equal(unknown.verified, false);
  assert.equal(key.charge, null, "a lookup charges nothing");

  await tdb.db.query("update api_keys set revoked_at = now() where key_hash = $1", [hash]);
  await tdb.db.query("update sessions set revoked_at = now() where id = $1", [sessionId]);
  const [revoked, ended] = await runGate(gateDb, [
    lookup({ kind: "apiKey", hash }),
    lookup({ kind: "session", sessionId }),
  ], NOW);
  assert.equal(revoked.found?.live, false);
  assert.equal(ended.found?.live, false);
});

Deno.test(
  { ...DB_TEST, name: "runGate() charges a request only while its credential holds as expected" },
  async () => {
    await tdb.reset();
    const { user, hash } = await sharpKey();
    const charges = [minute(user.id, 100), day(user.id, 1000)];
    const ref = { kind: "apiKey" as const, hash };
    // The same request each time: this key, expected as the sharp user, charging both windows.
    const item = { ref, expect: { userId: user.id, tier: "sharp" as const }, charges };
    const check = async () => (await runGate(gateDb, [item], NOW))[0];
    const ok = await check();
    assert.equal(ok.verified, true);
    assert.equal(ok.charge?.admitted, true);
    assert.equal(await charged(charges[0].key), 1);
    assert.equal(await charged(charges[1].key), 1);

    // Downgraded since the caller last looked: not verified, nothing charged.
    await tdb.db.query("update users set tier = 'pro' where id = $1", [user.id]);
    const stale = await check();
    assert.equal(stale.verified, false);
    assert.equal(stale.found?.tier, "pro");
    assert.equal(stale.charge, null);
    assert.equal(await charged(charges[0].key), 1);

    // Disabled: found but not live, nothing charged.
    await tdb.db.query("update users set tier = 'sharp', disabled = true where id = $1", [
      user.id,
    ]);
    const disabled = await check();
    assert.equal(disabled.verified, false);
    assert.equal(disabled.found?.live, false);
    assert.equal(await charged(charges[0].key), 1);
  },
);

Deno.test(
  { ...DB_TEST, name: "runGate() admits exactly the room left, counting verified requests only" },
  async () => {
    await tdb.reset();
    const a = await sharpKey();
    const b = await sharpKey();
    const charges = [minute(a.user.id, 3), day(a.user.id, 1000)];
    const good: GateItem = {
      ref: { kind: "apiKey", hash: a.hash },
      expect: { userId: a.user.id, tier: "sharp" },
      charges,
    };
    // b's key claiming a's user: never verified, so it takes no room from a.
    const forged: GateItem = { ...good, ref: { kind: "apiKey", hash: b.hash } };
    const results = await runGate(gateDb, [good, forged, good, good, good, good], NOW);
    assert.deepEqual(results.map((r) => r.verified), [true, false, true, true, true, true]);
    assert.deepEqual(
      results.map((r) => r.charge?.admitted ?? null),
      [true, null, true, true, false, false],
    );
    assert.equal(await charged(charges[0].key), 3);
    assert.equal(await charged(charges[1].key), 3, "all windows or none");
    // A pre-verified (or anonymous) request is charged without a lookup.
    const [anon] = await runGate(gateDb, [{ ref: null, expect: null, charges }], NOW);
    assert.equal(anon.verified, true);
    assert.equal(anon.charge?.admitted, false);
  },
);

Deno.test(
  { ...DB_TEST, name: "runGate() reads the data versions in the same statement" },
  async () => {
    await tdb.reset();
    const [before] = await runGate(gateDb, [{ ref: null, expect: null, charges: [] }], NOW);
    assert.equal(typeof before.versions.picks, "number");
    await tdb.db.query(
      `insert into picks (id, game_date, player, team, opponent, market, line, side, odds)
     values ($1, '2026-05-27', 'A', 'BOS', 'NYK', 'points', 24.5, 'over', -110)`,
      [crypto.randomUUID()],
    );
    const [after] = await runGate(gateDb, [{ ref: null, expect: null, charges: [] }], NOW);
    assert.equal(after.versions.picks, before.versions.picks + 1);
  },
);

Deno.test(
  {
    ...DB_TEST,
    name: "gate_lookup() finds credentials by index, whatever the planner's statistics",
  },
  async () => {
    await tdb.reset();
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) keys.push((await sharpKey()).hash);
    const ops = hashSecret(await createOpsToken(tdb.db, ["ops:read"]));
    // pg_stat_xact_user_tables: this backend's scans not yet reported, read before and after
    // the call within one transaction (so on one connection).
    const scans = await tdb.db.transaction(async (tx) => {
      const count = () =>
        tx.query<{ relname: string; seq_scan: number; idx_scan: number; fetched: number }>(
          `select relname, seq_scan::int, idx_scan::int, idx_tup_fetch::int as fetched
             from pg_stat_xact_user_tables
            where relname in ('api_keys', 'users', 'sessions', 'ops_tokens') order by relname`,
        );
      const before = await count();
      await tx.query(
        "select * from gate_lookup($1::text[], $2::uuid[], $3::text[], $4::timestamptz)",
        [keys.slice(0, 3), [crypto.randomUUID()], [ops], new Date(NOW).toISOString()],
      );
      return (await count()).map((s, i) => ({
        relname: s.relname,
        seq_scan: s.seq_scan - before[i].seq_scan,
        idx_scan: s.idx_scan - before[i].idx_scan,
        fetched: s.fetched - before[i].fetched,
      }));
    });
    assert.deepEqual(scans.map((s) => [s.relname, s.seq_scan]), [
      ["api_keys", 0],
      ["ops_tokens", 0],
      ["sessions", 0],
      ["users", 0],
    ]);
    // Probes, not whole-index walks: only the rows asked for are read (3 keys and their
    // users, 1 ops token; the session does not exist).
    assert.deepEqual(scans.map((s) => [s.relname, s.fetched]), [
      ["api_keys", 3],
      ["ops_tokens", 1],
      ["sessions", 0],
      ["users", 3],
    ]);
    for (const s of scans) assert.ok(s.idx_scan > 0, `${s.relname}: no index scan`);
  },
);
