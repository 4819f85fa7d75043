"""Error groups per hour (issue 16, item 2 follow-up; see telemetry/error_groups.py).

`telemetry_error_group_hours`: one row per group per UTC hour with the errors of that hour, the sum of the
group's minute rows (`telemetry_error_group_minutes`) of that hour. Ingest adds to both in one statement
(ON CONFLICT ... DO UPDATE count = count + excluded.count), so concurrent receivers count both exactly.
Readers take whole hours of a window from here and only its ragged edges from the minute rows: a 7-day
listing reads ~170 rows per group instead of ~10,000.

Existing minute rows are summed into it here. Not partitioned, like the minute table; retention deletes hours
before the 30-day cutoff and rebuilds the hour holding it from its remaining minutes. The SQL is frozen as
this migration runs it.
"""

from django.db import migrations

SQL = """
CREATE TABLE telemetry_error_group_hours (
    hour        timestamptz NOT NULL,
    fingerprint bigint      NOT NULL,
    count       integer     NOT NULL,
    PRIMARY KEY (fingerprint, hour)
);
-- A window's whole hours of every group read by an index-only scan.
CREATE INDEX telemetry_error_group_hours_hour ON telemetry_error_group_hours (hour) INCLUDE (fingerprint, count);

INSERT INTO telemetry_error_group_hours (hour, fingerprint, count)
SELECT date_trunc('hour', ts, 'UTC'), fingerprint, sum(count)::integer
FROM telemetry_error_group_minutes GROUP BY 1, 2;
"""

REVERSE_SQL = "DROP TABLE telemetry_error_group_hours;"


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0014_chunk_gin_indexes")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
