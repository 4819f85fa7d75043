"""A search reads the text of only the log chunks of its window that the trigram index finds (issue 15).

A search checks each candidate chunk with ILIKE over its whole text (~130 kB of events and messages at `heavy`,
~1.3 ms a chunk, most of it folding case). Two things made it check far more chunks than needed:
- The planner costs that ILIKE like any operator on a short value, so a seq scan of a day partition (~80 chunks)
  looked cheaper than the trigram index of migration 0016, and it chose it: a 24-hour search matching nothing
  read every chunk of the day (110-160 ms through the API) where the index answers in ~1 ms.
- When it did take the index, every chunk of the day partition that may hold the term was checked before the
  window's bounds were (a bitmap scan rechecks its index condition first): 24 chunks for a 1-hour slice of 2.

The chunk text is now the value of `telemetry_log_chunk_text(events, messages)`: the same text, from a function
that says what reading it costs (COST 10000, about a chunk's ILIKE in the planner's units). PL/pgSQL because a SQL
function would be inlined into its expression and its cost lost. The trigram index is rebuilt over it with the
chunk's start beside the text (btree_gin, migration 0011), so one index scan hands over only the chunks of the
window that may hold the term. The view's `chunk_text` of a packed row reads the function, so a condition on
`chunk_text` is the index expression. No chunk is re-packed.

Size: the rebuilt index of an existing day is ~1.5x the one packing grows chunk by chunk (a bulk GIN build leaves
its pages about half full): +0.7 bytes a log record on the 7 upgraded days of the bench (27.5 -> 28.2); the start
column adds ~0.05. Days packed after the upgrade grow their index as before. The SQL is frozen as this migration
runs it.
"""

from django.db import migrations

FUNCTION_SQL = r"""
CREATE FUNCTION telemetry_log_chunk_text(events text, messages text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS $$
BEGIN
    RETURN events || E'\n' || messages;
END
$$;
COMMENT ON FUNCTION telemetry_log_chunk_text(text, text) IS
    'a log chunk''s events and messages as one text (what the trigram index and a search read); costly to scan';
"""

# The view of migration 0016 but for the packed rows' chunk_text.
VIEW_SQL = r"""
CREATE OR REPLACE VIEW telemetry_log_events_all AS
SELECT e.ts,
       telemetry_log_row_id(e.ts, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id,
                            e.attrs) AS id,
       e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts, NULL::bytea AS chunk_trace_bloom,
       e.event || E'\n' || e.message AS chunk_text, false AS chunk_packed, NULL::bytea AS chunk_digit_bloom
FROM telemetry_log_events e
UNION ALL
SELECT telemetry_log_ts(c.first_ts, u.ts),
       telemetry_log_row_id(telemetry_log_ts(c.first_ts, u.ts), c.level, u.service, u.domain, u.event, u.message,
                            replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs),
       c.level, u.service, u.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts, c.trace_bloom, {chunk_text}, true, c.digit_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.services, c.domains, telemetry_split_joined(c.events, c.row_count),
                          telemetry_split_joined(c.messages, c.row_count), c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, service, domain, event, message, trace_id, span_id, attrs);
"""

INDEX_SQL = r"""
DROP INDEX telemetry_log_chunks_text;
CREATE INDEX telemetry_log_chunks_text ON telemetry_log_chunks
    USING gin ({key}{chunk_text} gin_trgm_ops) WITH (fastupdate = off);
"""

NEW_TEXT = "telemetry_log_chunk_text(events, messages)"
OLD_TEXT = "(events || E'\\n' || messages)"

FORWARD_SQL = (
    FUNCTION_SQL
    + VIEW_SQL.format(chunk_text="telemetry_log_chunk_text(c.events, c.messages)")
    + INDEX_SQL.format(key="first_ts, ", chunk_text=NEW_TEXT)
)
REVERSE_SQL = (
    VIEW_SQL.format(chunk_text="c.events || E'\\n' || c.messages")
    + INDEX_SQL.format(key="", chunk_text=OLD_TEXT)
    + "DROP FUNCTION telemetry_log_chunk_text(text, text);\n"
)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0021_log_chunks_in_trace_hours")]

    operations = [migrations.RunSQL(FORWARD_SQL, REVERSE_SQL)]
