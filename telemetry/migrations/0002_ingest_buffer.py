"""Tables of the OTLP receiver: the durable metric buffer, cumulative-stream state and seed markers.

They are small working tables (rows live minutes, or one per stream/day), so they are not partitioned.
"""

from django.db import migrations

INGEST_TABLES_SQL = """
CREATE TABLE telemetry_metric_points_pending (
    point_id      uuid             PRIMARY KEY,
    minute        timestamptz      NOT NULL,
    metric_name   text             NOT NULL,
    labels        jsonb            NOT NULL,
    point_time_ns bigint           NOT NULL,
    value_count   bigint           NULL,
    value_sum     double precision NULL,
    bucket_bounds double precision[] NULL,
    bucket_counts bigint[]         NULL,
    received_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX telemetry_metric_points_pending_minute ON telemetry_metric_points_pending (minute);

CREATE TABLE telemetry_metric_streams (
    stream_key    uuid             PRIMARY KEY,
    metric_name   text             NOT NULL,
    start_time_ns bigint           NULL,
    last_time_ns  bigint           NULL,
    last_count    bigint           NULL,
    last_sum      double precision NULL,
    bucket_bounds double precision[] NULL,
    bucket_counts bigint[]         NULL,
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX telemetry_metric_streams_updated ON telemetry_metric_streams (updated_at);

CREATE TABLE telemetry_seed_days (
    day         date        PRIMARY KEY,
    profile     text        NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);
"""

DROP_INGEST_TABLES_SQL = """
DROP TABLE telemetry_metric_points_pending, telemetry_metric_streams, telemetry_seed_days;
"""


class Migration(migrations.Migration):

    dependencies = [("telemetry", "0001_initial")]

    operations = [migrations.RunSQL(INGEST_TABLES_SQL, DROP_INGEST_TABLES_SQL)]
