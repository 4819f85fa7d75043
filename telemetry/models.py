"""Django models over the telemetry tables.

The partitioned tables and the hourly rollup table are created by raw SQL in the migrations
(`managed = False`); their primary keys include the partition column, as PostgreSQL requires.
Writes go through `telemetry.storage`, never through ad-hoc inserts.
"""
# The text columns mirror the design's SQL schema, where NULL means "not given" (no trace id,
# no route); an empty string would be a different, misleading value.
# ruff: noqa: DJ001

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models


class MetricSample(models.Model):
    """One metric, one label set, one UTC minute (see the contract, section 3.1)."""

    pk = models.CompositePrimaryKey("metric_name", "ts", "scope", "labels")
    ts = models.DateTimeField()
    metric_name = models.TextField()
    scope = models.TextField(default="cluster")
    labels = models.JSONField(default=dict)
    value_count = models.BigIntegerField(null=True)
    value_sum = models.FloatField(null=True)
    value_p50 = models.FloatField(null=True)
    value_p95 = models.FloatField(null=True)
    value_p99 = models.FloatField(null=True)
    bucket_bounds = ArrayField(models.FloatField(), null=True)
    bucket_counts = ArrayField(models.BigIntegerField(), null=True)

    class Meta:
        managed = False
        db_table = "telemetry_metric_samples"

    def __str__(self) -> str:
        return f"{self.metric_name} {self.labels} @ {self.ts:%Y-%m-%d %H:%M}"


class LogEvent(models.Model):
    """A curated WARN/ERROR log record."""

    pk = models.CompositePrimaryKey("id", "ts")
    id = models.UUIDField()
    ts = models.DateTimeField()
    level = models.TextField()
    service = models.TextField()
    domain = models.TextField()
    event = models.TextField()
    message = models.TextField()
    trace_id = models.TextField(null=True)
    span_id = models.TextField(null=True)
    attrs = models.JSONField(default=dict)

    class Meta:
        managed = False
        db_table = "telemetry_log_events"

    def __str__(self) -> str:
        return f"{self.level} {self.event} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class TraceIndexEntry(models.Model):
    """Metadata of one kept span (contract section 5); never its payload."""

    pk = models.CompositePrimaryKey("id", "ts")
    id = models.UUIDField()
    ts = models.DateTimeField()
    trace_id = models.TextField()
    span_name = models.TextField()
    domain = models.TextField()
    route = models.TextField(null=True)
    status_code = models.TextField(null=True)
    duration_ms = models.IntegerField()
    service = models.TextField()

    class Meta:
        managed = False
        db_table = "telemetry_trace_index"

    def __str__(self) -> str:
        return f"{self.span_name} {self.duration_ms} ms @ {self.ts:%Y-%m-%d %H:%M:%S}"


class ConnectionSession(models.Model):
    """A voice session; read through `telemetry.voice.voice_alias()`."""

    pk = models.CompositePrimaryKey("id", "started_at")
    id = models.UUIDField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True)
    outcome = models.TextField(null=True)

    class Meta:
        managed = False
        db_table = "connection_sessions"

    def __str__(self) -> str:
        return f"voice session {self.id}"


class ConnectionMetric(models.Model):
    """A voice quality measurement; read through `telemetry.voice.voice_alias()`."""

    pk = models.CompositePrimaryKey("session_id", "ts")
    ts = models.DateTimeField()
    session_id = models.UUIDField()
    latency_ms = models.IntegerField(null=True)
    packet_loss = models.FloatField(null=True)
    jitter_ms = models.IntegerField(null=True)
    quality = models.SmallIntegerField(null=True)

    class Meta:
        managed = False
        db_table = "connection_metrics"

    def __str__(self) -> str:
        return f"voice metric {self.session_id} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class Series(models.Model):
    """A (metric, label set) seen recently; the cardinality budget counts these per metric."""

    metric_name = models.TextField()
    labels = models.JSONField(default=dict)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "telemetry_series"
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["metric_name", "labels"],
                                    name="telemetry_series_metric_labels_uniq"),
        ]
        indexes = [models.Index(fields=["metric_name", "last_seen"], name="telemetry_series_metric_seen")]

    def __str__(self) -> str:
        return f"{self.metric_name} {self.labels}"


class JobRun(models.Model):
    """One run of a maintenance job (purge, rollup refresh, partitions), shown by the command center."""

    job = models.TextField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.IntegerField()
    ok = models.BooleanField()
    details = models.JSONField(default=dict)

    class Meta:
        db_table = "telemetry_job_runs"
        indexes = [models.Index(fields=["job", "-started_at"], name="telemetry_job_runs_job_started")]

    def __str__(self) -> str:
        return f"{self.job} @ {self.started_at:%Y-%m-%d %H:%M:%S} ({'ok' if self.ok else 'failed'})"


