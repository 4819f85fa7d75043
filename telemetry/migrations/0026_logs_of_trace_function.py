"""One trace's log records are read through a function, `telemetry_logs_of_trace(trace, chunk_starts)`, as its spans are
since migration 0025.

Through the view `telemetry_log_events_all`, each log chunk holding the trace was unpacked whole: its events and
messages split into arrays of up to 3,000 values and every column unnested, to keep the few rows of the trace. The
function finds the trace's positions in the chunk's trace ids (`array_positions`) and reads only those: a subscript of
each array, the n-th value of the joined events and messages (`split_part`: the separator never occurs in stored
text, migration 0016), each once a row. It is plain SQL, inlined into the calling query with its arguments as
constants, and the caller's conditions reach both sides (as for spans, migration 0025). Its columns are the view's.
The view stays: every other read of logs goes through it. The SQL is frozen as this migration runs it.
"""

from django.db import migrations, models

FUNCTION_SQL = r"""
CREATE FUNCTION telemetry_logs_of_trace(trace uuid, chunk_starts timestamptz[])
RETURNS TABLE (ts timestamptz, id uuid, level text, service text, domain text, event text, message text,
               trace_id text, span_id text, attrs jsonb, chunk_first_ts timestamptz, chunk_last_ts timestamptz,
               chunk_text text, chunk_packed boolean, chunk_digit_bloom bytea)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT e.ts,
       telemetry_log_row_id(e.ts, e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs),
       e.level, e.service, e.domain, e.event, e.message, e.trace_id, e.span_id, e.attrs,
       e.ts, e.ts, e.event || E'\n' || e.message, false, NULL::bytea
FROM telemetry_log_events e
WHERE e.trace_id = replace(trace::text, '-', '')
UNION ALL
SELECT r.ts,
       telemetry_log_row_id(r.ts, c.level, r.service, r.domain, r.event, r.message, replace(trace::text, '-', ''),
                            r.span_id, r.attrs),
       c.level, r.service, r.domain, r.event, r.message, replace(trace::text, '-', ''), r.span_id, r.attrs,
       c.first_ts, c.last_ts, telemetry_log_chunk_text(c.events, c.messages), true, c.digit_bloom
FROM telemetry_log_chunks c
CROSS JOIN LATERAL unnest(array_positions(c.trace_ids, trace)) AS p(n)
-- OFFSET 0 keeps the values in this subquery: each array and text is read once a row (see migration 0025).
CROSS JOIN LATERAL (SELECT telemetry_log_ts(c.first_ts, c.ts[p.n]) AS ts,
                           split_part(c.events, E'\x1e', p.n) AS event,
                           split_part(c.messages, E'\x1e', p.n) AS message,
                           lpad(to_hex(c.span_ids[p.n]), 16, '0') AS span_id,
                           c.services[p.n] AS service, c.domains[p.n] AS domain, c.attrs[p.n] AS attrs OFFSET 0) AS r
WHERE c.first_ts = ANY(chunk_starts)
$$;
COMMENT ON FUNCTION telemetry_logs_of_trace(uuid, timestamptz[]) IS
    'the log records of one trace: hot rows and the rows of the chunks that begin at chunk_starts; '
    'see telemetry.queries.stored';
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0025_spans_of_trace_function")]

    operations = [
        migrations.RunSQL(FUNCTION_SQL, "DROP FUNCTION telemetry_logs_of_trace(uuid, timestamptz[]);"),
        migrations.CreateModel(
            name="StoredLogLookup",
            fields=[
                ("pk", models.CompositePrimaryKey("id", "ts", blank=True, editable=False, primary_key=True,
                                                  serialize=False)),
                ("id", models.UUIDField()),
                ("ts", models.DateTimeField()),
                ("level", models.TextField()),
                ("service", models.TextField()),
                ("domain", models.TextField()),
                ("event", models.TextField()),
                ("message", models.TextField()),
                ("trace_id", models.TextField(null=True)),
                ("span_id", models.TextField(null=True)),
                ("attrs", models.JSONField(default=dict)),
                ("chunk_first_ts", models.DateTimeField()),
                ("chunk_last_ts", models.DateTimeField()),
                ("chunk_text", models.TextField(null=True)),
                ("chunk_packed", models.BooleanField(default=False)),
                ("chunk_digit_bloom", models.BinaryField(null=True)),
            ],
            options={"db_table": "telemetry_logs_of_trace", "managed": False},
        ),
    ]
