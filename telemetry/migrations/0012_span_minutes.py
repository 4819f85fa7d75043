"""Span aggregates: kept spans counted per minute and per hour at ingest, so span breakdowns never unpack spans.

`telemetry_span_minutes` (one row per UTC minute, service, domain, route and kept reason) and
`telemetry_span_hours` (the same per UTC hour) hold `spans`, `errors` and `buckets`, the span durations
counted on the live windows' latency bounds (ms, telemetry.live_windows.LATENCY_BOUNDS_MS: bucket i is
(bound[i-1], bound[i]], the last one +Inf). A statement trigger on `telemetry_trace_index` adds the rows each
INSERT actually stored (its transition table: rows skipped by ON CONFLICT DO NOTHING are not in it), in the
inserting transaction, with ON CONFLICT ... DO UPDATE in key order; telemetry/span_aggregates.py says why.

`telemetry_span_is_error(status_code, kept_reason)` is the SQL form of "this stored span is an error"
(telemetry/span_errors.py): kept because it failed or answered 5xx, or its status says so (rows stored
without a reason). Both tables are partitioned by day like the other minute tables (telemetry.partitions);
retention purges them (telemetry.retention). Existing spans, hot and packed, are counted once at the end
(reading every chunk: about a minute per 30 days at `heavy` on this machine's class of hardware).
The SQL is frozen as this migration runs it.
"""

import importlib

from django.db import migrations

BOUNDS = "'{5,10,25,50,75,100,150,200,250,300,400,500,750,1000,1500,2000,2500,3000,5000,7500,10000}'::integer[]"

TABLE_SQL = """
CREATE TABLE {table} (
    {ts}        timestamptz NOT NULL,
    service     text        NOT NULL,
    domain      text        NOT NULL,
    route       text        NOT NULL,
    kept_reason "char"      NOT NULL,
    spans       integer     NOT NULL,
    errors      integer     NOT NULL,
    buckets     integer[]   NOT NULL
) PARTITION BY RANGE ({ts});
CREATE UNIQUE INDEX {table}_key ON {table} ({ts}, service, domain, route, kept_reason);
CREATE TABLE {table}_default PARTITION OF {table} DEFAULT;
COMMENT ON TABLE {table} IS
    'kept spans per {unit}, service, domain, route (empty: none), kept_reason (-: none); see telemetry.span_aggregates';
"""


def add_sql(source: str, unit: str) -> str:
    """The statement adding the spans of `source` to the table of `unit` ('minute' or 'hour')."""
    table, column = ("telemetry_span_minutes", "ts") if unit == "minute" else ("telemetry_span_hours", "hour")
    return f"""
    WITH per_bucket AS (
        SELECT date_trunc('{unit}', ts, 'UTC') AS time, service, domain, coalesce(route, '') AS route,
               coalesce(kept_reason, '-') AS kept_reason, telemetry_span_bucket(duration_ms) AS bucket,
               count(*)::integer AS spans,
               (count(*) FILTER (WHERE telemetry_span_is_error(status_code, kept_reason)))::integer AS errors
        FROM {source} GROUP BY 1, 2, 3, 4, 5, 6
    ),
    per_key AS (
        SELECT time, service, domain, route, kept_reason, sum(spans)::integer AS spans,
               sum(errors)::integer AS errors,
               ARRAY(SELECT coalesce(sum(u.n), 0)::integer FROM generate_series(0, 21) AS g
                     LEFT JOIN unnest(array_agg(bucket), array_agg(spans)) AS u(b, n) ON u.b = g
                     GROUP BY g ORDER BY g) AS buckets
        FROM per_bucket GROUP BY 1, 2, 3, 4, 5
    )
    INSERT INTO {table} AS t
    SELECT * FROM per_key ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({column}, service, domain, route, kept_reason) DO UPDATE
    SET spans = t.spans + excluded.spans, errors = t.errors + excluded.errors,
        buckets = telemetry_int_array_add(t.buckets, excluded.buckets)"""


SQL = (
    TABLE_SQL.format(table="telemetry_span_minutes", ts="ts", unit="minute")
    + TABLE_SQL.format(table="telemetry_span_hours", ts="hour", unit="hour")
    + f"""
CREATE FUNCTION telemetry_span_is_error(status_code text, kept_reason "char") RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(kept_reason = 'e', false) OR coalesce(status_code = 'ERROR' OR status_code ~ '^5[0-9][0-9]$', false)
$$;

-- The bucket of a whole number of milliseconds: (bound[i-1], bound[i]] is bucket i (0-based), past the last +Inf.
CREATE FUNCTION telemetry_span_bucket(duration_ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT width_bucket(duration_ms - 1, {BOUNDS}) $$;

CREATE FUNCTION telemetry_int_array_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i) FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i)
$$;

-- Adds the spans of a relation (`source`) to both tables: the minutes first, then the hours, each in key
-- order, so concurrent writers lock rows in one order. The trigger runs it as static SQL over its transition
-- table (planned once per session); `telemetry_span_aggregates_add_from` runs it over any table (rebuilds).
CREATE FUNCTION telemetry_span_aggregates_add_from(source text) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($q${add_sql("%1$I", "minute")}$q$, source);
    EXECUTE format($q${add_sql("%1$I", "hour")}$q$, source);
END
$fn$;

CREATE FUNCTION telemetry_span_aggregates_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {add_sql("stored_spans", "minute")};
    {add_sql("stored_spans", "hour")};
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_trace_index_span_aggregates AFTER INSERT ON telemetry_trace_index
    REFERENCING NEW TABLE AS stored_spans
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_span_aggregates_after_insert();

CREATE FUNCTION telemetry_span_aggregates_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- DELETE, not TRUNCATE: the same TRUNCATE statement may name these tables too.
    DELETE FROM telemetry_span_minutes;
    DELETE FROM telemetry_span_hours;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_trace_index_span_aggregates_truncated AFTER TRUNCATE ON telemetry_trace_index
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_span_aggregates_clear();
"""
)

BACKFILL_SQL = """
CREATE TEMPORARY TABLE telemetry_span_backfill ON COMMIT DROP AS
    SELECT ts, service, domain, route, kept_reason, duration_ms, status_code FROM telemetry_trace_index_all;
SELECT telemetry_span_aggregates_add_from('telemetry_span_backfill');
"""

REVERSE_SQL = """
DROP TRIGGER telemetry_trace_index_span_aggregates_truncated ON telemetry_trace_index;
DROP TRIGGER telemetry_trace_index_span_aggregates ON telemetry_trace_index;
DROP FUNCTION telemetry_span_aggregates_clear();
DROP FUNCTION telemetry_span_aggregates_after_insert();
DROP FUNCTION telemetry_span_aggregates_add_from(text);
DROP FUNCTION telemetry_int_array_add(integer[], integer[]);
DROP FUNCTION telemetry_span_bucket(integer);
DROP FUNCTION telemetry_span_is_error(text, "char");
DROP TABLE telemetry_span_hours;
DROP TABLE telemetry_span_minutes;
"""


# The daily partitions as migration 0001 creates them (frozen there).
V0001 = importlib.import_module("telemetry.migrations.0001_initial")


def create_partitions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in ("telemetry_span_minutes", "telemetry_span_hours"):
            V0001.create_day_partitions(cursor, table)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0011_trigram_extension")]

    operations = [
        migrations.RunSQL(SQL, REVERSE_SQL),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
        migrations.RunSQL(BACKFILL_SQL, migrations.RunSQL.noop),
    ]
