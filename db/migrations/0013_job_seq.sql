-- Queue order by a sequence, not by time. Jobs queued within the same millisecond had equal
-- created_at (and, on PGlite, whose clock counts milliseconds, equal run_after), so their
-- order fell to the random id: a settle queued right after its ingest could be taken as the
-- earlier job of its date. Each job now gets the next number of a sequence when it is
-- queued; claimNextJob (db/jobs.ts) orders by it.
alter table jobs add column seq bigint generated always as identity;
create index jobs_open_by_date_seq on jobs ((params ->> 'date'), seq)
  where state in ('queued', 'running');
create index jobs_claim_order_seq on jobs (run_after, seq) where state = 'queued';
drop index jobs_open_by_date;
drop index jobs_claim_order;
