"""Error groups counted at ingest: ERROR logs and failed spans into one row per group and minute (and per hour,
their sums), exact under re-delivery and under two receivers at once, and gone with the 30-day retention."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

from telemetry import error_groups
from telemetry.fingerprints import Fingerprint, Source
from telemetry.ingest.pipeline import ingest
from telemetry.otlp import OtlpSignal
from telemetry.retention import enforce_retention
from tests.telemetry.ingest.otlp_builders import (
    SEVERITY_ERROR,
    SEVERITY_WARN,
    log_record,
    logs_request,
    ns,
    span,
    traces_request,
)

NOW = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=5)
MINUTE = NOW.replace(second=0)
POOL = Fingerprint.of(Source.LOG, "vc-server", "db.pool", "pool exhausted (<n> waiting)")
GROUP_TABLES = (error_groups.MINUTES_TABLE, error_groups.HOURS_TABLE, error_groups.DAYS_TABLE,
                error_groups.GROUPS_TABLE)


@pytest.fixture(autouse=True)
def ingest_settings(settings):
    settings.TELEMETRY_TRACE_SAMPLE_RATE = 0.0
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000


def pool_error(n: int, waiting: int, route: str | None = None, trace: bytes = b""):
    attributes = {"event.name": "db.pool", **({"http.route": route} if route else {})}
    return log_record(ns(NOW) + n * 1_000_000, SEVERITY_ERROR, f"pool exhausted ({waiting} waiting)", attributes,
                      trace_id=trace, span_id=b"\x01" * 8 if trace else b"")


def groups() -> dict[int, dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, source, service, event_template, message_template, first_seen, last_seen,"
                       f" example_message, example_trace_id, routes FROM {error_groups.GROUPS_TABLE}")
        names = [column.name for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def minute_counts() -> dict[tuple[int, datetime], int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, ts, count FROM {error_groups.MINUTES_TABLE}")
        return {(fingerprint, ts): count for fingerprint, ts, count in cursor.fetchall()}


def hour_counts() -> dict[tuple[int, datetime], int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, hour, count FROM {error_groups.HOURS_TABLE}")
        return {(fingerprint, hour): count for fingerprint, hour, count in cursor.fetchall()}


def day_counts() -> dict[tuple[int, datetime], int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT fingerprint, day, count FROM {error_groups.DAYS_TABLE}")
        return {(fingerprint, day): count for fingerprint, day, count in cursor.fetchall()}


def summed_by_hour(minutes: dict[tuple[int, datetime], int]) -> dict[tuple[int, datetime], int]:
    hours: dict[tuple[int, datetime], int] = {}
    for (fingerprint, minute), count in minutes.items():
        key = (fingerprint, minute.replace(minute=0))
        hours[key] = hours.get(key, 0) + count
    return hours


def summed_by_day(counts: dict[tuple[int, datetime], int]) -> dict[tuple[int, datetime], int]:
    days: dict[tuple[int, datetime], int] = {}
    for (fingerprint, moment), count in counts.items():
        key = (fingerprint, moment.replace(hour=0, minute=0))
        days[key] = days.get(key, 0) + count
    return days


@pytest.mark.django_db
def test_error_logs_differing_only_in_numbers_count_into_one_group_per_minute():
    request = logs_request(
        pool_error(1, 3960, route="/api/v1/guilds/{guild_id}"),
        pool_error(2, 641, route="/api/v1/messages"),
        pool_error(3, 12, route="/api/v1/guilds/{guild_id}", trace=bytes.fromhex("ab" * 16)),
        log_record(ns(NOW), SEVERITY_WARN, "pool almost exhausted (90 %)", {"event.name": "db.pool"}),
        log_record(ns(NOW) + 61_000_000_000, SEVERITY_ERROR, "token refresh failed", {"event.name": "auth.refresh"}),
    )
    ingest(OtlpSignal.LOGS, request, now=NOW + timedelta(minutes=2))

    refresh = Fingerprint.of(Source.LOG, "vc-server", "auth.refresh", "token refresh failed")
    assert minute_counts() == {(POOL.as_int, MINUTE): 3, (refresh.as_int, MINUTE + timedelta(minutes=1)): 1}
    assert hour_counts() == summed_by_hour(minute_counts())  # the same statement adds each minute to its hour
    assert day_counts() == summed_by_day(minute_counts())  # and to its day
    pool = groups()[POOL.as_int]
    assert pool["source"] == "log" and pool["service"] == "vc-server"
    assert (pool["event_template"], pool["message_template"]) == ("db.pool", "pool exhausted (<n> waiting)")
    assert pool["first_seen"] == NOW + timedelta(milliseconds=1)
    assert pool["last_seen"] == NOW + timedelta(milliseconds=3)
    assert pool["example_message"] == "pool exhausted (12 waiting)"  # the newest occurrence's
    assert pool["example_trace_id"] == "ab" * 16
    assert pool["routes"] == ["/api/v1/guilds/{guild_id}", "/api/v1/messages"]  # first seen first, once each


@pytest.mark.django_db
def test_a_re_sent_batch_counts_nothing_twice_and_a_later_batch_adds_to_the_minute():
    first = logs_request(pool_error(1, 10), pool_error(2, 20))
    ingest(OtlpSignal.LOGS, first, now=NOW + timedelta(minutes=1))
    ingest(OtlpSignal.LOGS, first, now=NOW + timedelta(minutes=1))  # the collector retried
    assert minute_counts() == {(POOL.as_int, MINUTE): 2}
    ingest(OtlpSignal.LOGS, logs_request(pool_error(1, 10), pool_error(3, 30)), now=NOW + timedelta(minutes=1))
    assert minute_counts() == {(POOL.as_int, MINUTE): 3}  # only the new record counted
    assert hour_counts() == {(POOL.as_int, MINUTE.replace(minute=0)): 3}


@pytest.mark.django_db
def test_an_older_request_keeps_the_newest_example_and_moves_first_seen_back():
    ingest(OtlpSignal.LOGS, logs_request(pool_error(5, 50)), now=NOW + timedelta(minutes=1))
    ingest(OtlpSignal.LOGS, logs_request(pool_error(1, 10)), now=NOW + timedelta(minutes=1))
    pool = groups()[POOL.as_int]
    assert (pool["first_seen"], pool["last_seen"]) == (NOW + timedelta(milliseconds=1), NOW + timedelta(milliseconds=5))
    assert pool["example_message"] == "pool exhausted (50 waiting)"


@pytest.mark.django_db
def test_routes_are_bounded():
    records = [pool_error(n, n, route=f"/api/v1/r{chr(97 + n)}") for n in range(error_groups.MAX_ROUTES + 3)]
    ingest(OtlpSignal.LOGS, logs_request(*records[:4]), now=NOW + timedelta(minutes=1))
    ingest(OtlpSignal.LOGS, logs_request(*records[4:]), now=NOW + timedelta(minutes=1))
    assert groups()[POOL.as_int]["routes"] == [f"/api/v1/r{chr(97 + n)}" for n in range(error_groups.MAX_ROUTES)]


@pytest.mark.django_db
def test_failed_spans_count_into_span_groups_and_slow_spans_do_not():
    start = ns(NOW)
    request = traces_request(
        span(b"\x01" * 16, b"\x01" * 8, start, 5, name="POST /api/v1/messages", error=True,
             attributes={"http.route": "/api/v1/messages", "http.response.status_code": 500}),
        span(b"\x02" * 16, b"\x02" * 8, start + 1000, 5, name="POST /api/v1/messages",
             attributes={"http.route": "/api/v1/messages", "http.response.status_code": 503}),
        span(b"\x03" * 16, b"\x03" * 8, start + 2000, 2500, name="POST /api/v1/messages",
             attributes={"http.route": "/api/v1/messages", "http.response.status_code": 200}),
    )
    ingest(OtlpSignal.TRACES, request, now=NOW + timedelta(minutes=1))
    ingest(OtlpSignal.TRACES, request, now=NOW + timedelta(minutes=1))  # re-sent: nothing new

    status_5xx = Fingerprint.of(Source.SPAN, "vc-server", "POST /api/v1/messages", "status 500")
    assert minute_counts() == {(status_5xx.as_int, MINUTE): 2}
    group = groups()[status_5xx.as_int]
    assert (group["source"], group["message_template"]) == ("span", "status <n>")
    assert group["example_message"] == "status 503" and group["example_trace_id"] == "02" * 16
    assert group["routes"] == ["/api/v1/messages"]


@pytest.fixture
def committed_groups(transactional_db):
    def truncate():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(GROUP_TABLES)}, telemetry_log_events")

    truncate()
    yield
    truncate()


def test_two_receivers_at_once_count_exactly(committed_groups):
    """Two requests of the same group and minute in two transactions at once: the second waits on the first's
    minute row and adds to it; neither count is lost."""
    first_counted = threading.Event()
    release_first = threading.Event()
    failures: list[BaseException] = []

    def deliver(records, hold: bool) -> None:
        try:
            with transaction.atomic():
                ingest(OtlpSignal.LOGS, logs_request(*records), now=NOW + timedelta(minutes=1))
                if hold:  # keep the first receiver's counts uncommitted while the second one runs into them
                    first_counted.set()
                    release_first.wait(10)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=deliver, args=([pool_error(n, n) for n in range(1, 4)], True))
    second = threading.Thread(target=deliver, args=([pool_error(n, n) for n in range(10, 15)], False))
    first.start()
    assert first_counted.wait(10)
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first receiver's minute row
    release_first.set()
    first.join(10)
    second.join(10)
    assert not failures
    assert minute_counts() == {(POOL.as_int, MINUTE): 8}
    assert hour_counts() == {(POOL.as_int, MINUTE.replace(minute=0)): 8}
    assert day_counts() == {(POOL.as_int, MINUTE.replace(hour=0, minute=0)): 8}


@pytest.mark.django_db
def test_retention_removes_minutes_and_groups_past_the_cap_exactly():
    now = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
    cutoff = now - timedelta(days=30)
    old = Fingerprint.of(Source.LOG, "vc-server", "old", "gone")
    error_groups.record([
        error_groups.Occurrence(old, cutoff - timedelta(minutes=2), "old", "gone"),
        error_groups.Occurrence(POOL, cutoff - timedelta(minutes=1), "db.pool", "pool exhausted (1 waiting)"),
        error_groups.Occurrence(POOL, cutoff, "db.pool", "pool exhausted (2 waiting)"),
    ])
    report = enforce_retention(now=now, tables=list(GROUP_TABLES))
    assert minute_counts() == {(POOL.as_int, cutoff): 1}
    assert set(groups()) == {POOL.as_int}  # last seen at the cutoff: kept
    # Both groups' rows of the hour holding the cutoff are deleted, then POOL's is rebuilt from its minute left.
    assert {table.table: table.rows_deleted for table in report.tables} == {
        error_groups.MINUTES_TABLE: 2, error_groups.HOURS_TABLE: 2, error_groups.DAYS_TABLE: 2,
        error_groups.GROUPS_TABLE: 1}
    assert hour_counts() == {(POOL.as_int, cutoff.replace(minute=0)): 1}
    assert day_counts() == {(POOL.as_int, cutoff.replace(hour=0, minute=0)): 1}


@pytest.mark.django_db
def test_retention_keeps_hour_counts_exact_to_the_cutoff():
    """The hour holding the cutoff keeps only its minutes at or after the cutoff; a window starting on that hour
    counts what the minute rows left give, though it reads the hour row."""
    from telemetry.queries.error_groups import groups_in_window

    now = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
    cutoff = now - timedelta(days=30)  # 12:30, 30 days before: its hour starts at 12:00
    hour = cutoff.replace(minute=0)
    error_groups.record([error_groups.Occurrence(POOL, moment, "db.pool", "pool exhausted (1 waiting)") for moment in (
        hour - timedelta(minutes=1), hour + timedelta(minutes=10), cutoff - timedelta(seconds=1), cutoff,
        cutoff + timedelta(minutes=15), hour + timedelta(hours=1, minutes=5))])
    assert hour_counts() == {(POOL.as_int, hour - timedelta(hours=1)): 1, (POOL.as_int, hour): 4,
                             (POOL.as_int, hour + timedelta(hours=1)): 1}

    report = enforce_retention(now=now, tables=list(GROUP_TABLES))

    assert hour_counts() == {(POOL.as_int, hour): 2, (POOL.as_int, hour + timedelta(hours=1)): 1}
    assert hour_counts() == summed_by_hour(minute_counts())
    assert [group.count for group in groups_in_window(hour, hour + timedelta(hours=2))] == [3]
    day = hour.replace(hour=0)  # the day holding the cutoff: rebuilt from the hours left, read whole from its row
    assert day_counts() == {(POOL.as_int, day): 3} == summed_by_day(minute_counts())
    assert [group.count for group in groups_in_window(day, day + timedelta(days=2))] == [3]
    assert {table.table: table.rows_deleted for table in report.tables}[error_groups.HOURS_TABLE] == 2  # then 1 back
