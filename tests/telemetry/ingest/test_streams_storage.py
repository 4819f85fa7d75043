"""Cumulative streams through the real pipeline: every point a sender exports is counted once or reported.

Two senders that share one identity (a misconfigured deployment, or the storm simulator beside the demo)
and a restart whose clock stepped back used to make points vanish without a trace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from telemetry.contract import Metric
from telemetry.ingest import buffer
from telemetry.ingest.metrics import REASON_START_AFTER_TIME, metric_points
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.pipeline import ingest
from telemetry.ingest.streams import REASON_DECREASED
from telemetry.models import MetricSample
from telemetry.otlp import OtlpSignal
from tests.telemetry.ingest.otlp_builders import counter, metrics_request, ns

pytestmark = pytest.mark.django_db

MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
ROUTE = {"http.route": "/api/v1/guilds/{guild_id}", "http.request.method": "GET", "http.response.status_code": 200}
INSTANCE = "vc-server-1"  # what both senders report


def at(seconds: float) -> int:
    return ns(MINUTE) + int(seconds * 1_000_000_000)


def export(start_ns: int, seconds: float, value: int) -> IngestOutcome:
    """One export of the requests counter by a sender started at `start_ns` (every sender: one identity)."""
    request = metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(start_ns, at(seconds), value, ROUTE)]),
                              instance=INSTANCE)
    return ingest(OtlpSignal.METRICS, request)


def stored_requests() -> int:
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    return sum(sample.value_count for sample in MetricSample.objects.filter(metric_name=Metric.HTTP_REQUESTS_TOTAL))


def test_interleaved_senders_with_one_identity_and_a_restart_with_a_stepped_back_clock_all_count_once():
    demo_start, storm_start = ns(MINUTE - timedelta(hours=1)), ns(MINUTE - timedelta(minutes=20))
    restarted_start = ns(MINUTE - timedelta(hours=2))  # the demo restarted; its clock stepped back an hour
    exports = [  # (sender's start, second of the minute, cumulative value), in arrival order
        (demo_start, 5, 100), (storm_start, 6, 40), (demo_start, 15, 130), (storm_start, 16, 55),
        (demo_start, 25, 160), (storm_start, 26, 90),
        (restarted_start, 35, 3), (storm_start, 36, 120), (restarted_start, 45, 9), (storm_start, 46, 150),
    ]

    outcomes = [export(*point) for point in exports]
    resent = export(*exports[-1])  # a retried export: already counted, not an error

    incremented = 160 + 150 + 9  # each sender's last cumulative value: every start lies inside retention
    assert stored_requests() == incremented
    assert sum(outcome.rejected for outcome in [*outcomes, resent]) == 0
    assert (resent.accepted, resent.stored, resent.rejected) == (1, 0, 0)


def test_a_sender_contradicting_another_with_the_same_start_is_reported_not_counted():
    start = ns(MINUTE - timedelta(hours=1))
    first, other, later, other_later = (export(start, 5, 100), export(start, 6, 40), export(start, 15, 130),
                                        export(start, 16, 55))

    assert stored_requests() == 130  # the stream keeps counting the sender it had
    for outcome in (other, other_later):  # the other sender's points are in partial_success, with the reason
        assert (outcome.accepted, outcome.rejected, outcome.stored) == (0, 1, 0)
        assert outcome.error_message() == f"1 data points rejected: {REASON_DECREASED} (1)"
    assert (first.rejected, later.rejected) == (0, 0)


def test_a_stream_started_before_retention_sets_its_baseline_as_not_kept_then_counts_its_increases():
    start = ns(datetime.now(UTC) - timedelta(days=31))

    baseline, increase = export(start, 5, 1_000), export(start, 15, 1_025)

    assert (baseline.accepted, baseline.not_kept, baseline.stored, baseline.rejected) == (1, 1, 0, 0)
    assert (increase.not_kept, increase.stored) == (0, 1)
    assert stored_requests() == 25


def test_a_point_starting_after_its_own_time_is_refused_with_a_reason():
    request = metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(at(20), at(10), 5, ROUTE)]))

    outcome = ingest(OtlpSignal.METRICS, request)

    assert (outcome.accepted, outcome.rejected) == (0, 1)
    assert REASON_START_AFTER_TIME in outcome.error_message()


def test_a_stream_keyed_before_start_times_were_part_of_the_key_continues_where_it_was():
    """State written by the receiver before stream keys included the start time (under the series key) is
    continued, so an upgrade does not count every running stream in full once more."""
    start = ns(MINUTE - timedelta(hours=1))
    request = metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(start, at(15), 130, ROUTE)]), instance=INSTANCE)
    (point,) = metric_points(request, IngestOutcome(OtlpSignal.METRICS), TimeWindow.around(datetime.now(UTC)), ())
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_metric_streams (stream_key, metric_name, start_time_ns, last_time_ns,"
                       " last_count, last_sum) VALUES (%s, %s, %s, %s, 0, 100)",
                       [point.series_key, point.metric, start, at(5)])

    ingest(OtlpSignal.METRICS, request)

    assert point.stream_key != point.series_key
    assert stored_requests() == 30
