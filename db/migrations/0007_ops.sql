-- Ops control plane: running instances with their heartbeats, and recent 5xx answers.
create table instances (
  id uuid primary key,
  role text not null check (role in ('api', 'api+worker')),
  version text not null,
  hostname text,
  pid int,
  started_at timestamptz not null,
  heartbeat_at timestamptz not null
);

-- What /ops/errors shows of a failed request: never a body, header value or secret.
create table request_errors (
  id uuid primary key,
  request_id text not null,
  method text not null,
  route text,
  status int not null,
  instance_id uuid,
  occurred_at timestamptz not null
);
create index request_errors_newest on request_errors (occurred_at desc, id desc);
