-- API keys (data API) and ops tokens (ops API): SHA-256 of the secret plus a display prefix.
create table api_keys (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  name text not null,
  prefix text not null,
  key_hash text not null unique,
  created_at timestamptz not null,
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_by_user on api_keys (user_id, created_at desc, id desc)
  where revoked_at is null;

create table ops_tokens (
  id uuid primary key,
  name text not null,
  scopes text[] not null,
  prefix text not null,
  token_hash text not null unique,
  created_by text not null,
  created_at timestamptz not null,
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index ops_tokens_newest on ops_tokens (created_at desc, id desc) where revoked_at is null;
