"""factory-boy factories for every telemetry table (tests only: factory_boy is a test requirement).

Timestamps default to "now"; pass `ts=` / `started_at=` for other times. Rows for a day without
its own partition land in the default partition, like any insert.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import factory
from django.utils import timezone

from telemetry import models
from telemetry.contract import SCOPE_CLUSTER, Label, Metric

# Seconds buckets as the OTel semantic conventions recommend for HTTP durations.
HTTP_DURATION_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def _minute(when):
    return when.replace(second=0, microsecond=0)


class MetricSampleFactory(factory.django.DjangoModelFactory):
    """A counter sample by default; see the `histogram` and `gauge` traits."""

    class Meta:
        model = models.MetricSample

    class Params:
        histogram = factory.Trait(
            metric_name=Metric.HTTP_REQUEST_DURATION_SECONDS.value,
            bucket_bounds=HTTP_DURATION_BOUNDS,
            bucket_counts=factory.LazyFunction(lambda: [0, 2, 5, 9, 7, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0]),
            value_count=30,
            value_sum=1.25,
            value_p50=0.04,
            value_p95=0.2,
            value_p99=0.25,
        )
        gauge = factory.Trait(
            metric_name=Metric.WS_CONNECTIONS_ACTIVE.value, labels={}, value_count=4, value_sum=1800.0,
        )

    ts = factory.LazyFunction(lambda: _minute(timezone.now()))
    metric_name = Metric.HTTP_REQUESTS_TOTAL.value
    scope = SCOPE_CLUSTER
    labels = factory.Sequence(lambda n: {Label.HTTP_ROUTE.value: f"/api/v1/route{n}",
                                         Label.HTTP_METHOD.value: "GET",
                                         Label.HTTP_STATUS_CODE.value: "200"})
    value_count = 12
    value_sum = 12.0


class LogEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LogEvent

    id = factory.LazyFunction(uuid.uuid4)
    ts = factory.LazyFunction(timezone.now)
    level = "ERROR"
    service = "vc-server"
    domain = "voice"
    event = factory.Sequence(lambda n: f"voice.join_failed.{n}")
    message = "SFU rejected the join: room is full"
    trace_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    span_id = factory.LazyFunction(lambda: uuid.uuid4().hex[:16])
    attrs = factory.LazyFunction(dict)


class TraceIndexEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TraceIndexEntry

    id = factory.LazyFunction(uuid.uuid4)
    ts = factory.LazyFunction(timezone.now)
    trace_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    span_name = "http.server.request"
    domain = "api"
    route = "/api/v1/guilds/{guild_id}"
    status_code = "500"
    duration_ms = 1250
    service = "vc-server"


class ConnectionSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ConnectionSession

    id = factory.LazyFunction(uuid.uuid4)
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=20))
    ended_at = factory.LazyFunction(timezone.now)
    outcome = "normal"


class ConnectionMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ConnectionMetric

    ts = factory.LazyFunction(timezone.now)
    session_id = factory.LazyFunction(uuid.uuid4)
    latency_ms = 45
    packet_loss = 0.5
    jitter_ms = 12
    quality = 3


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Series

    metric_name = Metric.HTTP_REQUESTS_TOTAL.value
    labels = factory.Sequence(lambda n: {Label.HTTP_ROUTE.value: f"/api/v1/route{n}"})
    first_seen = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    last_seen = factory.LazyFunction(timezone.now)


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.JobRun

    job = "purge_telemetry"
    started_at = factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=2))
    finished_at = factory.LazyFunction(timezone.now)
    duration_ms = 2000
    ok = True
    details = factory.LazyFunction(dict)
