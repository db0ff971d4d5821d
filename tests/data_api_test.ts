import assert from "node:assert/strict";
import { openTestDb } from "./support/db.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { assertProblem, DB_TEST } from "./support/assert.ts";
import { ADMIN, opsToken, PRO_JWT, SHARP_KEY, useTestAuth } from "./support/principal.ts";
import { insertPickRow, insertScoreRow, POINTS_TALLY } from "./support/data_fixtures.ts";
import { upsertSetting } from "../db/settings.ts";

const tdb = await openTestDb();
// 03:30 UTC on 2 March is still 1 March (22:30) in New York, already 2 March in Tokyo.
const NOW = Date.parse("2026-03-02T03:30:00Z");

async function withServer(fn: (s: TestServer) => Promise<void>): Promise<void> {
  const server = useTestAuth(await startTestServer(tdb.db, {}, () => NOW));
  try {
    await fn(server);
  } finally {
    await server.stop();
    await tdb.reset();
  }
}

const get = (s: TestServer, path: string, headers: Record<string, string> = SHARP_KEY) =>
  fetch(s.url(path), { headers });

async function seedDay(date: string, n: number, base = Date.parse(`${date}T15:00:00Z`)) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(
      await insertPickRow(tdb.db, {
        date,
        player: `Player ${date} ${i}`,
        createdAt: new Date(base + i * 1000),
      }),
    );
  }
  return ids; // oldest first
}

