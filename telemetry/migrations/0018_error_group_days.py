"""Error groups per day (issue 16, item 2: the 7-day listing within 30 ms; see telemetry/error_groups.py).

`telemetry_error_group_days`: one row per group per UTC day with the errors of that day, the sum of the group's
hour rows (`telemetry_error_group_hours`, migration 0015) of that day. Ingest adds to minutes, hours and days in
one statement (ON CONFLICT ... DO UPDATE count = count + excluded.count), so concurrent receivers count all three
exactly. A listing takes the window's whole days from here, its other whole hours from the hour rows and only
its ragged edges from the minute rows: a 7-day listing reads ~30 rows per group instead of ~170.

Existing minute rows are summed into it here. Not partitioned, like the hour table; retention deletes days
before the 30-day cutoff and rebuilds the day holding it from its remaining hours. The SQL is frozen as this
migration runs it.
"""

from django.db import migrations

SQL = """
CREATE TABLE telemetry_error_group_days (
    day         timestamptz NOT NULL,
    fingerprint bigint      NOT NULL,
    count       bigint      NOT NULL,
    PRIMARY KEY (fingerprint, day)
);
-- A window's whole days of every group read by an index-only scan.
CREATE INDEX telemetry_error_group_days_day ON telemetry_error_group_days (day) INCLUDE (fingerprint, count);

INSERT INTO telemetry_error_group_days (day, fingerprint, count)
SELECT date_trunc('day', ts, 'UTC'), fingerprint, sum(count)
FROM telemetry_error_group_minutes GROUP BY 1, 2;
"""

REVERSE_SQL = "DROP TABLE telemetry_error_group_days;"


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0017_trace_chunk_layout")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
