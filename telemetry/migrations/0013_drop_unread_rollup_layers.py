"""The derived rollup layers nobody reads go: the daily materialized view and six columns of the hourly table.

The daily view `telemetry_trend_rollups` was refreshed every hour (about 0.6 s of the refresh at `heavy`,
docs/benchmarks.md) and read by no panel. It is replaced, not read: the 7-day and 30-day trends bin by 1 h and
3 h (command_center.selectors.trends.choose_step), which a per-day view cannot answer, so they keep reading the
hourly table `telemetry_trend_rollups_hourly`, whose answers are the same ones as before.

Of the hourly table's columns, `route`, `error_count`, `max_value`, `last_value`, `avg_p95` and `max_p95` were
computed and never read (telemetry.queries.metrics reads the bucket counts, the counter total and sum, the
sample count and the newest sample time). Reversing adds them back empty (0 errors), marks every hour with
samples changed (as migration 0003 does) so the refresh of that time fills them where samples remain, and
recreates the daily view as 0003 created it.
"""

import importlib

from django.db import migrations

V0003 = importlib.import_module("telemetry.migrations.0003_incremental_hourly_rollup")
DAILY_VIEW_SQL = V0003.INCREMENTAL_ROLLUPS_SQL[V0003.INCREMENTAL_ROLLUPS_SQL.index("-- avg_p95 of a day"):]
DROPPED_COLUMNS = ("route", "error_count", "max_value", "last_value", "avg_p95", "max_p95")

SQL = """
DROP MATERIALIZED VIEW telemetry_trend_rollups;
ALTER TABLE telemetry_trend_rollups_hourly
    DROP COLUMN route, DROP COLUMN error_count, DROP COLUMN max_value, DROP COLUMN last_value,
    DROP COLUMN avg_p95, DROP COLUMN max_p95;
"""

# The hourly table and its indexes as 0003 created them (everything of 0003 before its dirty-hour table).
HOURLY_TABLE_SQL = V0003.INCREMENTAL_ROLLUPS_SQL[:V0003.INCREMENTAL_ROLLUPS_SQL.index(
    "CREATE TABLE telemetry_rollup_dirty_hours")]

# The refresh of that time inserts by position (`INSERT INTO ... SELECT` in 0003's column order), so the table is
# rebuilt in that order, keeping its rows (hours past the sample horizon cannot be recomputed).
REVERSE_SQL = f"""
ALTER TABLE telemetry_trend_rollups_hourly RENAME TO telemetry_trend_rollups_hourly_slim;
ALTER INDEX telemetry_trend_rollups_hourly_key RENAME TO telemetry_trend_rollups_hourly_slim_key;
ALTER INDEX telemetry_trend_rollups_hourly_metric RENAME TO telemetry_trend_rollups_hourly_slim_metric;
{HOURLY_TABLE_SQL}
INSERT INTO telemetry_trend_rollups_hourly
SELECT hour, metric_name, scope, NULL, labels, bucket_bounds, sample_count, first_ts, last_ts, total_count, 0,
       total_sum, NULL, NULL, NULL, NULL, bucket_counts
FROM telemetry_trend_rollups_hourly_slim;
DROP TABLE telemetry_trend_rollups_hourly_slim;
{V0003.MARK_EXISTING_HOURS_SQL}
{DAILY_VIEW_SQL}
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0012_span_minutes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(SQL, REVERSE_SQL)],
            state_operations=[
                migrations.DeleteModel(name="DailyTrendRollup"),
                *(migrations.RemoveField(model_name="hourlytrendrollup", name=name) for name in DROPPED_COLUMNS),
            ],
        ),
    ]
