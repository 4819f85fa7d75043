"""One trace's spans are read through a function, `telemetry_spans_of_trace(trace, chunk_starts)`, in place of the view
`telemetry_trace_index_lookup` (migration 0017).

The view could only unnest every trace id of each chunk holding the trace and keep the positions that match; the
function is handed the trace id, so `array_positions` finds them in the array itself, and it reads each other column at
those positions only, once a row (OFFSET 0 keeps the subscripts from being repeated in every condition on them). It is
plain SQL, so PostgreSQL inlines it into the calling query with its arguments as constants: the chunk partitions are
pruned by `chunk_starts` (the chunks the hour filter names, `queries.stored.chunks_of_trace`), the hot partitions by
the caller's conditions on `ts`, and those conditions reach both sides. Its columns are the view's, so the model and
every filter on it stay as they were. The SQL is frozen as this migration runs it.
"""

from django.db import migrations

FUNCTION_SQL = r"""
CREATE FUNCTION telemetry_spans_of_trace(trace uuid, chunk_starts timestamptz[])
RETURNS TABLE (ts timestamptz, id uuid, duration_ms integer, trace_id text, span_name text, domain text, route text,
               status_code text, service text, kept_reason "char", chunk_first_ts timestamptz,
               chunk_last_ts timestamptz, chunk_packed boolean, chunk_trace_uuid uuid)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts, t.ts, false, trace
FROM telemetry_trace_index t
WHERE t.trace_id = replace(trace::text, '-', '')
UNION ALL
SELECT r.ts, r.id, r.duration_ms, replace(trace::text, '-', ''), r.span_name, c.domain, r.route, r.status_code,
       c.service, r.kept_reason, c.first_ts, c.last_ts, true, trace
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(array_positions(c.trace_ids, trace)) AS p(n)
-- OFFSET 0 keeps the subscripts in this subquery: each array is read once a row, whatever conditions the caller
-- puts on these columns (flattened, every mention of ts in them read the whole array again: twice the time).
CROSS JOIN LATERAL (SELECT c.ts[p.n] AS ts, coalesce(c.ids[p.n], telemetry_span_row_id(trace, c.span_ids[p.n])) AS id,
                           c.duration_ms[p.n] AS duration_ms, c.span_name[p.n] AS span_name, c.route[p.n] AS route,
                           c.status_code[p.n] AS status_code, c.kept_reason[p.n] AS kept_reason OFFSET 0) AS r
WHERE c.first_ts = ANY(chunk_starts)
$$;
COMMENT ON FUNCTION telemetry_spans_of_trace(uuid, timestamptz[]) IS
    'the spans of one trace: hot rows and the rows of the chunks that begin at chunk_starts; '
    'see telemetry.queries.stored';
DROP VIEW telemetry_trace_index_lookup;
"""

VIEW_SQL = r"""
CREATE VIEW telemetry_trace_index_lookup AS
SELECT t.ts, t.id, t.duration_ms, t.trace_id, t.span_name, t.domain, t.route, t.status_code, t.service,
       t.kept_reason, t.ts AS chunk_first_ts, t.ts AS chunk_last_ts, false AS chunk_packed,
       t.trace_id::uuid AS chunk_trace_uuid
FROM telemetry_trace_index t
UNION ALL
SELECT c.ts[p.n], coalesce(c.ids[p.n], telemetry_span_row_id(p.trace_id, c.span_ids[p.n])), c.duration_ms[p.n],
       replace(p.trace_id::text, '-', ''), c.span_name[p.n], c.domain, c.route[p.n], c.status_code[p.n], c.service,
       c.kept_reason[p.n], c.first_ts, c.last_ts, true, p.trace_id
FROM telemetry_trace_chunks c
CROSS JOIN LATERAL unnest(c.trace_ids) WITH ORDINALITY AS p(trace_id, n);
COMMENT ON VIEW telemetry_trace_index_lookup IS
    'telemetry_trace_index_all read position by position: for conditions on chunk_trace_uuid (one trace)';
DROP FUNCTION telemetry_spans_of_trace(uuid, timestamptz[]);
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0024_trace_hours_written_once")]

    operations = [
        migrations.RunSQL(FUNCTION_SQL, VIEW_SQL),
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterModelTable(name="storedtracelookup", table="telemetry_spans_of_trace"),
        ]),
    ]
