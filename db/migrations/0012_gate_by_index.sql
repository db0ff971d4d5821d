-- The gate's credential lookup (gate_lookup, 0010) finds each credential by a unique key and
-- its user by primary key: a few index probes per statement. Its generic plan is made once
-- per session from the statistics of that moment, and on tables that are small or not yet
-- analyzed (a fresh install, rows just loaded) the planner picks sequential scans of
-- api_keys and users, which it then keeps; on 1,001 users it kept scanning users even
-- after ANALYZE. Measured on that database (README, Performance): hot key 13,900-14,000
-- req/s scanning, 16,000-16,100 with this setting.
-- Probing by index is right at every size, so the lookup never scans a whole table.
alter function gate_lookup(text[], uuid[], text[], timestamptz)
  set enable_seqscan = off;
