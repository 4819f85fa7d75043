"""Storing log rows: COPY straight into the table, and the staging fallback when a batch holds stored rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections, transaction

from telemetry import error_groups, packing
from telemetry.fingerprints import Source
from telemetry.ingest import logs
from telemetry.ingest.logs import log_rows, store_logs
from telemetry.ingest.outcome import IngestOutcome, TimeWindow
from telemetry.ingest.pipeline import ingest
from telemetry.models import LogEvent
from telemetry.otlp import OtlpSignal
from telemetry.signals import error_logs_ingested
from tests.telemetry.ingest.otlp_builders import SEVERITY_ERROR, SEVERITY_WARN, log_record, logs_request, ns

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
# Everything COPY's text format gives a meaning to, plus quotes and non-ASCII text for the jsonb column.
AWKWARD = 'tab\there, new\nline, cr\r, back\\slash, \\N, \\., "quoted" \'single\' é 日本 \\t'


def record(n: int, severity: int = SEVERITY_WARN, body: str | None = None, **attributes: object):
    return log_record(ns(NOW) + n * 1_000, severity, body if body is not None else f"event {n}", attributes)


def stored_rows() -> list[dict]:
    return [
        {**row, "id": row["id"].hex}
        for row in LogEvent.objects.order_by("ts").values(
            "id", "ts", "level", "service", "domain", "event", "message", "trace_id", "span_id", "attrs"
        )
    ]


def converted_rows(request) -> list[dict]:
    return sorted(log_rows(request, IngestOutcome(OtlpSignal.LOGS), TimeWindow.around(NOW)), key=lambda row: row["ts"])


@pytest.fixture
def announced():
    announced_rows: list[dict] = []

    def receiver(sender, rows, **kwargs):
        announced_rows.extend(rows)

    error_logs_ingested.connect(receiver)
    yield announced_rows
    error_logs_ingested.disconnect(receiver)


def ingest_committed(request, capture) -> IngestOutcome:
    with capture(execute=True):
        return ingest(OtlpSignal.LOGS, request, now=NOW)


@pytest.mark.django_db
def test_awkward_text_is_stored_exactly_as_converted():
    request = logs_request(
        record(1, SEVERITY_ERROR, AWKWARD, **{"exception.type": AWKWARD, "kaiku.domain": "voice"}),
        log_record(ns(NOW) + 2_000, SEVERITY_WARN, "no ids, no attrs"),
        service="svc\twith\\odd\nname",
    )

    outcome = ingest(OtlpSignal.LOGS, request, now=NOW)

    assert outcome.stored == 2
    assert stored_rows() == converted_rows(request)
    # The message is scrubbed first: a carriage return is a control character that can overwrite what a
    # terminal shows, so it goes; everything COPY gives a meaning to survives the round trip.
    assert stored_rows()[0]["message"] == AWKWARD.replace("\r", "")
    assert stored_rows()[0]["attrs"] == {"exception.type": AWKWARD.replace("\r", "")}


@pytest.mark.django_db
def test_a_partly_resent_batch_stores_and_announces_only_its_new_rows(
    django_capture_on_commit_callbacks, announced, monkeypatch
):
    monkeypatch.setattr(logs, "COPY_CHUNK_ROWS", 2)  # the stored rows come after rows already streamed
    first = logs_request(record(1, SEVERITY_ERROR), record(5, SEVERITY_ERROR))
    second = logs_request(*(record(n, SEVERITY_ERROR if n % 2 else SEVERITY_WARN) for n in range(6)))
    ingest_committed(first, django_capture_on_commit_callbacks)
    announced.clear()

    outcome = ingest_committed(second, django_capture_on_commit_callbacks)

    assert (outcome.accepted, outcome.stored) == (6, 4)
    assert stored_rows() == converted_rows(second)
    assert [row["event"] for row in announced] == ["event 3"]


@pytest.mark.django_db
def test_a_whole_resent_batch_stores_nothing(django_capture_on_commit_callbacks, announced):
    request = logs_request(*(record(n, SEVERITY_ERROR) for n in range(3)))
    ingest_committed(request, django_capture_on_commit_callbacks)

    outcome = ingest_committed(request, django_capture_on_commit_callbacks)

    assert (outcome.accepted, outcome.stored) == (3, 0)
    assert LogEvent.objects.count() == 3
    assert len(announced) == 3


@pytest.mark.django_db
def test_a_batch_resent_after_its_hour_was_packed_stores_nothing(django_capture_on_commit_callbacks):
    request = logs_request(*(record(n, SEVERITY_ERROR) for n in range(3)))
    ingest_committed(request, django_capture_on_commit_callbacks)
    with transaction.atomic(), connections["default"].cursor() as cursor:
        assert packing.pack_range(cursor, packing.LOGS, NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == 3

    outcome = ingest_committed(request, django_capture_on_commit_callbacks)

    assert (outcome.accepted, outcome.stored) == (3, 0)
    assert LogEvent.objects.count() == 0  # nothing hot: the three records exist once, packed


@pytest.mark.django_db
def test_a_record_repeated_within_a_request_is_stored_and_announced_once(
    django_capture_on_commit_callbacks, announced
):
    outcome = ingest_committed(
        logs_request(record(1, SEVERITY_ERROR), record(1, SEVERITY_ERROR), record(2)),
        django_capture_on_commit_callbacks,
    )

    assert (outcome.accepted, outcome.stored) == (3, 2)
    assert LogEvent.objects.count() == 2
    assert [row["event"] for row in announced] == ["event 1"]


@pytest.mark.django_db
def test_announcements_carry_the_stored_values(django_capture_on_commit_callbacks, announced):
    request = logs_request(log_record(ns(NOW) + 123_456_789, SEVERITY_ERROR, "db down token=abc123",
                                      {"kaiku.domain": "db"}, trace_id=bytes(range(1, 17))))

    ingest_committed(request, django_capture_on_commit_callbacks)

    (stored,) = stored_rows()
    assert announced == [{
        "ts": stored["ts"].isoformat(),
        "service": "vc-server",
        "domain": "db",
        "event": "db down token=[redacted]",
        "message": "db down token=[redacted]",
        "trace_id": bytes(range(1, 17)).hex(),
        "level": "ERROR",
        # The error group the live feed counts it into, and the route it touched (none given here).
        "group": error_groups.fingerprint_of(Source.LOG, "vc-server", "db down token=[redacted]",
                                             "db down token=[redacted]").as_hex,
        "route": None,
    }]
    assert stored["ts"] == NOW + timedelta(microseconds=123_456)


@pytest.mark.django_db
def test_nothing_to_keep_touches_no_table(django_assert_num_queries):
    request = logs_request(log_record(ns(NOW), 9, "info only"))
    outcome = IngestOutcome(OtlpSignal.LOGS)

    with django_assert_num_queries(0):
        store_logs(request, outcome, TimeWindow.around(NOW))

    assert (outcome.accepted, outcome.not_kept, outcome.stored) == (1, 1, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_batch_store_it_once(empty_receiver_tables):
    request = logs_request(*(record(n, SEVERITY_ERROR) for n in range(50)))
    first_stored = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, IngestOutcome] = {}
    failures: list[BaseException] = []

    def deliver(name: str, hold: bool) -> None:
        try:
            outcome = IngestOutcome(OtlpSignal.LOGS)
            with transaction.atomic():
                store_logs(request, outcome, TimeWindow.around(NOW))
                if hold:  # keep the rows uncommitted while the second delivery runs into them
                    first_stored.set()
                    release_first.wait(10)
            outcomes[name] = outcome
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=deliver, args=("first", True))
    first.start()
    assert first_stored.wait(10)
    second = threading.Thread(target=deliver, args=("second", False))
    second.start()
    second.join(0.5)  # blocked on the first delivery's uncommitted keys
    release_first.set()
    first.join(10)
    second.join(10)

    assert failures == []
    assert (outcomes["first"].stored, outcomes["second"].stored) == (50, 0)
    assert LogEvent.objects.count() == 50