Deno.test(
  { ...DB_TEST, name: "data routes accept a sharp key or JWT, not lower tiers" },
  async (t) => {
    await withServer(async (s) => {
      const path = "/api/v1/data/picks/today";
      await t.step("401 without a credential", async () => {
        await assertProblem(await fetch(s.url(path)), 401, "unauthorized");
      });
      await t.step("403 for a pro JWT", async () => {
        await assertProblem(await get(s, path, PRO_JWT), 403, "forbidden");
      });
      await t.step("403 for an ops token", async () => {
        await assertProblem(await get(s, path, opsToken("ops:read")), 403, "forbidden");
      });
      await t.step("200 for a sharp API key and an admin JWT", async () => {
        for (const h of [SHARP_KEY, ADMIN]) {
          const res = await get(s, path, h);
          assert.equal(res.status, 200);
          await res.body?.cancel();
        }
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/data/picks/today uses the configured time zone" },
  async (t) => {
    await withServer(async (s) => {
      const march1 = await seedDay("2026-03-01", 2);
      const march2 = await seedDay("2026-03-02", 1);
      await t.step("America/New_York by default: still 1 March", async () => {
        const body = await (await get(s, "/api/v1/data/picks/today")).json();
        assert.equal(body.date, "2026-03-01");
        assert.deepEqual(body.items.map((p: { id: string }) => p.id), march1.toReversed());
      });
      await t.step("Asia/Tokyo from config: already 2 March", async () => {
        await upsertSetting(tdb.db, "data.timezone", "Asia/Tokyo", "user:1");
        await s.running.deps.settings.refresh();
        const body = await (await get(s, "/api/v1/data/picks/today")).json();
        assert.equal(body.date, "2026-03-02");
        assert.deepEqual(body.items.map((p: { id: string }) => p.id), march2);
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/data/picks?date= answers the day's picks" },
  async (t) => {
    await withServer(async (s) => {
      const id = await insertPickRow(tdb.db, {
        date: "2026-03-01",
        player: "Jalen Brunson",
        market: "assists",
        line: 6.5,
        side: "under",
        odds: 125,
        outcome: "win",
        actual: 5,
      });
      await seedDay("2026-03-02", 1);
      await t.step("200 with numbers as JSON numbers", async () => {
        const body = await (await get(s, "/api/v1/data/picks?date=2026-03-01")).json();
        assert.deepEqual(body, {
          date: "2026-03-01",
          items: [{
            id,
            date: "2026-03-01",
            player: "Jalen Brunson",
            team: "BOS",
            opponent: "NYK",
            market: "assists",
            line: 6.5,
            side: "under",
            odds: 125,
            outcome: "win",
            actual: 5,
          }],
          nextCursor: null,
        });
      });
      await t.step("200 with no items for a day without picks", async () => {
        const body = await (await get(s, "/api/v1/data/picks?date=2025-12-25")).json();
        assert.deepEqual(body.items, []);
      });
      for (const q of ["", "?date=", "?date=2026-3-1", "?date=2026-02-30", "?date=yesterday"]) {
        await t.step(`422 for "${q}"`, async () => {
          const body = await assertProblem(
            await get(s, `/api/v1/data/picks${q}`),
            422,
            "validation-failed",
          );
          assert.equal((body.errors as { pointer: string }[])[0].pointer, "/date");
        });
      }
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "list pagination walks a day newest first without gaps" },
  async (t) => {
    await withServer(async (s) => {
      // Two picks share a created_at: the id breaks the tie.
      const ids = await seedDay("2026-03-01", 4);
      ids.push(
        await insertPickRow(tdb.db, {
          date: "2026-03-01",
          createdAt: new Date(Date.parse("2026-03-01T15:00:03Z")),
        }),
      );
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : "";
        const body = await (await get(s, `/api/v1/data/picks?date=2026-03-01&limit=2${q}`)).json();
        seen.push(...body.items.map((p: { id: string }) => p.id));
        cursor = body.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      assert.equal(pages, 3);
      assert.deepEqual([...seen].sort(), [...ids].sort());
      assert.equal(new Set(seen).size, 5);
      assert.equal(seen.at(-1), ids[0]);
      await t.step("400 for a cursor that is not ours", async () => {
        const res = await get(s, "/api/v1/data/picks?date=2026-03-01&cursor=abc");
        await assertProblem(res, 400, "bad-request");
      });
      await t.step("422 for limit=0", async () => {
        const res = await get(s, "/api/v1/data/picks?date=2026-03-01&limit=0");
        await assertProblem(res, 422, "validation-failed");
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/data/picks/{id} answers the pick or 404" },
  async (t) => {
    await withServer(async (s) => {
      const id = await insertPickRow(tdb.db, { date: "2026-03-01", line: 27.5, odds: -110 });
      await t.step("200 for a known id", async () => {
        const pick = await (await get(s, `/api/v1/data/picks/${id}`)).json();
        assert.equal(pick.id, id);
        assert.equal(pick.line, 27.5);
        assert.equal(pick.odds, -110);
        assert.equal(pick.outcome, null);
        assert.equal(pick.actual, null);
      });
      await t.step("404 for an unknown UUID", async () => {
        const res = await get(s, `/api/v1/data/picks/${crypto.randomUUID()}`);
        await assertProblem(res, 404, "not-found");
      });
      await t.step("404, not 500, for an id that is not a UUID", async () => {
        await assertProblem(await get(s, "/api/v1/data/picks/12'; drop"), 404, "not-found");
      });
    });
  },
);

Deno.test(
  { ...DB_TEST, name: "GET /api/v1/data/scores?date= answers the scored day" },
  async (t) => {
    await withServer(async (s) => {
      await insertScoreRow(tdb.db, "2026-03-01");
      await t.step("200 with the record, units and ROI", async () => {
        const body = await (await get(s, "/api/v1/data/scores?date=2026-03-01")).json();
        const { picks: _, ...overall } = POINTS_TALLY; // one market: the day's tally is its
        assert.deepEqual(body, {
          date: "2026-03-01",
          ...overall,
          byMarket: { points: POINTS_TALLY },
          computedAt: "2026-03-02T08:00:00.000Z",
        });
      });
      await t.step("404 for a day not scored", async () => {
        await assertProblem(await get(s, "/api/v1/data/scores?date=2026-03-02"), 404, "not-found");
      });
      await t.step("422 for a missing date", async () => {
        await assertProblem(await get(s, "/api/v1/data/scores"), 422, "validation-failed");
      });
    });
  },
);

Deno.test({ ...DB_TEST, name: "data reads answer ETag and 304 for If-None-Match" }, async (t) => {
  await withServer(async (s) => {
    const id = await insertPickRow(tdb.db, { date: "2026-03-01" });
    await insertScoreRow(tdb.db, "2026-03-01");
    const paths = [
      "/api/v1/data/picks/today",
      "/api/v1/data/picks?date=2026-03-01",
      `/api/v1/data/picks/${id}`,
      "/api/v1/data/scores?date=2026-03-01",
    ];
    for (const path of paths) {
      await t.step(`GET ${path.replace(id, "{id}")}`, async () => {
        const first = await get(s, path);
        const text = await first.text();
        const etag = first.headers.get("etag")!;
        assert.match(etag, /^"[A-Za-z0-9_-]{43}"$/);
        assert.equal(first.headers.get("cache-control"), "private, no-cache");
        for (const inm of [etag, "*", `"other", ${etag}`, `W/${etag}`]) {
          const res = await get(s, path, { ...SHARP_KEY, "if-none-match": inm });
          assert.equal(res.status, 304, `If-None-Match: ${inm}`);
          assert.equal(await res.text(), "");
          assert.equal(res.headers.get("etag"), etag);
        }
        const other = await get(s, path, { ...SHARP_KEY, "if-none-match": '"stale"' });
        assert.equal(other.status, 200);
        assert.equal(await other.text(), text);
      });
    }
    await t.step("a change to the data changes the ETag", async () => {
      const path = "/api/v1/data/picks?date=2026-03-01";
      const before = (await get(s, path)).headers.get("etag")!;
      await insertPickRow(tdb.db, { date: "2026-03-01" });
      const res = await get(s, path, { ...SHARP_KEY, "if-none-match": before });
      assert.equal(res.status, 200);
      assert.notEqual(res.headers.get("etag"), before);
      assert.equal((await res.json()).items.length, 2);
    });
  });
});
