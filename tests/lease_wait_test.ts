/**
 * Requests of a user whose charge is on its way to the database wait for the lease it
 * brings instead of charging again (routes/ratelimit.ts). The gate runs on the real
 * database; its statements are held back until the test lets them go, so that requests can
 * arrive while one is on its way.
 */
import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { DB_TEST } from "./support/assert.ts";
import { windowCount } from "./support/fixtures.ts";
import { type Db, DbUnavailableError, type Queryable } from "../db/client.ts";
import { createSettings, upsertSetting } from "../db/settings.ts";
import type { GateItem } from "../db/gate.ts";
import { createGate, type Gate } from "../routes/gate.ts";
import { createRateLimit } from "../routes/ratelimit.ts";
import { createLogger } from "../lib/log.ts";
import type { Principal } from "../lib/policy.ts";
import type { Ctx, Route } from "../routes/context.ts";

const tdb = await openTestDb();
// 100 ms into a second: the minute window's slot has 900 ms left.
const T = Date.UTC(2026, 0, 15, 12, 0, 0, 100);
const ROUTE = { limit: "data" } as Route;

/** The database, with the gate's statements held until `release()` while `held`. */
function heldGate(db: Db) {
  const target = db.gateConnection ?? db;
  let gate: PromiseWithResolvers<void> | null = null;
  let failNext = false;
  const connection: Queryable = {
    writesAtOnce: target.writesAtOnce,
    async query(text, params) {
      const waitFor = gate?.promise;
      if (waitFor) await waitFor;
      if (failNext) {
        failNext = false;
        throw new DbUnavailableError("connection lost (test)");
      }
      return await target.query(text, params);
    },
    exec: (script) => target.exec(script),
  };
  const gateDb = Object.create(db, { gateConnection: { value: connection } }) as Db;
  return {
    gateDb,
    hold: () => void (gate = Promise.withResolvers()),
    release: (fail = false) => {
      failNext = fail;
      const g = gate;
      gate = null;
      g?.resolve();
    },
  };
}

async function setup() {
  await tdb.reset();
  await upsertSetting(tdb.db, "ratelimit.sharp.perMinute", 100_000, "test");
  await upsertSetting(tdb.db, "ratelimit.sharp.perDay", 1_000_000, "test");
  const settings = await createSettings(tdb.db, createLogger("error"), 60_000);
  const held = heldGate(tdb.db);
  const gate = createGate(held.gateDb, () => T);
  const items: GateItem[] = [];
  const counting: Gate = (item, onAnswer) => {
    items.push(item);
    return gate(item, onAnswer);
  };
  const logged: string[] = [];
  const limit = createRateLimit(createLogger("error", (line) => logged.push(line)), {
    gate: counting,
    forget: () => {},
    touch: () => {},
  });
  const userId = crypto.randomUUID();
  const principal: Principal = {
    kind: "apiKey",
    subject: `user:${userId}`,
    userId,
    tier: "sharp",
    scopes: [],
    credentialId: "key-1",
  };
  const request = async () => {
    const ctx = {
      deps: { db: tdb.db, now: () => T, settings },
      db: tdb.db,
      principal,
      clientIp: "203.0.113.5",
      responseHeaders: new Map<string, string>(),
    } as unknown as Ctx;
    const refusal = await limit(ctx, ROUTE);
    return { refusal, rateLimit: ctx.responseHeaders.get("ratelimit") };
  };
  const minute = () => windowCount(tdb.db, `sharp-minute:user:${userId}`);
  return { ...held, items, logged, request, minute, stop: () => settings.stop() };
}

// Lets the event loop run until `done()` holds (a statement reaching the held connection).
async function until(done: () => boolean) {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(done(), "timed out");
}

// `p`, or a failure after `ms` rather than a test that never ends.
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const charging = (items: GateItem[]) => items.filter((it) => it.charges.length > 0);

type Answer = { refusal: unknown; rateLimit: string | undefined };

/**
 * A user's second request charges (the first taught the windows) and is held on its way;
 * `waiting` more requests of the same user arrive meanwhile. `fn` lets the statement go.
 */
async function whileChargeOnItsWay(
  waiting: number,
  fn: (
    t: Awaited<ReturnType<typeof setup>>,
    second: Promise<Answer>,
    later: Promise<Answer>[],
  ) => Promise<void>,
) {
  const t = await setup();
  try {
    // The first request learns the windows: no lease without them.
    assert.equal((await t.request()).refusal, null);
    t.hold();
    const second = t.request();
    await until(() => t.items.length === 2);
    const later = Array.from({ length: waiting }, () => t.request());
    await new Promise((r) => setTimeout(r, 20));
    await fn(t, second, later);
  } finally {
    t.release();
    await t.stop();
  }
}

Deno.test(
  { ...DB_TEST, name: "requests arriving while their user's charge is on its way use its lease" },
  () =>
    whileChargeOnItsWay(3, async (t, second, later) => {
      assert.equal(t.items.length, 2, "the later requests wait; none goes to the gate");
      t.release();
      const answers = await within(5_000, Promise.all([second, ...later]));
      assert.ok(answers.every((a) => a.refusal === null));
      assert.equal(charging(t.items).length, 2, "two charges: the first, and the one leasing");
      const leased = t.items[1].extra!;
      assert.ok(leased >= 3, `a lease of ${leased} covers the three that waited`);
      assert.equal(await t.minute(), 2 + leased, "the database counted every unit once");
      assert.deepEqual(
        answers.map((a) => a.rateLimit),
        [99_998, 99_997, 99_996, 99_995].map((r) => `"sharp-minute";r=${r};t=61`),
        "each answer counts the requests before it, not the units still held",
      );
    }),
);

Deno.test(
  { ...DB_TEST, name: "when the charge on its way fails, the requests waiting for it go on" },
  () =>
    whileChargeOnItsWay(2, async (t, second, later) => {
      t.release(true);
      await assert.rejects(second, (err: { code?: string }) => {
        assert.equal(err.code, "database-unavailable");
        return true;
      });
      const answers = await within(5_000, Promise.all(later));
      assert.ok(answers.every((a) => a.refusal === null), "charged on their own instead");
      assert.ok(charging(t.items).length >= 3);
      assert.ok(await t.minute() >= 3, "the failed charge counted nothing; theirs did");
      assert.equal(t.logged.filter((l) => l.includes("failing closed")).length, 1);
    }),
);
