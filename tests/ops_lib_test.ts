import assert from "node:assert/strict";
import { dateInZone, isIsoDate, isUuid } from "../lib/dates.ts";
import { etagOf, ifNoneMatchHits } from "../lib/etag.ts";
import { freshnessOf } from "../lib/freshness.ts";

Deno.test("isIsoDate() accepts real calendar dates only", () => {
  for (const ok of ["2026-03-01", "2024-02-29"]) assert.ok(isIsoDate(ok), ok);
  for (const bad of ["2026-02-29", "2026-13-01", "2026-3-1", "20260301", "", "2026-03-01T00"]) {
    assert.ok(!isIsoDate(bad), bad);
  }
});

Deno.test("dateInZone() gives the local date on either side of midnight", () => {
  const at = Date.parse("2026-03-02T03:30:00Z");
  assert.equal(dateInZone(at, "America/New_York"), "2026-03-01");
  assert.equal(dateInZone(at, "UTC"), "2026-03-02");
  assert.equal(dateInZone(Date.parse("2026-07-01T03:59:59Z"), "America/New_York"), "2026-06-30");
  assert.equal(dateInZone(Date.parse("2026-07-01T04:00:00Z"), "America/New_York"), "2026-07-01");
});

Deno.test("isUuid() tells UUIDs from other ids", () => {
  assert.ok(isUuid(crypto.randomUUID()));
  assert.ok(!isUuid("1"));
  assert.ok(!isUuid("' or 1=1 --"));
});

Deno.test("etagOf() is a quoted base64url SHA-256 and ifNoneMatchHits() matches lists", () => {
  const tag = etagOf('{"a":1}');
  assert.match(tag, /^"[A-Za-z0-9_-]{43}"$/);
  assert.equal(etagOf('{"a":1}'), tag);
  assert.notEqual(etagOf('{"a":2}'), tag);
  assert.ok(ifNoneMatchHits(tag, tag));
  assert.ok(ifNoneMatchHits("*", tag));
  assert.ok(ifNoneMatchHits(`"x", W/${tag}`, tag));
  assert.ok(!ifNoneMatchHits(null, tag));
  assert.ok(!ifNoneMatchHits('"x"', tag));
});

Deno.test("freshnessOf() is stale past the threshold or when never loaded", () => {
  const now = Date.parse("2026-03-02T12:00:00Z");
  const at = (min: number) => new Date(now - min * 60_000);
  assert.equal(freshnessOf(at(60), 60, now).stale, false);
  assert.equal(freshnessOf(new Date(now - 60 * 60_000 - 1), 60, now).stale, true);
  assert.equal(freshnessOf(at(61), 60, now).ageMinutes, 61);
  assert.deepEqual(freshnessOf(null, 60, now), {
    updatedAt: null,
    ageMinutes: null,
    maxAgeMinutes: 60,
    stale: true,
  });
});
