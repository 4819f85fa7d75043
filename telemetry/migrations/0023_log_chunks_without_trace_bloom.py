"""Log chunks lose their Bloom filter of trace ids (~1.3 bytes a log record): since migration 0021 the logs of a
trace are found through the hourly filter, as spans are, and nothing reads it.

The view drops its `chunk_trace_bloom` column (otherwise the view of migration 0022), the insert trigger computes the
digit 5-gram filter only. Existing chunks keep the dropped column's bytes until they are rewritten (re-packed, or
gone with retention): PostgreSQL drops a column without rewriting the table. Reverse: the column comes back, filled
for every chunk. The SQL is frozen as this migration runs it.
"""

from django.db import migrations

VIEW_SQL = r"""
CREATE VIEW telemetry_log_events_all AS
SELECT e.ts,
       telemetry_log_row_id(e.ts, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id,
                            e.attrs) AS id,
       e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts AS chunk_first_ts, e.ts AS chunk_last_ts,{bloom_hot}
       e.event || E'\n' || e.message AS chunk_text, false AS chunk_packed, NULL::bytea AS chunk_digit_bloom
FROM telemetry_log_events e
UNION ALL
SELECT telemetry_log_ts(c.first_ts, u.ts),
       telemetry_log_row_id(telemetry_log_ts(c.first_ts, u.ts), c.level, u.service, u.domain, u.event, u.message,
                            replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs),
       c.level, u.service, u.domain, u.event, u.message,
       replace(u.trace_id::text, '-', ''), lpad(to_hex(u.span_id), 16, '0'), u.attrs,
       c.first_ts, c.last_ts,{bloom_packed} telemetry_log_chunk_text(c.events, c.messages), true, c.digit_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(c.ts, c.services, c.domains, telemetry_split_joined(c.events, c.row_count),
                          telemetry_split_joined(c.messages, c.row_count), c.trace_ids, c.span_ids, c.attrs)
    AS u(ts, service, domain, event, message, trace_id, span_id, attrs);
COMMENT ON VIEW telemetry_log_events_all IS 'every stored log record: hot rows and packed chunks unnested';
"""

TRIGGER_SQL = r"""
CREATE OR REPLACE FUNCTION telemetry_log_chunk_blooms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{trace_bloom}
    NEW.digit_bloom := telemetry_trace_bloom(ARRAY(
        SELECT md5(gram::text)::uuid FROM unnest(telemetry_digit_grams(NEW.events || E'\n' || NEW.messages)) gram));
    RETURN NEW;
END
$$;
"""

FORWARD_SQL = (
    "DROP VIEW telemetry_log_events_all;\n"
    + TRIGGER_SQL.format(trace_bloom="")
    + "ALTER TABLE telemetry_log_chunks DROP COLUMN trace_bloom;\n"
    + VIEW_SQL.format(bloom_hot="", bloom_packed="")
)
REVERSE_SQL = (
    "DROP VIEW telemetry_log_events_all;\n"
    + "ALTER TABLE telemetry_log_chunks ADD COLUMN trace_bloom bytea NULL;\n"
    + "UPDATE telemetry_log_chunks SET trace_bloom = telemetry_trace_bloom(trace_ids);\n"
    + TRIGGER_SQL.format(trace_bloom="\n    NEW.trace_bloom := telemetry_trace_bloom(NEW.trace_ids);")
    + VIEW_SQL.format(bloom_hot=" NULL::bytea AS chunk_trace_bloom,", bloom_packed=" c.trace_bloom,")
)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0022_log_chunk_text_cost")]

    operations = [
        migrations.RunSQL(FORWARD_SQL, REVERSE_SQL),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(model_name="storedlogevent", name="chunk_trace_bloom"),
        ]),
    ]
