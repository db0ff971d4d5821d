-- Run-time settings (ops config) and their audit trail.
create table settings (
  key text primary key,
  value jsonb not null,
  updated_at timestamptz not null default now(),
  updated_by text not null
);

create table settings_audit (
  id bigserial primary key,
  key text not null,
  old_value jsonb,
  new_value jsonb not null,
  changed_by text not null,
  changed_at timestamptz not null default now()
);
