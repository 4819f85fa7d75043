"""The trace index selection of contract section 5."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry import packing
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.traces import KeptReason, TraceSelection, store_trace_rows, trace_rows
from telemetry.otlp import OtlpSignal
from telemetry.storage import TRACE_COLUMNS, span_row_id
from tests.telemetry.ingest.otlp_builders import ns, span, traces_request

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(NOW)
NEVER_SAMPLED = bytes.fromhex("ff" * 16)
ALWAYS_SAMPLED = bytes.fromhex("00" * 16)
NO_SAMPLING = TraceSelection(slow_ns=1000 * 1_000_000, db_slow_ns=100 * 1_000_000, sample_rate=0.0)
PARENT = b"\x09" * 8
INTERNAL = Span.SPAN_KIND_INTERNAL


def kept(*spans, selection=NO_SAMPLING):
    outcome = IngestOutcome(OtlpSignal.TRACES)
    rows = trace_rows(traces_request(*spans), outcome, WINDOW, selection)
    return [dict(zip(TRACE_COLUMNS, row, strict=True)) for row in rows], outcome


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def test_entry_spans_are_kept_when_failed_5xx_or_slow():
    rows, outcome = kept(
        span(NEVER_SAMPLED, sid(1), ns(NOW), 5, error=True),
        span(NEVER_SAMPLED, sid(2), ns(NOW), 5, attributes={"http.response.status_code": 503}),
        span(NEVER_SAMPLED, sid(3), ns(NOW), 1000),
        span(NEVER_SAMPLED, sid(4), ns(NOW), 999),
        span(NEVER_SAMPLED, sid(5), ns(NOW), 5, attributes={"http.response.status_code": 404}),
    )

    assert [row["status_code"] for row in rows] == ["ERROR", "503", "OK"]
    assert (outcome.accepted, outcome.not_kept) == (5, 2)


def test_db_spans_use_the_db_threshold_and_other_child_spans_are_never_kept():
    rows, _ = kept(
        span(
            NEVER_SAMPLED,
            sid(1),
            ns(NOW),
            150,
            name="SELECT guilds",
            parent=PARENT,
            kind=INTERNAL,
            attributes={"db.system": "postgresql"},
        ),
        span(
            NEVER_SAMPLED, sid(2), ns(NOW), 50, parent=PARENT, kind=INTERNAL, attributes={"db.system": "pg"}
        ),
        span(NEVER_SAMPLED, sid(3), ns(NOW), 5000, name="render", parent=PARENT, kind=INTERNAL),
    )

    assert [(row["span_name"], row["domain"], row["duration_ms"]) for row in rows] == [
        ("SELECT guilds", "db", 150)
    ]


def test_sampling_by_trace_id_keeps_every_entry_and_db_span_of_a_trace():
    selection = TraceSelection(slow_ns=10**12, db_slow_ns=10**12, sample_rate=0.5)
    rows, _ = kept(
        span(ALWAYS_SAMPLED, sid(1), ns(NOW), 1),
        span(
            ALWAYS_SAMPLED, sid(2), ns(NOW), 1, parent=PARENT, kind=INTERNAL, attributes={"db.system": "pg"}
        ),
        span(ALWAYS_SAMPLED, sid(3), ns(NOW), 1, parent=PARENT, kind=INTERNAL),
        span(NEVER_SAMPLED, sid(4), ns(NOW), 1),
        selection=selection,
    )

    assert [row["domain"] for row in rows] == ["api", "db"]


def test_row_fields_follow_the_contract():
    (row,), _ = kept(
        span(
            NEVER_SAMPLED,
            sid(7),
            ns(NOW),
            1234.9,
            name="invite alice@example.com",
            kind=Span.SPAN_KIND_CONSUMER,
            parent=PARENT,
            attributes={"http.route": "/api/v1/guilds/123456", "kaiku.domain": "Voice", "user.id": "u1"},
        )
    )

    assert row == {
        "id": span_row_id(NEVER_SAMPLED.hex(), sid(7).hex()),
        "ts": NOW,
        "trace_id": NEVER_SAMPLED.hex(),
        "span_name": "invite [email]",
        "domain": "voice",
        "route": "/api/v1/guilds/{id}",
        "status_code": "OK",
        "duration_ms": 1234,
        "service": "vc-server",
        "kept_reason": "s",
    }


def test_invalid_spans_are_rejected_with_reasons():
    _, outcome = kept(
        span(b"\x01" * 3, sid(1), ns(NOW), 5, error=True),
        span(NEVER_SAMPLED, sid(2), ns(NOW.replace(year=2025)), 5, error=True),
        span(NEVER_SAMPLED, sid(3), ns(NOW), -5, error=True),
    )

    assert outcome.error_message() == (
        "3 spans rejected: invalid trace or span id (1), timestamp older than "
        "the 30-day retention window (1), end time before start time (1)"
    )


def test_a_db_span_whose_only_keep_reason_is_a_5xx_status_is_kept():
    rows, outcome = kept(
        span(NEVER_SAMPLED, sid(1), ns(NOW), 5, name="SELECT guilds", parent=PARENT, kind=INTERNAL,
             attributes={"db.system": "postgresql", "http.response.status_code": 503}),
        span(NEVER_SAMPLED, sid(2), ns(NOW), 5, name="render", parent=PARENT, kind=INTERNAL,
             attributes={"http.response.status_code": 503}),
        span(NEVER_SAMPLED, sid(3), ns(NOW), 5, name="SELECT users", parent=PARENT, kind=INTERNAL,
             attributes={"db.system": "postgresql", "http.response.status_code": 200}),
    )

    assert [(row["span_name"], row["status_code"]) for row in rows] == [("SELECT guilds", "503")]
    assert (outcome.accepted, outcome.not_kept) == (3, 2)


def test_each_kept_span_records_the_first_rule_that_kept_it():
    selection = TraceSelection(slow_ns=1000 * 1_000_000, db_slow_ns=100 * 1_000_000, sample_rate=0.5)
    rows, _ = kept(
        span(ALWAYS_SAMPLED, sid(1), ns(NOW), 5000, error=True),
        span(ALWAYS_SAMPLED, sid(2), ns(NOW), 5, attributes={"http.response.status_code": 502}),
        span(ALWAYS_SAMPLED, sid(3), ns(NOW), 1000),
        span(ALWAYS_SAMPLED, sid(4), ns(NOW), 150, parent=PARENT, kind=INTERNAL, attributes={"db.system": "pg"}),
        span(ALWAYS_SAMPLED, sid(5), ns(NOW), 5),
        span(NEVER_SAMPLED, sid(6), ns(NOW), 5),
        selection=selection,
    )

    assert [row["kept_reason"] for row in rows] == [
        KeptReason.ERROR, KeptReason.ERROR, KeptReason.SLOW, KeptReason.SLOW, KeptReason.SAMPLED
    ]
    assert {row["kept_reason"] for row in rows} <= {"e", "s", "p"}  # the one-byte codes retention filters on


@pytest.mark.django_db
def test_spans_resent_after_their_hour_was_packed_are_not_stored_again():
    rows, _ = kept(span(NEVER_SAMPLED, sid(1), ns(NOW), 5, error=True), span(NEVER_SAMPLED, sid(2), ns(NOW), 1000))
    stored = IngestOutcome(OtlpSignal.TRACES)
    store_trace_rows([tuple(row.values()) for row in rows], stored)
    with transaction.atomic(), connection.cursor() as cursor:
        assert packing.pack_range(cursor, packing.TRACES, NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == 2

    again = IngestOutcome(OtlpSignal.TRACES)
    store_trace_rows([tuple(row.values()) for row in rows], again)

    # A late span of the same trace, starting the same microsecond, is new: its span id differs.
    (late,), _ = kept(span(NEVER_SAMPLED, sid(3), ns(NOW), 5, error=True))
    new = IngestOutcome(OtlpSignal.TRACES)
    store_trace_rows([tuple(late.values())], new)

    assert (stored.stored, again.stored, new.stored) == (2, 0, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_trace_index_all")
        assert cursor.fetchone()[0] == 3
