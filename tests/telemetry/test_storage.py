"""Write services: idempotent inserts and merging upserts of minute samples."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from telemetry import histograms
from telemetry.contract import Label, Metric
from telemetry.models import LogEvent, MetricSample, Series, TraceIndexEntry
from telemetry.storage import (
    StorageError,
    deterministic_uuid,
    insert_log_events,
    insert_trace_rows,
    span_row_id,
    touch_series,
    upsert_metric_samples,
)
from tests.factories import HTTP_DURATION_BOUNDS

MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
LABELS = {Label.HTTP_ROUTE.value: "/api/v1/messages", Label.HTTP_METHOD.value: "POST",
          Label.HTTP_STATUS_CODE.value: "201"}


def _log(n: int, **overrides) -> dict:
    return {"id": deterministic_uuid("log", str(n)), "ts": MINUTE, "level": "WARN", "service": "vc-server",
            "domain": "chat", "event": "chat.slow_send", "message": f"send took {n} ms", "trace_id": None,
            "span_id": None, **overrides}


def _span(span_id: str) -> dict:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    return {"id": span_row_id(trace_id, span_id), "ts": MINUTE, "trace_id": trace_id,
            "span_name": "http.server.request", "domain": "api", "route": "/api/v1/messages",
            "status_code": "502", "duration_ms": 1400, "service": "vc-server"}


def _histogram(counts: list[int]) -> dict:
    return {"ts": MINUTE, "metric_name": Metric.HTTP_REQUEST_DURATION_SECONDS.value, "labels": LABELS,
            "value_count": sum(counts), "value_sum": 0.5, "bucket_bounds": HTTP_DURATION_BOUNDS,
            "bucket_counts": counts}


@pytest.mark.django_db
def test_a_resent_log_batch_is_not_stored_twice():
    batch = [_log(1), _log(2, level="ERROR")]

    assert insert_log_events(batch) == 2
    assert insert_log_events(batch) == 0
    assert LogEvent.objects.count() == 2


@pytest.mark.django_db
def test_trace_rows_dedupe_on_the_id_derived_from_trace_and_span():
    assert insert_trace_rows([_span("00f067aa0ba902b7"), _span("00f067aa0ba902b7"), _span("b7ad6b7169203331")]) == 2
    assert TraceIndexEntry.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.django_db
@pytest.mark.parametrize("trace_id, span_id", [
    ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
    ("00000000000000000000000000000001", "ffffffff80000000"),  # the span bits are a negative int4 in a chunk
    ("ffffffffffffffffffffffffffffffff", "0000000000000000"),
])
def test_a_span_row_id_is_the_trace_ids_last_12_bytes_then_the_span_ids_last_4_in_python_and_in_sql(
        trace_id, span_id):
    expected = uuid.UUID(hex=trace_id[8:] + span_id[8:])
    assert span_row_id(trace_id, span_id) == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_span_row_id(%s::uuid, telemetry_span_id_bits(%s::uuid)),"
                       " telemetry_span_id_bits(%s::uuid)", [trace_id, expected, expected])
        derived, bits = cursor.fetchone()
    assert derived == expected
    assert bits == int.from_bytes(bytes.fromhex(span_id[8:]), "big", signed=True)


def test_a_row_lacking_a_column_is_refused_with_its_name():
    row = _log(1)
    del row["message"]

    with pytest.raises(StorageError, match="telemetry_log_events row lacks message"):
        insert_log_events([row])


@pytest.mark.django_db
def test_counter_samples_of_the_same_minute_add_up():
    row = {"ts": MINUTE, "metric_name": Metric.HTTP_REQUESTS_TOTAL.value, "labels": LABELS,
           "value_count": 40, "value_sum": 40.0}

    upsert_metric_samples([row, {**row, "value_count": 2, "value_sum": 2.0}])
    upsert_metric_samples([row])

    assert MetricSample.objects.get().value_count == 82


@pytest.mark.django_db
def test_a_gauge_keeps_the_later_value_and_counts_observations():
    row = {"ts": MINUTE, "metric_name": Metric.DB_POOL_CONNECTIONS_ACTIVE.value, "labels": {},
           "value_count": 2, "value_sum": 7.0}

    upsert_metric_samples([row])
    upsert_metric_samples([{**row, "value_count": 1, "value_sum": 9.0}])

    stored = MetricSample.objects.get()
    assert (stored.value_sum, stored.value_count) == (9.0, 3)


@pytest.mark.django_db
def test_histograms_merge_buckets_and_recompute_percentiles_from_them():
    first = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    second = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90]

    upsert_metric_samples([_histogram(first)])
    upsert_metric_samples([_histogram(second)])

    stored = MetricSample.objects.get()
    merged = [a + b for a, b in zip(first, second, strict=True)]
    assert stored.bucket_counts == merged and stored.value_count == 100
    assert (stored.value_p50, stored.value_p95, stored.value_p99) == histograms.percentiles(
        HTTP_DURATION_BOUNDS, merged)
    assert stored.value_p95 > 1.0  # dominated by the slow second flush, not an average of the two


@pytest.mark.django_db
def test_an_unknown_metric_is_refused():
    with pytest.raises(StorageError, match="unknown metric 'kaiku.http.requests'"):
        upsert_metric_samples([{"ts": MINUTE, "metric_name": "kaiku.http.requests", "labels": {}}])


@pytest.mark.django_db
def test_touch_series_keeps_first_seen_and_moves_last_seen_forward():
    touch_series(Metric.HTTP_REQUESTS_TOTAL, LABELS, MINUTE)
    touch_series(Metric.HTTP_REQUESTS_TOTAL, LABELS, MINUTE + timedelta(hours=1))
    touch_series(Metric.HTTP_REQUESTS_TOTAL, LABELS, MINUTE - timedelta(hours=1))

    series = Series.objects.get()
    assert (series.first_seen, series.last_seen) == (MINUTE, MINUTE + timedelta(hours=1))


@pytest.mark.django_db
def test_a_session_reported_again_when_it_ends_is_closed_not_ignored():
    import uuid

    from telemetry.models import ConnectionSession
    from telemetry.storage import insert_voice_sessions

    session = {"id": uuid.uuid4(), "started_at": MINUTE}
    insert_voice_sessions([session])
    insert_voice_sessions([{**session, "ended_at": MINUTE + timedelta(minutes=3), "outcome": "crash"}])
    insert_voice_sessions([session])  # a late re-send of the start must not reopen it

    stored = ConnectionSession.objects.get(id=session["id"])
    assert (stored.ended_at, stored.outcome) == (MINUTE + timedelta(minutes=3), "crash")
