/**
 * The gate's credential memo on the real database (migration 0014, db/gate.ts): a credential
 * found once is answered from memory while the credentials' epoch stands still, and every
 * change the lookup reads moves the epoch, so the next statement sees it as a lookup would.
 */
import assert from "node:assert/strict";
import { ON_POSTGRES, openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import {
  createApiKey,
  createOpsToken,
  createSession,
  createUser,
  windowCount,
} from "./support/fixtures.ts";
import { type GateItem, type GateMemo, runGate } from "../db/gate.ts";
import type { WindowCharge } from "../db/ratelimits.ts";
import { createCredentialMemo } from "../lib/credential_memo.ts";
import { hashSecret } from "../lib/secrets.ts";
import type { Queryable } from "../db/client.ts";

const tdb = await openTestDb();
const NOW = Date.now();
const gateDb = tdb.db.gateConnection ?? tdb.db;

const epoch = async (q: Queryable = tdb.db) =>
  (await q.query<{ e: string }>("select epoch::text as e from credential_epoch"))[0]?.e ?? null;

/** A sharp user with an API key, a session and an ops token. */
async function credentials(opts: { keyExpiresAt?: Date } = {}) {
  const user = await createUser(tdb.db, { tier: "sharp" });
  const key = hashSecret(await createApiKey(tdb.db, user.id, { expiresAt: opts.keyExpiresAt }));
  const token = hashSecret(await createOpsToken(tdb.db, ["ops:read"]));
  const sessionId = await createSession(tdb.db, user.id, NOW);
  return { user, key, token, sessionId };
}

const lookup = (ref: GateItem["ref"]): GateItem => ({ ref, expect: null, charges: [] });

/** The key as a data request sends it: expected as the sharp user, charging a minute window. */
function charging(userId: string, hash: string): GateItem {
  const charge: WindowCharge = {
    key: `memo-minute:${userId}`,
    policy: { name: "memo-minute", quota: 100, windowSeconds: 60 },
  };
  return { ref: { kind: "apiKey", hash }, expect: { userId, tier: "sharp" }, charges: [charge] };
}

/** Changes rows without firing triggers, as nothing in proplab can: to see what the memo serves. */
async function behindTheTriggers(sql: string, params: unknown[]) {
  await tdb.db.transaction(async (tx) => {
    await tx.query("set local session_replication_role = replica");
    await tx.query(sql, params);
  });
}

Deno.test(
  {
    ...DB_TEST,
    name: "a remembered credential is answered without a lookup until the epoch moves",
  },
  async () => {
    await tdb.reset();
    const { user, key } = await credentials();
    const memo: GateMemo = createCredentialMemo();
    const [first] = await runGate(gateDb, [lookup({ kind: "apiKey", hash: key })], NOW, memo);
    assert.equal(first.found?.live, true);
    assert.equal(memo.epoch, await epoch());

    // Revoked without moving the epoch: a statement with the memo does not look the key up
    // again (it still answers live, for both kinds of statement); one without it does.
    await behindTheTriggers("update api_keys set revoked_at = now() where key_hash = $1", [key]);
    const [remembered] = await runGate(gateDb, [lookup({ kind: "apiKey", hash: key })], NOW, memo);
    assert.equal(remembered.found?.live, true);
    const [charged] = await runGate(gateDb, [charging(user.id, key)], NOW, memo);
    assert.equal(charged.verified, true);
    assert.equal(charged.charge?.admitted, true);
    const [looked] = await runGate(gateDb, [lookup({ kind: "apiKey", hash: key })], NOW);
    assert.equal(looked.found?.live, false);

    // Any change that moves the epoch (here another user's tier) sends it to the lookup.
    const other = await createUser(tdb.db, { tier: "free" });
    await tdb.db.query("update users set tier = 'pro' where id = $1", [other.id]);
    const [seen] = await runGate(gateDb, [charging(user.id, key)], NOW, memo);
    assert.equal(seen.verified, false);
    assert.equal(seen.found?.live, false);
    assert.equal(seen.charge, null);
    assert.equal(await windowCount(tdb.db, `memo-minute:${user.id}`), 1);
    assert.equal(memo.epoch, await epoch());
  },
);

Deno.test(
  { ...DB_TEST, name: "every change the lookup reads moves the credentials' epoch; use does not" },
  async () => {
    type Creds = Awaited<ReturnType<typeof credentials>>;
    const cases: [string, boolean, (c: Creds) => [string, unknown[]]][] = [
      [
        "revoke a key",
        true,
        (c) => ["update api_keys set revoked_at = now() where key_hash = $1", [c.key]],
      ],
      [
        "expire a key",
        true,
        (c) => ["update api_keys set expires_at = now() where key_hash = $1", [c.key]],
      ],
      ["delete a key", true, (c) => ["delete from api_keys where key_hash = $1", [c.key]]],
      [
        "revoke a session",
        true,
        (c) => ["update sessions set revoked_at = now() where id = $1", [c.sessionId]],
      ],
      ["delete a session", true, (c) => ["delete from sessions where id = $1", [c.sessionId]]],
      [
        "revoke an ops token",
        true,
        (c) => ["update ops_tokens set revoked_at = now() where token_hash = $1", [c.token]],
      ],
      [
        "change a token's scopes",
        true,
        (c) => ["update ops_tokens set scopes = '{ops:admin}' where token_hash = $1", [c.token]],
      ],
      [
        "expire an ops token",
        true,
        (c) => ["update ops_tokens set expires_at = now() where token_hash = $1", [c.token]],
      ],
      [
        "delete an ops token",
        true,
        (c) => ["delete from ops_tokens where token_hash = $1", [c.token]],
      ],
      ["change a tier", true, (c) => ["update users set tier = 'pro' where id = $1", [c.user.id]]],
      [
        "disable a user",
        true,
        (c) => ["update users set disabled = true where id = $1", [c.user.id]],
      ],
      ["delete a user", true, (c) => ["delete from users where id = $1", [c.user.id]]],
      ["truncate the keys", true, () => ["truncate api_keys", []]],
      [
        "use a key",
        false,
        (c) => ["update api_keys set last_used_at = now() where key_hash = $1", [c.key]],
      ],
      [
        "use an ops token",
        false,
        (c) => ["update ops_tokens set last_used_at = now() where token_hash = $1", [c.token]],
      ],
      [
        "change a password",
        false,
        (
          c,
        ) => ["update users set password_hash = 'x', updated_at = now() where id = $1", [
          c.user.id,
        ]],
      ],
      [
        "set a tier to what it is",
        false,
        (c) => ["update users set tier = 'sharp' where id = $1", [c.user.id]],
      ],
      [
        "add a key",
        false,
        (
          c,
        ) => [
          "insert into api_keys (id, user_id, name, prefix, key_hash, created_at) values (gen_random_uuid(), $1, 'n', 'p', 'h', now())",
          [c.user.id],
        ],
      ],
    ];
    for (const [name, moves, change] of cases) {
      await tdb.reset();
      const c = await credentials();
      const before = await epoch();
      const [sql, params] = change(c);
      await tdb.db.query(sql, params);
      const after = await epoch();
      assert.ok(after !== null, `${name}: the epoch is there`);
      assert.equal(after !== before, moves, `${name}: ${moves ? "moves" : "keeps"} the epoch`);
    }
  },
);

Deno.test(
  { ...DB_TEST, name: "with a memo, each statement still sees revocations, downgrades and expiry" },
  async () => {
    const cases: [string, (c: Awaited<ReturnType<typeof credentials>>) => Promise<unknown>][] = [
      [
        "revoked key",
        (c) => tdb.db.query("update api_keys set revoked_at = now() where key_hash = $1", [c.key]),
      ],
      [
        "disabled user",
        (c) => tdb.db.query("update users set disabled = true where id = $1", [c.user.id]),
      ],
      [
        "downgraded user",
        (c) => tdb.db.query("update users set tier = 'pro' where id = $1", [c.user.id]),
      ],
      ["deleted user", (c) => tdb.db.query("delete from users where id = $1", [c.user.id])],
    ];
    for (const [name, change] of cases) {
      await tdb.reset();
      const c = await credentials();
      const memo: GateMemo = createCredentialMemo();
      const items = [charging(c.user.id, c.key)];
      assert.equal((await runGate(gateDb, items, NOW, memo))[0].verified, true, name);
      assert.equal((await runGate(gateDb, items, NOW, memo))[0].verified, true, `${name}: memo`);
      await change(c);
      const [charge] = await runGate(gateDb, items, NOW, memo);
      assert.equal(charge.verified, false, `${name}: the charging statement`);
      assert.equal(charge.charge, null, name);
      const [look] = await runGate(gateDb, [lookup(items[0].ref)], NOW, memo);
      assert.notEqual(look.found?.live === true && look.found.tier === "sharp", true, name);
      assert.equal(await windowCount(tdb.db, `memo-minute:${c.user.id}`), 2, name);
    }

    // Sessions and ops tokens, by the lookup statement.
    await tdb.reset();
    const c = await credentials();
    const memo: GateMemo = createCredentialMemo();
    const refs = [
      lookup({ kind: "session", sessionId: c.sessionId }),
      lookup({ kind: "opsToken", hash: c.token }),
    ];
    assert.deepEqual((await runGate(gateDb, refs, NOW, memo)).map((r) => r.found?.live), [
      true,
      true,
    ]);
    await tdb.db.query("update sessions set revoked_at = now() where id = $1", [c.sessionId]);
    await tdb.db.query("update ops_tokens set revoked_at = now() where token_hash = $1", [c.token]);
    assert.deepEqual((await runGate(gateDb, refs, NOW, memo)).map((r) => r.found?.live), [
      false,
      false,
    ]);
  },
);

Deno.test(
  { ...DB_TEST, name: "a remembered key ends at its expiry by the clock alone" },
  async () => {
    await tdb.reset();
    const c = await credentials({ keyExpiresAt: new Date(NOW + 60_000) });
    const memo: GateMemo = createCredentialMemo();
    const ref = lookup({ kind: "apiKey", hash: c.key });
    assert.equal((await runGate(gateDb, [ref], NOW, memo))[0].found?.live, true);
    const e = await epoch();
    // Disabled unseen (no trigger): what answers live below is the memo, which read the
    // key's expiry from the database's answer and keeps to it.
    await behindTheTriggers("update users set disabled = true where id = $1", [c.user.id]);
    assert.equal((await runGate(gateDb, [ref], NOW + 59_999, memo))[0].found?.live, true);
    assert.equal((await runGate(gateDb, [ref], NOW + 60_000, memo))[0].found?.live, false);
    const [late] = await runGate(gateDb, [charging(c.user.id, c.key)], NOW + 60_000, memo);
    assert.equal(late.verified, false);
    assert.equal(await epoch(), e, "nothing but the clock changed");
  },
);

Deno.test(
  {
    ...DB_TEST,
    ignore: !ON_POSTGRES,
    name: "transactions changing credentials in opposite orders do not deadlock on the epoch",
  },
  async () => {
    await tdb.reset();
    const a = await credentials();
    const b = await credentials();
    const before = await epoch();
    const revoke = "update api_keys set revoked_at = now() where key_hash = $1";
    const signal = () => Promise.withResolvers<void>();
    const firstDone = signal();
    const secondDone = signal();
    // T1 revokes a, then b; T2 revokes b in between and commits while T1 waits for b's row.
    // The epoch is bumped at commit, so T1 holds no lock T2 needs.
    const t1 = tdb.db.transaction(async (tx) => {
      await tx.query(revoke, [a.key]);
      firstDone.resolve();
      await secondDone.promise;
      await tx.query(revoke, [b.key]);
    });
    const t2 = tdb.db.transaction(async (tx) => {
      await firstDone.promise;
      await tx.query(revoke, [b.key]);
      secondDone.resolve();
      await new Promise((r) => setTimeout(r, 200));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("the two transactions wait on each other")),
        10_000,
      );
    });
    try {
      await Promise.race([Promise.all([t1, t2]), timeout]);
    } finally {
      clearTimeout(timer);
    }
    assert.notEqual(await epoch(), before);
  },
);
