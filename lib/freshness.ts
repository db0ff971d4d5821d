/** Dataset freshness: the age of a dataset against its threshold. Pure: the clock is passed in. */

/** The datasets the pipeline keeps fresh; each has a `freshness.<dataset>.maxAgeMinutes` setting. */
export const DATASETS = ["picks", "results"] as const;
export type Dataset = typeof DATASETS[number];

/** How one dataset stands. */
export interface Freshness {
  updatedAt: string | null;
  ageMinutes: number | null;
  maxAgeMinutes: number;
  /** True when older than the threshold, or never loaded. */
  stale: boolean;
}

/** Judges a dataset last updated at `updatedAt` (null: never) against `maxAgeMinutes` at `now`. */
export function freshnessOf(updatedAt: Date | null, maxAgeMinutes: number, now: number): Freshness {
  if (updatedAt === null) return { updatedAt: null, ageMinutes: null, maxAgeMinutes, stale: true };
  const ageMs = Math.max(0, now - updatedAt.getTime());
  return {
    updatedAt: updatedAt.toISOString(),
    ageMinutes: Math.floor(ageMs / 60_000),
    maxAgeMinutes,
    stale: ageMs > maxAgeMinutes * 60_000,
  };
}
