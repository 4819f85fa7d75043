"""Telemetry storage: daily range-partitioned tables, rollup views, series and job runs.

The partitioned tables and the materialized views are raw SQL (Django can declare neither);
their models are state-only (`managed = False`). Index choices are explained in
docs/benchmarks.md, section "Storage". The SQL and the daily partitions are frozen as this migration ran
them: nothing here imports today's schema code (telemetry.partitions, telemetry.contract), so a fresh
database migrates the same way after that code changes.
"""

from datetime import UTC, datetime, time, timedelta

import django.contrib.postgres.fields
from django.db import migrations, models
from django.utils import timezone

PARTITIONED_TABLES_SQL = """
CREATE TABLE telemetry_metric_samples (
    ts            timestamptz      NOT NULL,
    value_count   bigint           NULL,
    value_sum     double precision NULL,
    value_p50     double precision NULL,
    value_p95     double precision NULL,
    value_p99     double precision NULL,
    metric_name   text             NOT NULL,
    scope         text             NOT NULL DEFAULT 'cluster',
    labels        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    bucket_bounds double precision[] NULL,
    bucket_counts bigint[]         NULL
) PARTITION BY RANGE (ts);
-- The sample key. Hashing the label set halves this index against keying on the jsonb itself
-- (labels are string-valued, and jsonb's text form is canonical, so equal sets hash equally).
CREATE UNIQUE INDEX telemetry_metric_samples_key
    ON telemetry_metric_samples (metric_name, ts, scope, (md5(labels::text)::uuid));
CREATE INDEX telemetry_metric_samples_ts_brin ON telemetry_metric_samples USING brin (ts);

CREATE TABLE telemetry_log_events (
    ts       timestamptz NOT NULL,
    id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    level    text        NOT NULL CHECK (level IN ('ERROR', 'WARN')),
    service  text        NOT NULL,
    domain   text        NOT NULL,
    event    text        NOT NULL,
    message  text        NOT NULL,
    trace_id text        NULL,
    span_id  text        NULL,
    attrs    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT telemetry_log_events_pkey PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
-- Lists read newest first by (ts, id) = the primary key. Only a rare domain needs its own index;
-- a level is never rare enough to beat scanning the key (WARN and ERROR are the only levels kept).
CREATE INDEX telemetry_log_events_domain_ts ON telemetry_log_events (domain, ts);
CREATE INDEX telemetry_log_events_trace_id ON telemetry_log_events USING hash (trace_id)
    WHERE trace_id IS NOT NULL;

CREATE TABLE telemetry_trace_index (
    ts          timestamptz NOT NULL,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    duration_ms integer     NOT NULL,
    trace_id    text        NOT NULL,
    span_name   text        NOT NULL,
    domain      text        NOT NULL,
    route       text        NULL,
    status_code text        NULL,
    service     text        NOT NULL,
    CONSTRAINT telemetry_trace_index_pkey PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
-- Lists read newest first by (ts, id) = the primary key, filters applied on the way: a kept span is
-- an error, slow or sampled one, so error/slow filters are not rare. "Top slow db queries" needs
-- (domain, duration); trace look-ups are equality only, which a hash index serves at half the size.
CREATE INDEX telemetry_trace_index_domain_duration ON telemetry_trace_index (domain, duration_ms);
CREATE INDEX telemetry_trace_index_trace_id ON telemetry_trace_index USING hash (trace_id);

CREATE TABLE connection_sessions (
    started_at timestamptz NOT NULL,
    ended_at   timestamptz NULL,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    outcome    text        NULL CHECK (outcome IN ('normal', 'crash')),
    CONSTRAINT connection_sessions_pkey PRIMARY KEY (started_at, id)
) PARTITION BY RANGE (started_at);
CREATE INDEX connection_sessions_open ON connection_sessions (started_at) WHERE ended_at IS NULL;

CREATE TABLE connection_metrics (
    ts          timestamptz      NOT NULL,
    packet_loss double precision NULL CHECK (packet_loss BETWEEN 0 AND 100),
    session_id  uuid             NOT NULL,
    latency_ms  integer          NULL,
    jitter_ms   integer          NULL,
    quality     smallint         NULL CHECK (quality BETWEEN 0 AND 3),
    CONSTRAINT connection_metrics_pkey PRIMARY KEY (ts, session_id)
) PARTITION BY RANGE (ts);

CREATE TABLE telemetry_metric_samples_default PARTITION OF telemetry_metric_samples DEFAULT;
CREATE TABLE telemetry_log_events_default PARTITION OF telemetry_log_events DEFAULT;
CREATE TABLE telemetry_trace_index_default PARTITION OF telemetry_trace_index DEFAULT;
CREATE TABLE connection_sessions_default PARTITION OF connection_sessions DEFAULT;
CREATE TABLE connection_metrics_default PARTITION OF connection_metrics DEFAULT;
"""

