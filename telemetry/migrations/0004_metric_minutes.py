"""`telemetry_metric_minutes`: every label set of a metric merged per minute (see telemetry/minutes.py).

A cache miss of an unlabelled 24-hour chart merged 144,000 latency samples at `heavy`; the minute table
holds about 1,440 rows for it. Daily partitions like the samples; filled from the existing samples here.

The SQL is frozen as this migration created it (the layout of telemetry/minutes.py at the time): migration
0008 converts this layout to the next one, so the module's SQL must not leak into this step. So are the daily
partitions (`create_day_partitions` of migration 0001, what `telemetry.partitions.ensure_partitions` ran at the
time; migration 0007 uses it too).
"""

import importlib

import django.contrib.postgres.fields
from django.db import migrations, models

MINUTES_TABLE = "telemetry_metric_minutes"

SCHEMA_SQL = """
CREATE TABLE telemetry_metric_minutes (
    ts            timestamptz        NOT NULL,
    metric_name   text               NOT NULL,
    scope         text               NOT NULL,
    split         text               NOT NULL,
    bucket_bounds double precision[] NOT NULL,
    sample_rows   integer            NOT NULL,
    value_count   bigint             NULL,
    value_sum     double precision   NULL,
    total         double precision   NULL,
    bucket_counts bigint[]           NULL
) PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX telemetry_metric_minutes_key
    ON telemetry_metric_minutes (metric_name, ts, scope, split, bucket_bounds);
CREATE TABLE telemetry_metric_minutes_default PARTITION OF telemetry_metric_minutes DEFAULT;

CREATE FUNCTION telemetry_metric_minute_split(metric_name text, labels jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE metric_name WHEN 'kaiku_http_requests_total'
    THEN coalesce(left(labels ->> 'http.response.status_code', 1), '') WHEN 'kaiku_voice_joins_total'
    THEN coalesce(labels ->> 'outcome', '') WHEN 'kaiku_voice_sessions_ended_total'
    THEN coalesce(labels ->> 'outcome', '')
    ELSE '' END $$;

CREATE FUNCTION telemetry_recompute_metric_minutes(metric_names text[], scopes text[], minutes timestamptz[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    low timestamptz;
    high timestamptz;
    written bigint;
BEGIN
    SELECT min(m), max(m) INTO low, high FROM unnest(minutes) AS m;
    IF low IS NULL THEN
        RETURN 0;
    END IF;
    -- Writers of samples hold this lock until they commit, so the samples read below are all committed
    -- ones and no other transaction rebuilds the same minutes concurrently.
    PERFORM pg_advisory_xact_lock(hashtext('telemetry.metric_samples'));
    DELETE FROM telemetry_metric_minutes AS t
    USING unnest(metric_names, scopes, minutes) AS k(metric_name, scope, ts)
    WHERE t.ts >= low AND t.ts <= high
      AND t.metric_name = k.metric_name AND t.scope = k.scope AND t.ts = k.ts;
    INSERT INTO telemetry_metric_minutes (ts, metric_name, scope, split, bucket_bounds, sample_rows, value_count,
                                          value_sum, total, bucket_counts)
    SELECT s.ts, s.metric_name, s.scope,
               telemetry_metric_minute_split(s.metric_name, s.labels),
               coalesce(s.bucket_bounds, ARRAY[]::double precision[]),
               count(*), sum(s.value_count), sum(s.value_sum),
               sum(coalesce(s.value_sum, s.value_count)),
               telemetry_bucket_sum(s.bucket_counts)
    FROM telemetry_metric_samples AS s
    JOIN (SELECT DISTINCT * FROM unnest(metric_names, scopes, minutes) AS u(metric_name, scope, ts)) AS k
      ON s.metric_name = k.metric_name AND s.scope = k.scope AND s.ts = k.ts
    WHERE s.ts >= low AND s.ts <= high
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (metric_name, ts, scope, split, bucket_bounds) DO UPDATE SET sample_rows = EXCLUDED.sample_rows,
        value_count = EXCLUDED.value_count, value_sum = EXCLUDED.value_sum, total = EXCLUDED.total,
        bucket_counts = EXCLUDED.bucket_counts;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

CREATE FUNCTION telemetry_metric_minutes_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('telemetry.minutes_deferred', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM telemetry_recompute_metric_minutes(array_agg(metric_name), array_agg(scope), array_agg(ts))
    FROM (SELECT DISTINCT metric_name, scope, ts FROM changed_rows) AS touched;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_metric_samples_minutes_inserted AFTER INSERT ON telemetry_metric_samples
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_metric_minutes_after_write();
CREATE TRIGGER telemetry_metric_samples_minutes_updated AFTER UPDATE ON telemetry_metric_samples
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_metric_minutes_after_write();
CREATE FUNCTION telemetry_clear_metric_minutes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM telemetry_metric_minutes;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_metric_samples_minutes_truncated AFTER TRUNCATE ON telemetry_metric_samples
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_clear_metric_minutes();
"""

