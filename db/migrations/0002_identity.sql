-- Users, login sessions, their rotating refresh tokens, and JWT signing keys.
create table users (
  id uuid primary key,
  email text not null,
  password_hash text not null,
  tier text not null default 'free' check (tier in ('free', 'pro', 'sharp', 'admin')),
  disabled boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_email_ci on users (lower(email));
create index users_newest on users (created_at desc, id desc);

-- One row per login; revoking it ends every refresh token and access token of that login.
create table sessions (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  created_at timestamptz not null,
  revoked_at timestamptz
);
create index sessions_by_user on sessions (user_id) where revoked_at is null;

-- Refresh tokens as SHA-256; a rotated token is retired (kept to detect reuse).
create table refresh_tokens (
  token_hash text primary key,
  session_id uuid not null references sessions (id) on delete cascade,
  created_at timestamptz not null,
  expires_at timestamptz not null,
  retired_at timestamptz
);
create index refresh_tokens_by_session on refresh_tokens (session_id);

-- HS256 keys; exactly one is current (retired_at null), retired ones verify for 15 more minutes.
create table signing_keys (
  kid text primary key,
  secret text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
create unique index signing_keys_one_current on signing_keys ((retired_at is null))
  where retired_at is null;
