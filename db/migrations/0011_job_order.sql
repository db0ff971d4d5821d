-- Pipeline jobs of one day run in the order they were queued (claimNextJob, db/jobs.ts):
-- a job waits while an earlier job for the same date is queued or running, so a settle
-- never reads a day an ingest is still loading. The first index finds those earlier jobs;
-- the second walks the queue in claim order, so a claim stops at the first job it may take
-- instead of sorting the whole queue.
create index jobs_open_by_date on jobs ((params ->> 'date'), created_at, id)
  where state in ('queued', 'running');
create index jobs_claim_order on jobs (run_after, created_at, id) where state = 'queued';
drop index jobs_claimable;