DROP_PARTITIONED_TABLES_SQL = """
DROP TABLE telemetry_metric_samples, telemetry_log_events, telemetry_trace_index,
           connection_sessions, connection_metrics;
"""

# Element-wise sum of histogram bucket counts; rows are grouped by their bounds first, so the
# arrays being added always describe the same buckets. PL/pgSQL updates the aggregate state in
# place, which measured 8 times faster than an SQL function rebuilding the array per row.
BUCKET_SUM_SQL = """
CREATE FUNCTION telemetry_bucket_add(state bigint[], counts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    FOR i IN 1 .. cardinality(counts) LOOP
        state[i] := coalesce(state[i], 0) + counts[i];
    END LOOP;
    RETURN state;
END
$$;
CREATE AGGREGATE telemetry_bucket_sum(bigint[]) (
    SFUNC = telemetry_bucket_add, STYPE = bigint[], COMBINEFUNC = telemetry_bucket_add, PARALLEL = SAFE
);
"""

DROP_BUCKET_SUM_SQL = """
DROP AGGREGATE telemetry_bucket_sum(bigint[]);
DROP FUNCTION telemetry_bucket_add(bigint[], bigint[]);
"""

# The daily view is built from the hourly one (24 times fewer rows to merge). Bucket bounds are
# part of the key, so samples with different bounds are never summed together. avg_p95 of a day
# weights each hour by its sample count. last_value takes the value of the latest sample through
# max() over [time, value] arrays: unlike an ordered aggregate it allows hash aggregation.
ROLLUPS_SQL = """
CREATE MATERIALIZED VIEW telemetry_trend_rollups_hourly AS
SELECT hour, metric_name, scope, labels ->> 'http.route' AS route, labels, bucket_bounds,
       sample_count, first_ts, last_ts, total_count, error_count, total_sum, max_value, last_value,
       avg_p95, max_p95, bucket_counts
FROM (
SELECT date_trunc('hour', ts, 'UTC') AS hour,
       metric_name,
       scope,
       labels,
       coalesce(bucket_bounds, '{}') AS bucket_bounds,
       count(*) AS sample_count,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       sum(value_count)::bigint AS total_count,
       coalesce(sum(value_count) FILTER (
           WHERE left(labels ->> 'http.response.status_code', 1) = '5'), 0)::bigint AS error_count,
       sum(value_sum) AS total_sum,
       max(value_sum) AS max_value,
       (max(ARRAY[extract(epoch FROM ts)::float8, value_sum]))[2] AS last_value,
       avg(value_p95) AS avg_p95,
       max(value_p95) AS max_p95,
       telemetry_bucket_sum(bucket_counts) AS bucket_counts
FROM telemetry_metric_samples
GROUP BY 1, 2, 3, 4, 5
) AS hours;
CREATE UNIQUE INDEX telemetry_trend_rollups_hourly_key
    ON telemetry_trend_rollups_hourly (hour, metric_name, scope, labels, bucket_bounds);
CREATE INDEX telemetry_trend_rollups_hourly_metric ON telemetry_trend_rollups_hourly (metric_name, hour);

CREATE MATERIALIZED VIEW telemetry_trend_rollups AS
SELECT date_trunc('day', hour, 'UTC') AS day,
       metric_name,
       scope,
       route,
       labels,
       bucket_bounds,
       sum(sample_count)::bigint AS sample_count,
       min(first_ts) AS first_ts,
       max(last_ts) AS last_ts,
       sum(total_count)::bigint AS total_count,
       sum(error_count)::bigint AS error_count,
       sum(total_sum) AS total_sum,
       max(max_value) AS max_value,
       (max(ARRAY[extract(epoch FROM last_ts)::float8, last_value]))[2] AS last_value,
       sum(avg_p95 * sample_count) / nullif(sum(sample_count) FILTER (WHERE avg_p95 IS NOT NULL), 0)
           AS avg_p95,
       max(max_p95) AS max_p95,
       telemetry_bucket_sum(bucket_counts) AS bucket_counts
FROM telemetry_trend_rollups_hourly
GROUP BY day, metric_name, scope, route, labels, bucket_bounds;
CREATE UNIQUE INDEX telemetry_trend_rollups_key
    ON telemetry_trend_rollups (day, metric_name, scope, labels, bucket_bounds);
CREATE INDEX telemetry_trend_rollups_metric ON telemetry_trend_rollups (metric_name, day);
"""

