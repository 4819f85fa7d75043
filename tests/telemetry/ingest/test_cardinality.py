"""The cardinality budget: label sets beyond it fold into the overflow set, with one WARN per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from telemetry import packing
from telemetry.contract import CARDINALITY_BUDGET, OVERFLOW_LABELS, Event, Metric
from telemetry.ingest import buffer, cardinality
from telemetry.ingest.pipeline import ingest
from telemetry.models import LogEvent, MetricSample, Series, StoredLogEvent
from telemetry.otlp import OtlpSignal
from tests.telemetry.ingest.otlp_builders import DELTA, counter, metrics_request, ns

pytestmark = pytest.mark.django_db

MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)


def errors_by_route(routes: range, second: int = 1):
    time_ns = ns(MINUTE + timedelta(seconds=second))
    points = [
        (time_ns - 10**9, time_ns, 1, {"http.route": f"/api/v1/r{route}", "error.type": "db"})
        for route in routes
    ]
    return metrics_request(counter(Metric.HTTP_ERRORS_TOTAL, points, temporality=DELTA))


def test_label_sets_beyond_the_budget_fold_into_overflow_and_totals_stay_right():
    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET + 5)))
    cardinality.forget_known_series()  # as another web process would see it
    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET + 5), second=2))

    buffer.flush_pending(now=MINUTE + timedelta(minutes=2))

    assert Series.objects.filter(metric_name=Metric.HTTP_ERRORS_TOTAL).count() == CARDINALITY_BUDGET + 1
    overflow = MetricSample.objects.get(labels=OVERFLOW_LABELS)
    assert overflow.value_count == 10
    assert sum(MetricSample.objects.values_list("value_count", flat=True)) == 2 * (CARDINALITY_BUDGET + 5)
    warning = LogEvent.objects.get(event=Event.CARDINALITY_OVERFLOW)
    assert (warning.level, warning.service, warning.domain) == ("WARN", "kaiku_ops", "telemetry")
    assert Metric.HTTP_ERRORS_TOTAL in warning.message


def test_known_label_sets_keep_their_place():
    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET)))
    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET), second=2))

    buffer.flush_pending(now=MINUTE + timedelta(minutes=2))

    assert not MetricSample.objects.filter(labels=OVERFLOW_LABELS).exists()
    assert not LogEvent.objects.exists()


def test_the_hourly_warning_is_not_repeated_once_its_hour_is_packed():
    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET + 5)))
    with transaction.atomic(), connection.cursor() as cursor:
        packing.pack_range(cursor, packing.LOGS, MINUTE - timedelta(hours=1), MINUTE + timedelta(hours=1))
    cardinality.forget_known_series()

    ingest(OtlpSignal.METRICS, errors_by_route(range(CARDINALITY_BUDGET + 5), second=2))

    assert not LogEvent.objects.exists()  # nothing new hot: the hour's warning is packed already
    assert StoredLogEvent.objects.filter(event=Event.CARDINALITY_OVERFLOW).count() == 1
