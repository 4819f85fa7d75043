"""The minute table: rebuilt from the samples by the flush and by the sample triggers, exact after re-runs."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from telemetry import minutes
from telemetry.contract import CATALOGUE, SCOPE_CLUSTER, Label, Metric
from telemetry.ingest import buffer
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from telemetry.partitions import ensure_partitions, partition_name
from telemetry.storage import upsert_metric_samples
from tests.factories import HTTP_DURATION_BOUNDS, MetricSampleFactory
from tests.telemetry.ingest.otlp_builders import counter, histogram, metrics_request, ns

pytestmark = pytest.mark.django_db

MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def minute_rows() -> list[tuple]:
    """The minute rows as the samples describe them: keys as their columns, counts as one bigint[]."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT m.ts, k.metric_name, k.scope, k.split, k.bounds, m.sample_rows, m.value_count, m.value_sum,
                       m.total, coalesce(m.bucket_counts::bigint[], m.bucket_counts_wide)
                FROM {minutes.MINUTES_TABLE} AS m JOIN {minutes.KEYS_TABLE} AS k ON k.id = m.key_id
                ORDER BY k.metric_name, m.ts, k.split, k.bounds"""
        )
        return cursor.fetchall()


def rows_from_samples() -> list[tuple]:
    """The minute rows computed from scratch, independently of the functions under test."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT ts, metric_name, scope, telemetry_metric_minute_split(metric_name, labels),
                       coalesce(bucket_bounds, '{}'), count(*)::int, sum(value_count), sum(value_sum),
                       sum(coalesce(value_sum, value_count)), telemetry_bucket_sum(bucket_counts)
                FROM telemetry_metric_samples GROUP BY 1, 2, 3, 4, 5
                ORDER BY metric_name, ts, 4, 5"""
        )
        return cursor.fetchall()


def http(route: str, status: str) -> dict[str, str]:
    return {Label.HTTP_ROUTE: route, Label.HTTP_METHOD: "GET", Label.HTTP_STATUS_CODE: status}


def test_every_sample_write_keeps_the_minutes_equal_to_the_samples():
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "200"), value_count=90, value_sum=90.0)
    MetricSampleFactory(ts=MINUTE, labels=http("/b", "503"), value_count=7, value_sum=7.0)
    MetricSampleFactory(ts=MINUTE, labels=http("/c", "500"), value_count=3, value_sum=3.0)
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"))
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/b", "200"), bucket_bounds=[0.1, 1.0],
                        bucket_counts=[1, 2, 3])
    MetricSampleFactory(gauge=True, ts=MINUTE + timedelta(minutes=1), value_sum=None)

    rows = minute_rows()

    assert rows == rows_from_samples()
    requests = {row[3]: row for row in rows if row[1] == Metric.HTTP_REQUESTS_TOTAL}
    assert {split: (row[5], row[8]) for split, row in requests.items()} == {"2": (1, 90.0), "5": (2, 10.0)}
    layouts = [row[4] for row in rows if row[1] == Metric.HTTP_REQUEST_DURATION_SECONDS]
    assert sorted(layouts) == sorted([[0.1, 1.0], HTTP_DURATION_BOUNDS])


def test_a_late_sample_that_changes_the_bucket_layout_leaves_no_stale_minute_row():
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"))
    late = {"ts": MINUTE, "metric_name": Metric.HTTP_REQUEST_DURATION_SECONDS, "labels": http("/a", "200"),
            "value_count": 3, "value_sum": 0.3, "bucket_bounds": [0.02, 0.2], "bucket_counts": [1, 1, 1]}

    upsert_metric_samples([late])

    rows = minute_rows()
    assert rows == rows_from_samples()
    assert len(rows) == 1 and rows[0][4] != HTTP_DURATION_BOUNDS


def test_recompute_is_idempotent_and_repairs_a_damaged_minute():
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "200"), value_count=5, value_sum=5.0)
    expected = minute_rows()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {minutes.MINUTES_TABLE} SET total = 999, sample_rows = 9")
        key = (Metric.HTTP_REQUESTS_TOTAL.value, SCOPE_CLUSTER, MINUTE)
        minutes.recompute(cursor, [key, key])
        minutes.recompute(cursor, [key])

    assert minute_rows() == expected


def test_deferred_triggers_leave_the_minutes_to_the_explicit_recompute():
    with connection.cursor() as cursor:
        with minutes.triggers_deferred(cursor):
            MetricSampleFactory(ts=MINUTE, labels=http("/a", "200"))
            assert minute_rows() == []
            minutes.recompute(cursor, [(Metric.HTTP_REQUESTS_TOTAL.value, SCOPE_CLUSTER, MINUTE)])
            assert minute_rows() == rows_from_samples() != []
        MetricSampleFactory(ts=MINUTE, labels=http("/b", "200"))  # the block ended: triggers again
        assert minute_rows() == rows_from_samples()
        with pytest.raises(RuntimeError), transaction.atomic(), minutes.triggers_deferred(cursor):
            raise RuntimeError("a failed write rolls the setting back with its savepoint")
        MetricSampleFactory(ts=MINUTE, labels=http("/c", "200"))
        assert minute_rows() == rows_from_samples()


def test_deleted_samples_keep_their_minutes():
    """Retention drops per-label samples before the minutes (TELEMETRY_SAMPLE_RETENTION_DAYS)."""
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "200"))
    before = minute_rows()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_metric_samples")
    assert minute_rows() == before != []


def test_the_flush_writes_the_minutes_in_its_transaction_and_a_late_point_keeps_them_exact():
    start = ns(MINUTE - timedelta(hours=1))
    route = {"http.route": "/api/v1/x", "http.request.method": "GET", "http.response.status_code": 502}

    def at(seconds: float) -> int:
        return ns(MINUTE) + int(seconds * 1_000_000_000)

    ingest(OtlpSignal.METRICS, metrics_request(
        counter(Metric.HTTP_REQUESTS_TOTAL, [(start, at(10), 100, route)]),
        histogram(Metric.HTTP_REQUEST_DURATION_SECONDS, [(start, at(10), [0.1, 1.0], [1, 2, 3], 1.5, route)]),
    ))
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    first = minute_rows()
    ingest(OtlpSignal.METRICS, metrics_request(counter(Metric.HTTP_REQUESTS_TOTAL, [(start, at(50), 160, route)])))
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))

    rows = minute_rows()
    assert rows == rows_from_samples()
    assert {row[1]: row[8] for row in first}[Metric.HTTP_REQUESTS_TOTAL] == 100
    assert {row[1]: (row[3], row[8]) for row in rows}[Metric.HTTP_REQUESTS_TOTAL] == ("5", 160)


def test_an_interrupted_flush_writes_no_minutes(monkeypatch):
    start = ns(MINUTE - timedelta(hours=1))
    ingest(OtlpSignal.METRICS, metrics_request(counter(
        Metric.HTTP_REQUESTS_TOTAL, [(start, ns(MINUTE) + 10_000_000_000, 100, {"http.route": "/x"})])))

    def recompute_then_die(cursor, keys):
        minutes_written = real_recompute(cursor, keys)
        raise RuntimeError(f"worker killed after writing {minutes_written} minute rows")

    real_recompute = minutes.recompute
    monkeypatch.setattr(minutes, "recompute", recompute_then_die)
    with pytest.raises(RuntimeError):
        buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    assert minute_rows() == []

    monkeypatch.setattr(minutes, "recompute", real_recompute)
    buffer.flush_pending(now=MINUTE + timedelta(minutes=5))
    assert minute_rows() == rows_from_samples() != []


@pytest.mark.parametrize("metric", sorted(CATALOGUE))
def test_the_database_split_matches_the_python_one(metric):
    labels = {Label.HTTP_STATUS_CODE: "503", Label.OUTCOME: "success", Label.HTTP_ROUTE: "/r"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT telemetry_metric_minute_split(%s, %s::jsonb), telemetry_metric_minute_split(%s, '{}')",
                       [metric, json.dumps(labels), metric])
        with_labels, without = cursor.fetchone()
    assert (with_labels, without) == (minutes.split_value(metric, labels), "")


def test_backfill_rebuilds_the_same_rows():
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "500"))
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"))
    expected = minute_rows()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {minutes.MINUTES_TABLE}")

    assert minutes.backfill() == len(expected)
    assert minute_rows() == expected


def test_the_minute_table_has_daily_partitions():
    created = ensure_partitions(now=datetime(2031, 1, 10, tzinfo=UTC), days_back=0, days_ahead=0,
                                tables=[minutes.MINUTES_TABLE])
    assert created == [partition_name(minutes.MINUTES_TABLE, datetime(2031, 1, 10).date())]


def test_partition_upkeep_skips_the_table_while_an_older_migration_runs():
    """Migration 0001 creates the partitions of every partitioned table, before 0004 creates this one."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {minutes.MINUTES_TABLE}")  # undone with the test's transaction

    assert ensure_partitions(tables=[minutes.MINUTES_TABLE]) == []


