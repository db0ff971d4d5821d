-- Sliding-window rate limits (issue 5). One row per (policy, subject), e.g.
-- `sharp-minute:user:42`. A window of `slots` slots of `slot_ms` each is kept as `slots + 1`
-- counters, oldest first; the last counter is slot `head` (= time in ms / slot_ms). Every
-- counter overlapping the window is counted, so no window position ever admits more than
-- the quota (a request may be refused up to one slot early). See README "Rate limits".
create table ratelimit_windows (
  key text primary key,
  head bigint not null,
  counts int[] not null,
  -- When the newest counter leaves the window: after that the row holds nothing (pruned).
  expires_at timestamptz not null
-- Every check rewrites its rows: room on each page and no index on a column that changes
-- keep those HOT updates (no index churn, no bloat). The pruner scans the table instead.
) with (fillfactor = 50);

-- Charges one request to every window named in p_keys, or to none of them: admitted only
-- when each window (rolled to p_now_ms) holds fewer than its quota. One call = one check,
-- atomic under the row locks, which are taken in key order so two checks never deadlock.
-- Returns every window's state after the check and whether the request was admitted.
create function ratelimit_charge(
  p_keys text[],
  p_quotas int[],
  p_slot_ms bigint[],
  p_slots int[],
  p_now_ms bigint
) returns table (key text, head bigint, counts int[], admitted boolean)
language plpgsql
-- One plan for every call: re-planning per call (custom plans) costs more than the work.
-- Every statement here is a primary-key lookup; keep the plan on the index even while the
-- table is small (a cached seq-scan plan would scan the whole table once it has grown).
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
  -- Create missing rows and lock all of them. ON CONFLICT DO UPDATE locks the existing row
  -- even though `where false` skips the write, so a check writes nothing when it is refused.
  insert into ratelimit_windows as w (key, head, counts, expires_at)
  select u.key, p_now_ms / u.slot_ms, array_fill(0, array[u.slots + 1]),
         to_timestamp((p_now_ms / u.slot_ms + u.slots + 1) * u.slot_ms / 1000.0)
    from unnest(p_keys, p_slot_ms, p_slots) as u(key, slot_ms, slots)
   order by u.key
  on conflict on constraint ratelimit_windows_pkey do update set head = w.head where false;

  -- A new statement, so a new snapshot: it sees the latest committed state of the locked rows.
  -- The clock never runs backwards for a row: a late or skewed instance counts at `head`.
  return query
  with rolled as (
    -- Each row moved forward to its new head: the oldest `shift` counters drop out.
    select u.key, u.quota, u.slot_ms, u.slots, t.head,
           case when t.shift > u.slots then array_fill(0, array[u.slots + 1])
                else w.counts[t.shift + 1:] || array_fill(0, array[t.shift]) end as counts
      from unnest(p_keys, p_quotas, p_slot_ms, p_slots) as u(key, quota, slot_ms, slots)
      join ratelimit_windows w on w.key = u.key
      cross join lateral (
        select greatest(w.head, p_now_ms / u.slot_ms) as head,
               least(greatest(w.head, p_now_ms / u.slot_ms) - w.head, u.slots + 1)::int as shift
      ) t
  ), verdict as (
    select coalesce(bool_and((select sum(c) from unnest(r.counts) c) < r.quota), false) as ok
      from rolled r
  ), charged as (
    update ratelimit_windows w
       set head = r.head,
           counts = r.counts[:r.slots] || (r.counts[r.slots + 1] + 1),
           expires_at = to_timestamp((r.head + r.slots + 1) * r.slot_ms / 1000.0)
      from rolled r, verdict v
     where v.ok and w.key = r.key
    returning w.key, w.counts
  )
  select r.key, r.head, coalesce(c.counts, r.counts), v.ok
    from rolled r cross join verdict v left join charged c on c.key = r.key;
end;
$$;
