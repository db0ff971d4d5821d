-- The credentials' epoch (issue 8): one number that moves on whenever anything the gate's
-- credential lookup (gate_lookup) reads changes. A gate that remembers what it found under
-- epoch E may answer a credential from memory in any statement that still reads E: in that
-- statement's snapshot, the lookup would find the same rows (db/gate.ts, lib/credential_memo.ts).
--
-- The number comes from a sequence, so it never repeats, not even after the row is deleted
-- or the table truncated (tests empty every table; `restart identity` leaves a sequence no
-- table owns alone). The row is ordinary MVCC data: a statement sees a new epoch exactly
-- when it sees the change that moved it, committed in the same transaction.
create sequence credential_epoch_seq;

create table credential_epoch (
  one boolean primary key default true check (one),
  epoch bigint not null
);
insert into credential_epoch (epoch) values (nextval('credential_epoch_seq'));

create function bump_credential_epoch() returns trigger
language plpgsql as $$
begin
  insert into credential_epoch as c (one, epoch) values (true, nextval('credential_epoch_seq'))
  on conflict (one) do update set epoch = excluded.epoch;
  return null;
end;
$$;

-- Row changes bump at commit (deferred constraint triggers): the epoch's row lock is taken
-- last, after every other lock of the transaction, so two transactions that change
-- credentials never wait on each other in opposite orders. Only the columns the lookup reads
-- count: `last_used_at` (written as keys are used) moves nothing. Deletes and truncation
-- bump by statement.
create constraint trigger api_keys_epoch after update on api_keys
  deferrable initially deferred for each row
  when ((old.id, old.key_hash, old.user_id, old.expires_at, old.revoked_at)
        is distinct from (new.id, new.key_hash, new.user_id, new.expires_at, new.revoked_at))
  execute function bump_credential_epoch();
create trigger api_keys_epoch_gone after delete or truncate on api_keys
  for each statement execute function bump_credential_epoch();

create constraint trigger sessions_epoch after update on sessions
  deferrable initially deferred for each row
  when ((old.id, old.user_id, old.revoked_at) is distinct from (new.id, new.user_id, new.revoked_at))
  execute function bump_credential_epoch();
create trigger sessions_epoch_gone after delete or truncate on sessions
  for each statement execute function bump_credential_epoch();

create constraint trigger ops_tokens_epoch after update on ops_tokens
  deferrable initially deferred for each row
  when ((old.id, old.token_hash, old.scopes, old.expires_at, old.revoked_at)
        is distinct from (new.id, new.token_hash, new.scopes, new.expires_at, new.revoked_at))
  execute function bump_credential_epoch();
create trigger ops_tokens_epoch_gone after delete or truncate on ops_tokens
  for each statement execute function bump_credential_epoch();

create constraint trigger users_epoch after update on users
  deferrable initially deferred for each row
  when ((old.id, old.tier, old.disabled) is distinct from (new.id, new.tier, new.disabled))
  execute function bump_credential_epoch();
create trigger users_epoch_gone after delete or truncate on users
  for each statement execute function bump_credential_epoch();

-- The lookup now also answers until when a live credential stays live by the clock alone
-- (its expiry; null: until something changes it), so a remembered one is not used past it.
drop function gate_lookup(text[], uuid[], text[], timestamptz);
create function gate_lookup(
  p_keys text[],
  p_sessions uuid[],
  p_tokens text[],
  p_now timestamptz
) returns table (kind text, ref text, credential_id text, user_id uuid, tier text,
                 scopes text[], live boolean, live_until timestamptz)
language plpgsql stable
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
begin
  return query
  select 'apiKey'::text, k.key_hash, k.id::text, k.user_id, u.tier, null::text[],
         k.revoked_at is null and (k.expires_at is null or k.expires_at > p_now)
           and not u.disabled,
         k.expires_at
    from api_keys k join users u on u.id = k.user_id
   where k.key_hash = any(p_keys)
  union all
  select 'session'::text, s.id::text, s.id::text, s.user_id, u.tier, null::text[],
         s.revoked_at is null and not u.disabled, null::timestamptz
    from sessions s join users u on u.id = s.user_id
   where s.id = any(p_sessions)
  union all
  select 'opsToken'::text, t.token_hash, t.id::text, null::uuid, null::text, t.scopes,
         t.revoked_at is null and (t.expires_at is null or t.expires_at > p_now),
         t.expires_at
    from ops_tokens t
   where t.token_hash = any(p_tokens);
end;
$$;
