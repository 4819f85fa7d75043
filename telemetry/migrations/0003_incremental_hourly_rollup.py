"""The hourly rollup becomes a table maintained incrementally instead of a materialized view.

Refreshing the hourly view recomputed all 30 days every hour: 149 s at `heavy` (docs/benchmarks.md).
Now statement triggers on `telemetry_metric_samples` note the hours whose samples changed and
telemetry.rollups recomputes only those. The daily view is rebuilt on top of the new table. Every
hour already holding samples is marked changed, so the next refresh fills the table.
"""

import importlib

from django.db import migrations

INCREMENTAL_ROLLUPS_SQL = """
CREATE TABLE telemetry_trend_rollups_hourly (
    hour          timestamptz      NOT NULL,
    metric_name   text             NOT NULL,
    scope         text             NOT NULL,
    route         text             NULL,
    labels        jsonb            NOT NULL,
    bucket_bounds double precision[] NOT NULL,
    sample_count  bigint           NOT NULL,
    first_ts      timestamptz      NOT NULL,
    last_ts       timestamptz      NOT NULL,
    total_count   bigint           NULL,
    error_count   bigint           NOT NULL,
    total_sum     double precision NULL,
    max_value     double precision NULL,
    last_value    double precision NULL,
    avg_p95       double precision NULL,
    max_p95       double precision NULL,
    bucket_counts bigint[]         NULL
);
CREATE UNIQUE INDEX telemetry_trend_rollups_hourly_key
    ON telemetry_trend_rollups_hourly (hour, metric_name, scope, labels, bucket_bounds);
CREATE INDEX telemetry_trend_rollups_hourly_metric ON telemetry_trend_rollups_hourly (metric_name, hour);

CREATE TABLE telemetry_rollup_dirty_hours (hour timestamptz PRIMARY KEY);
CREATE FUNCTION telemetry_mark_rollup_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telemetry_rollup_dirty_hours (hour)
    SELECT DISTINCT date_trunc('hour', ts, 'UTC') FROM changed_rows
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
-- One trigger per event: PostgreSQL allows transition tables only on single-event triggers.
CREATE TRIGGER telemetry_metric_samples_inserted AFTER INSERT ON telemetry_metric_samples
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION telemetry_mark_rollup_hours();
CREATE TRIGGER telemetry_metric_samples_updated AFTER UPDATE ON telemetry_metric_samples
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION telemetry_mark_rollup_hours();
CREATE TRIGGER telemetry_metric_samples_deleted AFTER DELETE ON telemetry_metric_samples
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION telemetry_mark_rollup_hours();
CREATE FUNCTION telemetry_clear_rollup_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM telemetry_trend_rollups_hourly;
    DELETE FROM telemetry_rollup_dirty_hours;
    RETURN NULL;
END
$$;
CREATE TRIGGER telemetry_metric_samples_truncated AFTER TRUNCATE ON telemetry_metric_samples
    FOR EACH STATEMENT EXECUTE FUNCTION telemetry_clear_rollup_hours();

-- avg_p95 of a day weights each hour by its sample count; last_value is the value of the latest
-- hour, taken through max() over [time, value] arrays, which unlike an ordered aggregate allows
-- hash aggregation.
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

MARK_EXISTING_HOURS_SQL = """
INSERT INTO telemetry_rollup_dirty_hours (hour)
SELECT DISTINCT date_trunc('hour', ts, 'UTC') FROM telemetry_metric_samples
ON CONFLICT DO NOTHING;
"""

DROP_INCREMENTAL_ROLLUPS_SQL = """
DROP MATERIALIZED VIEW telemetry_trend_rollups;
DROP TRIGGER telemetry_metric_samples_inserted ON telemetry_metric_samples;
DROP TRIGGER telemetry_metric_samples_updated ON telemetry_metric_samples;
DROP TRIGGER telemetry_metric_samples_deleted ON telemetry_metric_samples;
DROP TRIGGER telemetry_metric_samples_truncated ON telemetry_metric_samples;
DROP FUNCTION telemetry_mark_rollup_hours();
DROP FUNCTION telemetry_clear_rollup_hours();
DROP TABLE telemetry_rollup_dirty_hours, telemetry_trend_rollups_hourly;
"""

# The committed 0001 versions, recreated when this migration is reversed.
V0001 = importlib.import_module("telemetry.migrations.0001_initial")
DROP_VIEW_ROLLUPS_SQL = V0001.DROP_ROLLUPS_SQL
VIEW_ROLLUPS_SQL = V0001.ROLLUPS_SQL


class Migration(migrations.Migration):

    dependencies = [("telemetry", "0002_ingest_buffer")]

    operations = [
        migrations.RunSQL(DROP_VIEW_ROLLUPS_SQL, VIEW_ROLLUPS_SQL),
        migrations.RunSQL(INCREMENTAL_ROLLUPS_SQL, DROP_INCREMENTAL_ROLLUPS_SQL),
        migrations.RunSQL(MARK_EXISTING_HOURS_SQL, migrations.RunSQL.noop),
    ]
