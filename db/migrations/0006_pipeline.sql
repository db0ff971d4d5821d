-- The job queue, pipeline runs, and the data the pipeline produces (picks, results, scores).
create table jobs (
  id uuid primary key,
  type text not null check (type in ('ingest', 'settle', 'score-day')),
  params jsonb not null,
  state text not null default 'queued'
    check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  attempts int not null default 0,
  max_attempts int not null default 3,
  run_after timestamptz not null default now(),
  cancel_requested boolean not null default false,
  locked_by text,
  heartbeat_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  error text,
  result jsonb
);
create index jobs_claimable on jobs (run_after) where state = 'queued';
create index jobs_running on jobs (heartbeat_at) where state = 'running';
create index jobs_newest on jobs (created_at desc, id desc);

create table pipeline_runs (
  id uuid primary key,
  job_id uuid not null references jobs (id) on delete cascade,
  type text not null,
  attempt int not null,
  state text not null check (state in ('running', 'succeeded', 'failed', 'cancelled')),
  steps jsonb not null default '[]',
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  error text
);
create index pipeline_runs_newest on pipeline_runs (started_at desc, id desc);

create table picks (
  id uuid primary key,
  game_date date not null,
  player text not null,
  team text,
  opponent text,
  market text not null,
  line numeric not null,
  side text not null check (side in ('over', 'under')),
  odds int not null,
  outcome text check (outcome in ('win', 'loss', 'push', 'void')),
  actual numeric,
  created_at timestamptz not null default now()
);
create index picks_by_date on picks (game_date, id);

create table results (
  game_date date not null,
  player text not null,
  market text not null,
  value numeric not null,
  primary key (game_date, player, market)
);

create table scores (
  game_date date primary key,
  wins int not null,
  losses int not null,
  pushes int not null,
  voids int not null,
  units numeric not null,
  roi numeric not null,
  by_market jsonb not null,
  computed_at timestamptz not null default now()
);

create table dataset_freshness (
  dataset text primary key,
  updated_at timestamptz not null,
  row_count int not null
);