DROP_SCHEMA_SQL = """
DROP TRIGGER telemetry_metric_samples_minutes_inserted ON telemetry_metric_samples;
DROP TRIGGER telemetry_metric_samples_minutes_updated ON telemetry_metric_samples;
DROP TRIGGER telemetry_metric_samples_minutes_truncated ON telemetry_metric_samples;
DROP FUNCTION telemetry_metric_minutes_after_write();
DROP FUNCTION telemetry_clear_metric_minutes();
DROP FUNCTION telemetry_recompute_metric_minutes(text[], text[], timestamptz[]);
DROP TABLE telemetry_metric_minutes;
DROP FUNCTION telemetry_metric_minute_split(text, jsonb);
"""

BACKFILL_SQL = f"""
INSERT INTO {MINUTES_TABLE} (ts, metric_name, scope, split, bucket_bounds, sample_rows, value_count, value_sum,
                           total, bucket_counts)
SELECT s.ts, s.metric_name, s.scope, telemetry_metric_minute_split(s.metric_name, s.labels),
       coalesce(s.bucket_bounds, ARRAY[]::double precision[]), count(*), sum(s.value_count), sum(s.value_sum),
       sum(coalesce(s.value_sum, s.value_count)), telemetry_bucket_sum(s.bucket_counts)
FROM telemetry_metric_samples AS s
GROUP BY 1, 2, 3, 4, 5
"""


# The daily partitions as migration 0001 creates them (frozen there).
create_day_partitions = importlib.import_module("telemetry.migrations.0001_initial").create_day_partitions


def create_partitions_and_backfill(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        create_day_partitions(cursor, MINUTES_TABLE)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', '256MB', true)")
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('telemetry.metric_samples'))")
        cursor.execute(BACKFILL_SQL)


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0003_incremental_hourly_rollup")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(SCHEMA_SQL, DROP_SCHEMA_SQL)],
            state_operations=[
                migrations.CreateModel(
                    name="MetricMinute",
                    fields=[
                        ("pk", models.CompositePrimaryKey("metric_name", "ts", "scope", "split", "bucket_bounds",
                                                          blank=True, editable=False, primary_key=True,
                                                          serialize=False)),
                        ("ts", models.DateTimeField()),
                        ("metric_name", models.TextField()),
                        ("scope", models.TextField()),
                        ("split", models.TextField()),
                        ("bucket_bounds", django.contrib.postgres.fields.ArrayField(
                            base_field=models.FloatField(), size=None)),
                        ("sample_rows", models.IntegerField()),
                        ("value_count", models.BigIntegerField(null=True)),
                        ("value_sum", models.FloatField(null=True)),
                        ("total", models.FloatField(null=True)),
                        ("bucket_counts", django.contrib.postgres.fields.ArrayField(
                            base_field=models.BigIntegerField(), null=True, size=None)),
                    ],
                    options={"db_table": "telemetry_metric_minutes", "managed": False},
                ),
            ],
        ),
        migrations.RunPython(create_partitions_and_backfill, migrations.RunPython.noop),
    ]
