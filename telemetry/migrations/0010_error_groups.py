"""Error groups (issue 16, item 2; see telemetry/error_groups.py and telemetry/fingerprints.py).

`telemetry_error_groups`: one row per fingerprint (a signed 64-bit digest of source, service and the templates
of event and message) with first/last seen, an example, and up to a few routes it touched.
`telemetry_error_group_minutes`: one row per group per UTC minute with the errors of that minute; ingest adds
to it with ON CONFLICT ... DO UPDATE count = count + excluded.count, so concurrent receivers count exactly.

Neither is partitioned: a few rows per group and minute. Retention deletes minute rows older than 30 days and
groups whose last_seen is (telemetry/retention.py). The SQL is frozen as this migration runs it.
"""

from django.db import migrations

SQL = """
CREATE TABLE telemetry_error_groups (
    fingerprint      bigint      PRIMARY KEY,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    source           text        NOT NULL,
    service          text        NOT NULL,
    event_template   text        NOT NULL,
    message_template text        NOT NULL,
    example_event    text        NOT NULL,
    example_message  text        NOT NULL,
    example_trace_id text        NULL,
    routes           text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX telemetry_error_groups_last_seen ON telemetry_error_groups (last_seen);
CREATE INDEX telemetry_error_groups_first_seen ON telemetry_error_groups (first_seen);

CREATE TABLE telemetry_error_group_minutes (
    ts          timestamptz NOT NULL,
    fingerprint bigint      NOT NULL,
    count       integer     NOT NULL,
    PRIMARY KEY (fingerprint, ts)
);
-- A window's counts of every group read by an index-only scan.
CREATE INDEX telemetry_error_group_minutes_ts ON telemetry_error_group_minutes (ts) INCLUDE (fingerprint, count);
"""

REVERSE_SQL = """
DROP TABLE telemetry_error_group_minutes;
DROP TABLE telemetry_error_groups;
"""


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0009_forget_metric_minute_model")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