def test_a_late_point_of_a_minute_whose_samples_retention_dropped_is_added_to_it(settings):
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 1
    old_minute = MINUTE - timedelta(days=3)
    start = ns(old_minute - timedelta(hours=1))
    route = {"http.route": "/api/v1/x", "http.request.method": "GET", "http.response.status_code": 200}
    bounds = [0.1, 1.0]

    def points(seconds: int, value: int, counts: list[int]):
        at = ns(old_minute) + seconds * 1_000_000_000
        return metrics_request(
            counter(Metric.HTTP_REQUESTS_TOTAL, [(start, at, value, route)]),
            histogram(Metric.HTTP_REQUEST_DURATION_SECONDS, [(start, at, bounds, counts, 1.5, route)]),
        )

    ingest(OtlpSignal.METRICS, points(10, 100, [1, 2, 3]))
    buffer.flush_pending()
    assert minute_rows() == rows_from_samples()  # added to an empty minute: what a rebuild gives
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_metric_samples")  # the sample tier of retention
    ingest(OtlpSignal.METRICS, points(50, 160, [2, 3, 4]))
    buffer.flush_pending()

    rows = {row[1]: row for row in minute_rows()}
    assert rows[Metric.HTTP_REQUESTS_TOTAL][5:9] == (2, 160, 160.0, 160.0)
    assert rows[Metric.HTTP_REQUEST_DURATION_SECONDS][4] == bounds
    assert rows[Metric.HTTP_REQUEST_DURATION_SECONDS][9] == [2, 3, 4]