DROP_ROLLUPS_SQL = """
DROP MATERIALIZED VIEW telemetry_trend_rollups;
DROP MATERIALIZED VIEW telemetry_trend_rollups_hourly;
"""


# Daily partitions from PARTITION_DAYS_BACK days before today to PARTITION_DAYS_AHEAD after (what
# telemetry.partitions.ensure_partitions ran at the time); later ones are created by the partition job.
PARTITION_DAYS_BACK = 31
PARTITION_DAYS_AHEAD = 3
PARTITIONED_TABLES = [
    "telemetry_metric_samples", "telemetry_log_events", "telemetry_trace_index", "connection_sessions",
    "connection_metrics",
]


def create_day_partitions(cursor, table: str) -> list[str]:
    """The partitions `<table>_pYYYYMMDD` of the days around today, for a table this migration (or a later one)
    has just created and not filled yet: nothing sits in its default partition, so each is a plain CREATE.
    Takes the lock the partition job takes for the table."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", ["telemetry.partitions", table])
    today = timezone.now().astimezone(UTC).date()
    created = []
    for offset in range(-PARTITION_DAYS_BACK, PARTITION_DAYS_AHEAD + 1):
        day = today + timedelta(days=offset)
        start = datetime.combine(day, time.min, tzinfo=UTC)
        end = start + timedelta(days=1)
        name = f"{table}_p{day:%Y%m%d}"
        cursor.execute(f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}"'
                       f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
        created.append(name)
    return created


def create_daily_partitions(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in PARTITIONED_TABLES:
            create_day_partitions(cursor, table)


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name='JobRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('job', models.TextField()),
                ('started_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField()),
                ('duration_ms', models.IntegerField()),
                ('ok', models.BooleanField()),
                ('details', models.JSONField(default=dict)),
            ],
            options={
                'db_table': 'telemetry_job_runs',
                'indexes': [models.Index(fields=['job', '-started_at'], name='telemetry_job_runs_job_started')],
            },
        ),
        migrations.CreateModel(
            name='Series',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('metric_name', models.TextField()),
                ('labels', models.JSONField(default=dict)),
                ('first_seen', models.DateTimeField()),
                ('last_seen', models.DateTimeField()),
            ],
            options={
                'verbose_name_plural': 'series',
                'db_table': 'telemetry_series',
                'indexes': [models.Index(fields=['metric_name', 'last_seen'], name='telemetry_series_metric_seen')],
                'constraints': [models.UniqueConstraint(fields=('metric_name', 'labels'), name='telemetry_series_metric_labels_uniq')],
            },
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(BUCKET_SUM_SQL, DROP_BUCKET_SUM_SQL),
                migrations.RunSQL(PARTITIONED_TABLES_SQL, DROP_PARTITIONED_TABLES_SQL),
                migrations.RunSQL(ROLLUPS_SQL, DROP_ROLLUPS_SQL),
            ],
            state_operations=[
                    migrations.CreateModel(
                name='ConnectionMetric',
                fields=[
                    ('pk', models.CompositePrimaryKey('session_id', 'ts', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('ts', models.DateTimeField()),
                    ('session_id', models.UUIDField()),
                    ('latency_ms', models.IntegerField(null=True)),
                    ('packet_loss', models.FloatField(null=True)),
                    ('jitter_ms', models.IntegerField(null=True)),
                    ('quality', models.SmallIntegerField(null=True)),
                ],
                options={
                    'db_table': 'connection_metrics',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='ConnectionSession',
                fields=[
                    ('pk', models.CompositePrimaryKey('id', 'started_at', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('id', models.UUIDField()),
                    ('started_at', models.DateTimeField()),
                    ('ended_at', models.DateTimeField(null=True)),
                    ('outcome', models.TextField(null=True)),
                ],
                options={
                    'db_table': 'connection_sessions',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='DailyTrendRollup',
                fields=[
                    ('metric_name', models.TextField()),
                    ('scope', models.TextField()),
                    ('route', models.TextField(null=True)),
                    ('labels', models.JSONField()),
                    ('bucket_bounds', django.contrib.postgres.fields.ArrayField(base_field=models.FloatField(), size=None)),
                    ('sample_count', models.BigIntegerField()),
                    ('first_ts', models.DateTimeField()),
                    ('last_ts', models.DateTimeField()),
                    ('total_count', models.BigIntegerField(null=True)),
                    ('error_count', models.BigIntegerField()),
                    ('total_sum', models.FloatField(null=True)),
                    ('max_value', models.FloatField(null=True)),
                    ('last_value', models.FloatField(null=True)),
                    ('avg_p95', models.FloatField(null=True)),
                    ('max_p95', models.FloatField(null=True)),
                    ('bucket_counts', django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), null=True, size=None)),
                    ('pk', models.CompositePrimaryKey('day', 'metric_name', 'scope', 'labels', 'bucket_bounds', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('day', models.DateTimeField()),
                ],
                options={
                    'db_table': 'telemetry_trend_rollups',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='HourlyTrendRollup',
                fields=[
                    ('metric_name', models.TextField()),
                    ('scope', models.TextField()),
                    ('route', models.TextField(null=True)),
                    ('labels', models.JSONField()),
                    ('bucket_bounds', django.contrib.postgres.fields.ArrayField(base_field=models.FloatField(), size=None)),
                    ('sample_count', models.BigIntegerField()),
                    ('first_ts', models.DateTimeField()),
                    ('last_ts', models.DateTimeField()),
                    ('total_count', models.BigIntegerField(null=True)),
                    ('error_count', models.BigIntegerField()),
                    ('total_sum', models.FloatField(null=True)),
                    ('max_value', models.FloatField(null=True)),
                    ('last_value', models.FloatField(null=True)),
                    ('avg_p95', models.FloatField(null=True)),
                    ('max_p95', models.FloatField(null=True)),
                    ('bucket_counts', django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), null=True, size=None)),
                    ('pk', models.CompositePrimaryKey('hour', 'metric_name', 'scope', 'labels', 'bucket_bounds', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('hour', models.DateTimeField()),
                ],
                options={
                    'db_table': 'telemetry_trend_rollups_hourly',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='LogEvent',
                fields=[
                    ('pk', models.CompositePrimaryKey('id', 'ts', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('id', models.UUIDField()),
                    ('ts', models.DateTimeField()),
                    ('level', models.TextField()),
                    ('service', models.TextField()),
                    ('domain', models.TextField()),
                    ('event', models.TextField()),
                    ('message', models.TextField()),
                    ('trace_id', models.TextField(null=True)),
                    ('span_id', models.TextField(null=True)),
                    ('attrs', models.JSONField(default=dict)),
                ],
                options={
                    'db_table': 'telemetry_log_events',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='MetricSample',
                fields=[
                    ('pk', models.CompositePrimaryKey('metric_name', 'ts', 'scope', 'labels', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('ts', models.DateTimeField()),
                    ('metric_name', models.TextField()),
                    ('scope', models.TextField(default='cluster')),
                    ('labels', models.JSONField(default=dict)),
                    ('value_count', models.BigIntegerField(null=True)),
                    ('value_sum', models.FloatField(null=True)),
                    ('value_p50', models.FloatField(null=True)),
                    ('value_p95', models.FloatField(null=True)),
                    ('value_p99', models.FloatField(null=True)),
                    ('bucket_bounds', django.contrib.postgres.fields.ArrayField(base_field=models.FloatField(), null=True, size=None)),
                    ('bucket_counts', django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), null=True, size=None)),
                ],
                options={
                    'db_table': 'telemetry_metric_samples',
                    'managed': False,
                },
            ),
                    migrations.CreateModel(
                name='TraceIndexEntry',
                fields=[
                    ('pk', models.CompositePrimaryKey('id', 'ts', blank=True, editable=False, primary_key=True, serialize=False)),
                    ('id', models.UUIDField()),
                    ('ts', models.DateTimeField()),
                    ('trace_id', models.TextField()),
                    ('span_name', models.TextField()),
                    ('domain', models.TextField()),
                    ('route', models.TextField(null=True)),
                    ('status_code', models.TextField(null=True)),
                    ('duration_ms', models.IntegerField()),
                    ('service', models.TextField()),
                ],
                options={
                    'db_table': 'telemetry_trace_index',
                    'managed': False,
                },
            ),
            ],
        ),
        migrations.RunPython(create_daily_partitions, migrations.RunPython.noop),
    ]