class HourlyTrendRollup(models.Model):
    """Samples merged per hour: a table that `telemetry.rollups` recomputes hour by hour (migration 0003, slimmed
    to the columns readers use by 0013); `bucket_counts` are the merged histogram buckets. Trends of 7 and 30
    days read it (telemetry.queries.metrics)."""

    pk = models.CompositePrimaryKey("hour", "metric_name", "scope", "labels", "bucket_bounds")
    hour = models.DateTimeField()
    metric_name = models.TextField()
    scope = models.TextField()
    labels = models.JSONField()
    bucket_bounds = ArrayField(models.FloatField())
    sample_count = models.BigIntegerField()
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()
    total_count = models.BigIntegerField(null=True)
    total_sum = models.FloatField(null=True)
    bucket_counts = ArrayField(models.BigIntegerField(), null=True)

    class Meta:
        managed = False
        db_table = "telemetry_trend_rollups_hourly"

    def __str__(self) -> str:
        return f"{self.metric_name} {self.labels} hour {self.hour:%Y-%m-%d %H:00}"


class ServiceInstance(models.Model):
    """A platform service instance as its OTLP resource reports it (telemetry/service_instances.py).

    `instance_id` is "" when the resource names no `service.instance.id`; `version`/`environment` are NULL
    when not reported. `first_seen` starts the instance's current run of reports, `version_first_seen` is
    when it was first seen with its current version.
    """

    id = models.BigAutoField(primary_key=True)
    service = models.TextField()
    instance_id = models.TextField()
    version = models.TextField(null=True)
    environment = models.TextField(null=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    version_first_seen = models.DateTimeField(null=True)

    class Meta:
        db_table = "telemetry_service_instances"
        constraints = [
            models.UniqueConstraint(fields=["service", "instance_id"], name="telemetry_service_instance_unique"),
        ]
        indexes = [models.Index(fields=["last_seen"], name="telemetry_service_inst_seen")]

    def __str__(self) -> str:
        return f"{self.service} {self.instance_id or '(no instance id)'} {self.version or ''}".rstrip()


class StoredLog(models.Model):
    """A log record as readers see it: hot or packed.

    The `chunk_*` fields describe the chunk the record is packed in (a hot record is its own chunk); filtering
    on them lets PostgreSQL skip chunks without unpacking them: by their time and, for search, the trigram index
    over their text (migration 0022) and the Bloom filter of its digit 5-grams (migration 0016). The chunks of one
    trace are found through the hourly filter (migration 0021, `queries.stored.chunks_of_trace`).
    """

    pk = models.CompositePrimaryKey("id", "ts")
    id = models.UUIDField()
    ts = models.DateTimeField()
    level = models.TextField()
    service = models.TextField()
    domain = models.TextField()
    event = models.TextField()
    message = models.TextField()
    trace_id = models.TextField(null=True)
    span_id = models.TextField(null=True)
    attrs = models.JSONField(default=dict)
    chunk_first_ts = models.DateTimeField()
    chunk_last_ts = models.DateTimeField()
    chunk_text = models.TextField(null=True)
    chunk_packed = models.BooleanField(default=False)
    chunk_digit_bloom = models.BinaryField(null=True)  # of the digit 5-grams of a chunk's text (migration 0016)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.level} {self.event} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class StoredLogEvent(StoredLog):
    """Every stored log record (the view `telemetry_log_events_all`, migration 0007)."""

    class Meta:
        managed = False
        db_table = "telemetry_log_events_all"


class StoredLogLookup(StoredLog):
    """The log records of one trace (the function `telemetry_logs_of_trace`, migration 0026), read position by
    position from the few chunks holding it: only through `queries.stored.logs_of_trace`, which names its
    arguments."""

    class Meta:
        managed = False
        db_table = "telemetry_logs_of_trace"


class StoredSpan(models.Model):
    """A kept span as readers see it: hot or packed. The `chunk_*` fields describe its chunk as those of
    StoredLogEvent do; `chunk_packed` is false for a hot row, `chunk_trace_uuid` is `trace_id` as a uuid
    (migration 0017)."""

    pk = models.CompositePrimaryKey("id", "ts")
    id = models.UUIDField()
    ts = models.DateTimeField()
    trace_id = models.TextField()
    span_name = models.TextField()
    domain = models.TextField()
    route = models.TextField(null=True)
    status_code = models.TextField(null=True)
    duration_ms = models.IntegerField()
    service = models.TextField()
    kept_reason = models.CharField(max_length=1, null=True)
    chunk_first_ts = models.DateTimeField()
    chunk_last_ts = models.DateTimeField()
    chunk_packed = models.BooleanField()
    chunk_trace_uuid = models.UUIDField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.span_name} {self.duration_ms} ms @ {self.ts:%Y-%m-%d %H:%M:%S}"


class StoredTraceEntry(StoredSpan):
    """Every stored span (the view `telemetry_trace_index_all`, migrations 0007 and 0017)."""

    class Meta:
        managed = False
        db_table = "telemetry_trace_index_all"


class StoredTraceLookup(StoredSpan):
    """The spans of one trace (the function `telemetry_spans_of_trace`, migration 0025), read position by position
    from the few chunks holding it: only through `queries.stored.spans_of_trace`, which names its arguments."""

    class Meta:
        managed = False
        db_table = "telemetry_spans_of_trace"
