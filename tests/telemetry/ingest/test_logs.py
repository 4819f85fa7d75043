"""Log records → curated WARN/ERROR rows, and the ERROR announcement after commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.ingest.logs import log_rows
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.pipeline import ingest
from telemetry.models import LogEvent
from telemetry.otlp import OtlpSignal
from telemetry.signals import error_logs_ingested
from tests.telemetry.ingest.otlp_builders import (
    SEVERITY_ERROR,
    SEVERITY_INFO,
    SEVERITY_WARN,
    log_record,
    logs_request,
    ns,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(NOW)
TRACE_ID, SPAN_ID = bytes(range(1, 17)), bytes(range(1, 9))


def convert(*records):
    outcome = IngestOutcome(OtlpSignal.LOGS)
    return log_rows(logs_request(*records), outcome, WINDOW), outcome


def test_an_error_record_becomes_a_scrubbed_row_with_allowlisted_attrs():
    record = log_record(
        ns(NOW),
        SEVERITY_ERROR,
        "login failed for alice@example.com from 10.1.2.3\nstack...",
        {
            "kaiku.domain": "AUTH",
            "error.type": "Auth",
            "user.id": "u-42",
            "http.route": "/api/v1/users/12345",
            "exception.stacktrace": "Traceback",
            "peer": "x",
        },
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
    )

    (row,), outcome = convert(record)

    assert row["level"] == "ERROR"
    assert row["service"] == "vc-server"
    assert row["domain"] == "auth"
    assert row["message"] == "login failed for [email] from [ip]\nstack..."
    assert row["event"] == "login failed for [email] from [ip]"
    assert row["attrs"] == {"error.type": "auth", "http.route": "/api/v1/users/{id}"}
    assert (row["trace_id"], row["span_id"]) == (TRACE_ID.hex(), SPAN_ID.hex())
    assert row["ts"] == NOW
    assert (outcome.accepted, outcome.rejected, outcome.not_kept) == (1, 0, 0)


def test_event_name_attribute_wins_over_the_body():
    (row,), _ = convert(log_record(ns(NOW), SEVERITY_WARN, "body", {"event.name": "voice.join_failed"}))

    assert (row["level"], row["event"]) == ("WARN", "voice.join_failed")


def test_info_records_are_accepted_but_not_kept_and_fatal_counts_as_error():
    rows, outcome = convert(log_record(ns(NOW), SEVERITY_INFO, "fine"), log_record(ns(NOW), 21, "fatal"))

    assert [row["level"] for row in rows] == ["ERROR"]
    assert (outcome.accepted, outcome.not_kept, outcome.rejected) == (2, 1, 0)


def test_records_outside_the_window_are_rejected_with_the_reason():
    rows, outcome = convert(
        log_record(ns(NOW - timedelta(days=31)), SEVERITY_ERROR, "old"),
        log_record(ns(NOW + timedelta(minutes=11)), SEVERITY_ERROR, "future"),
        log_record(ns(NOW + timedelta(minutes=9)), SEVERITY_ERROR, "slightly ahead"),
    )

    assert [row["message"] for row in rows] == ["slightly ahead"]
    assert outcome.error_message() == (
        "2 log records rejected: timestamp older than the 30-day retention "
        "window (1), timestamp more than 10 minutes in the future (1)"
    )


def test_the_observed_time_is_used_without_a_record_time():
    record = log_record(0, SEVERITY_WARN, "x")
    record.observed_time_unix_nano = ns(NOW)

    (row,), _ = convert(record)

    assert row["ts"] == NOW


def test_ids_are_deterministic_and_distinguish_records():
    first, _ = convert(log_record(ns(NOW), SEVERITY_WARN, "a"), log_record(ns(NOW), SEVERITY_WARN, "b"))
    again, _ = convert(log_record(ns(NOW), SEVERITY_WARN, "a"), log_record(ns(NOW), SEVERITY_WARN, "b"))

    assert [row["id"] for row in first] == [row["id"] for row in again]
    assert first[0]["id"] != first[1]["id"]


def test_long_bodies_are_cut_to_2000_characters_and_nul_characters_dropped():
    (row,), _ = convert(log_record(ns(NOW), SEVERITY_WARN, "x\x00y" + "z" * 5000))

    assert len(row["message"]) == 2000
    assert row["message"].startswith("xyz")


@pytest.mark.django_db
def test_only_newly_inserted_error_rows_are_announced_after_commit(django_capture_on_commit_callbacks):
    announced = []

    def receiver(sender, rows, **kwargs):
        announced.extend(rows)

    error_logs_ingested.connect(receiver)
    now = datetime.now(UTC)
    request = logs_request(
        log_record(ns(now), SEVERITY_ERROR, "db down token=abc123", {"kaiku.domain": "db"}),
        log_record(ns(now), SEVERITY_WARN, "slow"),
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ingest(OtlpSignal.LOGS, request)
        with django_capture_on_commit_callbacks(execute=True):
            ingest(OtlpSignal.LOGS, request)
    finally:
        error_logs_ingested.disconnect(receiver)

    assert LogEvent.objects.count() == 2
    assert len(announced) == 1
    assert announced[0]["message"] == "db down token=[redacted]"
    assert announced[0]["level"] == "ERROR"
    assert announced[0]["domain"] == "db"
    assert set(announced[0]) == {"ts", "service", "domain", "event", "message", "trace_id", "level", "group", "route"}


def test_forbidden_attributes_are_counted_for_every_record_even_with_repeated_attributes():
    attributes = {"error.type": "db", "user.id": "u-1", "enduser.id": "e-1", "code.function": "load"}

    rows, outcome = convert(*(log_record(ns(NOW), SEVERITY_WARN, f"slow {n}", attributes) for n in range(3)))

    assert [row["attrs"] for row in rows] == [{"error.type": "db", "code.function": "load"}] * 3
    assert outcome.forbidden_dropped == 6