def keys() -> dict[int, tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, metric_name, scope, split, bounds FROM {minutes.KEYS_TABLE}")
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}


def bound_sets() -> list[list[float]]:
    return sorted(bounds for _, _, _, bounds in keys().values())


def stored_counts() -> list[tuple]:
    """(bounds, int4 counts, int8 counts, type of the int4 column) of the latency minute rows, as stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT k.bounds, m.bucket_counts, m.bucket_counts_wide, pg_typeof(m.bucket_counts)::text
                FROM {minutes.MINUTES_TABLE} AS m JOIN {minutes.KEYS_TABLE} AS k ON k.id = m.key_id
                WHERE k.metric_name = %s ORDER BY k.bounds""",
            [Metric.HTTP_REQUEST_DURATION_SECONDS],
        )
        return cursor.fetchall()


def test_two_bound_sets_in_one_minute_keep_their_own_rows_and_keys():
    other = [0.1, 1.0]
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"))
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/b", "200"), bucket_bounds=other,
                        bucket_counts=[1, 2, 3])
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/c", "200"), bucket_bounds=other,
                        bucket_counts=[4, 5, 6])

    assert minute_rows() == rows_from_samples()
    assert [(bounds, narrow) for bounds, narrow, _, _ in stored_counts()] == [
        (HTTP_DURATION_BOUNDS, [0, 2, 5, 9, 7, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0]), (other, [5, 7, 9])]
    assert sorted(keys().values()) == [(Metric.HTTP_REQUEST_DURATION_SECONDS, SCOPE_CLUSTER, "", HTTP_DURATION_BOUNDS),
                                       (Metric.HTTP_REQUEST_DURATION_SECONDS, SCOPE_CLUSTER, "", other)]


def test_a_key_is_stored_once_when_first_seen_and_reused_after():
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"), bucket_bounds=[0.3, 3.0],
                        bucket_counts=[1, 1, 1])
    first = keys()
    MetricSampleFactory(histogram=True, ts=MINUTE + timedelta(minutes=1), labels=http("/a", "200"),
                        bucket_bounds=[0.3, 3.0], bucket_counts=[2, 2, 2])
    MetricSampleFactory(histogram=True, ts=MINUTE + timedelta(minutes=2), labels=http("/b", "200"),
                        bucket_bounds=[0.3, 3.0], bucket_counts=[3, 3, 3])
    assert keys() == first
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "503"))  # new metric and split: a new key
    MetricSampleFactory(ts=MINUTE + timedelta(minutes=1), labels=http("/b", "504"))

    assert sorted(keys().values())[0] == (Metric.HTTP_REQUEST_DURATION_SECONDS, SCOPE_CLUSTER, "", [0.3, 3.0])
    assert sorted(keys().values())[1:] == [(Metric.HTTP_REQUESTS_TOTAL, SCOPE_CLUSTER, "5", [])]
    assert minute_rows() == rows_from_samples()


