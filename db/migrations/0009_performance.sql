-- A counter per dataset, bumped by every statement that changes it (issue 8): the data API
-- keeps rendered pages until the version it read them under moves on.
create table data_versions (
  dataset text primary key,
  version bigint not null
);
insert into data_versions (dataset, version) values ('picks', 0);

create function bump_data_version() returns trigger
language plpgsql as $$
begin
  insert into data_versions as d (dataset, version) values (tg_argv[0], 1)
  on conflict (dataset) do update set version = d.version + 1;
  return null;
end;
$$;

create trigger picks_bump_version after insert or update or delete or truncate on picks
  for each statement execute function bump_data_version('picks');

-- Coalesced rate-limit checks (issue 8), many in one statement: group g (p_group[i] = g
-- for each of its windows) stands for p_n[g] concurrent requests against the same windows.
-- It is charged as p_n[g] calls of ratelimit_charge at p_now_ms one after another would
-- charge it: each admitted request charges every window, so exactly min(p_n[g], the least
-- room left in any of its windows) are admitted and the rest charge nothing.
-- A key belongs to one group only (the caller groups by key). Every row of the batch is
-- locked first, in key order, so two batches (or a batch and a single check) never deadlock.
create function ratelimit_charge_many(
  p_group int[],
  p_keys text[],
  p_quotas int[],
  p_slot_ms bigint[],
  p_slots int[],
  p_now_ms bigint,
  p_n int[]
) returns table (grp int, key text, head bigint, counts int[], admitted int)
language plpgsql
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
  insert into ratelimit_windows as w (key, head, counts, expires_at)
  select u.key, p_now_ms / u.slot_ms, array_fill(0, array[u.slots + 1]),
         to_timestamp((p_now_ms / u.slot_ms + u.slots + 1) * u.slot_ms / 1000.0)
    from unnest(p_keys, p_slot_ms, p_slots) as u(key, slot_ms, slots)
   order by u.key
  on conflict on constraint ratelimit_windows_pkey do update set head = w.head where false;

  return query
  with rolled as (
    select u.grp, u.key, u.quota, u.slot_ms, u.slots, t.head,
           case when t.shift > u.slots then array_fill(0, array[u.slots + 1])
                else w.counts[t.shift + 1:] || array_fill(0, array[t.shift]) end as counts
      from unnest(p_group, p_keys, p_quotas, p_slot_ms, p_slots)
             as u(grp, key, quota, slot_ms, slots)
      join ratelimit_windows w on w.key = u.key
      cross join lateral (
        select greatest(w.head, p_now_ms / u.slot_ms) as head,
               least(greatest(w.head, p_now_ms / u.slot_ms) - w.head, u.slots + 1)::int as shift
      ) t
  ), verdict as (
    -- Per group: the room of its fullest window, capped by the requests asking.
    select r.grp, greatest(0, least(p_n[r.grp]::bigint,
             min(r.quota - (select sum(c) from unnest(r.counts) c))))::int as n
      from rolled r group by r.grp
  ), charged as (
    update ratelimit_windows w
       set head = r.head,
           counts = r.counts[:r.slots] || (r.counts[r.slots + 1] + v.n),
           expires_at = to_timestamp((r.head + r.slots + 1) * r.slot_ms / 1000.0)
      from rolled r join verdict v on v.grp = r.grp
     where v.n > 0 and w.key = r.key
    returning w.key, w.counts
  )
  select r.grp, r.key, r.head, coalesce(c.counts, r.counts), v.n
    from rolled r join verdict v on v.grp = r.grp left join charged c on c.key = r.key;
end;
$$;
