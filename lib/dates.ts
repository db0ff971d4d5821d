/** Calendar dates (YYYY-MM-DD) and "today" in a time zone. Pure: the clock is passed in. */

/** True when `s` is a real calendar date written YYYY-MM-DD (2026-02-30 is not). */
export function isIsoDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

// Building an Intl.DateTimeFormat costs ~100 µs, far more than using one: keep one per zone
// (a memo of immutable objects; the zones in use are a handful of validated settings).
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    });
    if (formatters.size < 64) formatters.set(timeZone, f);
  }
  return f;
}

// The last answer per zone, for the minute it was computed in: zone offsets are whole
// minutes, so the date can only change on a minute boundary (the data API asks per request).
const lastDate = new Map<string, { minute: number; date: string }>();

/** The calendar date (YYYY-MM-DD) at instant `ms` in IANA time zone `timeZone`. */
export function dateInZone(ms: number, timeZone: string): string {
  const minute = Math.floor(ms / 60_000);
  const last = lastDate.get(timeZone);
  if (last?.minute === minute) return last.date;
  const parts = formatterFor(timeZone).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  const date = `${get("year")}-${get("month")}-${get("day")}`;
  if (lastDate.size > 64) lastDate.clear();
  lastDate.set(timeZone, { minute, date });
  return date;
}

/** True when `s` is a UUID (any version); used to answer 404, not 500, for other ids. */
export function isUuid(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}