def test_counts_are_int4_and_a_minute_whose_count_exceeds_it_keeps_them_exact_as_int8():
    huge = 2**31  # one more than an int4 holds
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"), bucket_bounds=[0.1, 1.0],
                        bucket_counts=[huge - 1, 0, 0])
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/c", "200"))

    assert [(narrow, wide, kind) for _, narrow, wide, kind in stored_counts()] == [
        ([0, 2, 5, 9, 7, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0], None, "integer[]"),
        ([huge - 1, 0, 0], None, "integer[]")]
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/b", "200"), bucket_bounds=[0.1, 1.0],
                        bucket_counts=[1, 0, 0])

    assert stored_counts()[1][1:3] == (None, [huge, 0, 0])
    assert minute_rows() == rows_from_samples()


def test_a_late_point_added_to_a_minute_moves_its_counts_to_int8_when_they_outgrow_int4(settings):
    settings.TELEMETRY_SAMPLE_RETENTION_DAYS = 1
    old_minute = MINUTE - timedelta(days=3)
    sample = {"ts": old_minute, "metric_name": Metric.HTTP_REQUEST_DURATION_SECONDS, "scope": SCOPE_CLUSTER,
              "labels": http("/a", "200"), "value_count": 2**31 - 1, "value_sum": 1.0, "bucket_bounds": [0.7],
              "bucket_counts": [2**31 - 1, 0]}
    with connection.cursor() as cursor:
        minutes.record(cursor, [sample], now=MINUTE)
        assert stored_counts()[0][1:3] == ([2**31 - 1, 0], None)
        minutes.record(cursor, [{**sample, "value_count": 3, "bucket_counts": [1, 2]}], now=MINUTE)

    assert stored_counts() == [([0.7], None, [2**31, 2], "integer[]")]
    assert minute_rows()[0][5:7] == (2, 2**31 + 2)


def test_pruning_drops_only_keys_no_minute_refers_to():
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"), bucket_bounds=[0.4],
                        bucket_counts=[1, 1])
    MetricSampleFactory(histogram=True, ts=MINUTE + timedelta(minutes=1), labels=http("/a", "200"))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {minutes.MINUTES_TABLE} WHERE ts = %s", [MINUTE])  # as retention would

    assert minutes.prune_keys() == 1
    assert bound_sets() == [HTTP_DURATION_BOUNDS]
    assert minute_rows() != []


def test_the_migration_converts_existing_rows_both_ways():
    slim = importlib.import_module("telemetry.migrations.0008_slim_metric_minutes")
    MetricSampleFactory(ts=MINUTE, labels=http("/a", "500"))
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/a", "200"))
    MetricSampleFactory(histogram=True, ts=MINUTE, labels=http("/b", "200"), bucket_bounds=[0.1, 1.0],
                        bucket_counts=[2**40, 1, 0])
    expected = minute_rows()
    # Undone with the test's transaction, like every DDL statement in PostgreSQL.
    with connection.schema_editor() as editor:
        slim.unslim(None, editor)
    with connection.cursor() as cursor:
        cursor.execute(f"""SELECT ts, metric_name, scope, split, bucket_bounds, sample_rows, value_count, value_sum,
                                  total, bucket_counts FROM {minutes.MINUTES_TABLE}
                           ORDER BY metric_name, ts, split, bucket_bounds""")
        assert cursor.fetchall() == expected
        cursor.execute("SELECT to_regclass(%s)", [minutes.KEYS_TABLE])
        assert cursor.fetchone() == (None,)
    with connection.schema_editor() as editor:
        slim.slim(None, editor)

    assert minute_rows() == expected
    assert [wide for _, _, wide, _ in stored_counts()] == [None, [2**40, 1, 0]]
    MetricSampleFactory(ts=MINUTE + timedelta(minutes=1), labels=http("/a", "200"))  # triggers are back
    assert minute_rows() == rows_from_samples()
