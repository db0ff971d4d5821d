-- The request gate's credential lookup (db/gate.ts) as a function (issue 8): PL/pgSQL keeps
-- its plan for the session, where the same statement sent from the client is parsed and
-- planned again on every call by PGlite (it prepares nothing) -- half its cost there.
-- One row per credential found, by key hash, session id or token hash; `live`: not revoked,
-- not expired at p_now, its user not disabled.
create function gate_lookup(
  p_keys text[],
  p_sessions uuid[],
  p_tokens text[],
  p_now timestamptz
) returns table (kind text, ref text, credential_id text, user_id uuid, tier text,
                 scopes text[], live boolean)
language plpgsql stable
set plan_cache_mode = force_generic_plan
as $$
begin
  return query
  select 'apiKey'::text, k.key_hash, k.id::text, k.user_id, u.tier, null::text[],
         k.revoked_at is null and (k.expires_at is null or k.expires_at > p_now)
           and not u.disabled
    from api_keys k join users u on u.id = k.user_id
   where k.key_hash = any(p_keys)
  union all
  select 'session'::text, s.id::text, s.id::text, s.user_id, u.tier, null::text[],
         s.revoked_at is null and not u.disabled
    from sessions s join users u on u.id = s.user_id
   where s.id = any(p_sessions)
  union all
  select 'opsToken'::text, t.token_hash, t.id::text, null::uuid, null::text, t.scopes,
         t.revoked_at is null and (t.expires_at is null or t.expires_at > p_now)
    from ops_tokens t
   where t.token_hash = any(p_tokens);
end;
$$;
