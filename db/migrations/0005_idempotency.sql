-- Idempotency-Key records: one row per (caller scope, key), holding the claim of the
-- request in progress and then its sealed (AES-256-GCM) response for replay.
create table idempotency_keys (
  scope text not null,
  key_hash text not null,
  fingerprint text not null,
  state text not null check (state in ('in_progress', 'completed')),
  lock_id uuid not null,
  locked_at timestamptz not null,
  created_at timestamptz not null,
  completed_at timestamptz,
  status int,
  response bytea,
  primary key (scope, key_hash),
  check ((state = 'completed') = (status is not null and response is not null))
);
create index idempotency_keys_created on idempotency_keys (created_at);
