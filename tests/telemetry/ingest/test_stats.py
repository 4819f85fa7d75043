"""Receiver self-telemetry in Redis, shared by all web processes."""

from __future__ import annotations

import pytest

from telemetry import redis_client
from telemetry.ingest import stats
from telemetry.ingest.outcome import IngestOutcome
from telemetry.otlp import OtlpSignal

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_stats(settings):
    stats.reset_stats()
    yield
    stats.reset_stats()


def test_requests_add_up_per_signal(clean_stats):
    outcome = IngestOutcome(OtlpSignal.LOGS, accepted=5, not_kept=2, stored=3)
    outcome.reject("no timestamp", 1)

    stats.record_request(OtlpSignal.LOGS, outcome, body_bytes=1000, decode_ms=2.0)
    stats.record_request(OtlpSignal.LOGS, outcome, body_bytes=500, decode_ms=4.0)

    logs = stats.receiver_stats()["signals"]["logs"]
    assert {
        key: logs[key] for key in ("requests", "accepted", "rejected", "not_kept", "stored", "bytes")
    } == {"requests": 2, "accepted": 10, "rejected": 2, "not_kept": 4, "stored": 6, "bytes": 1500}
    assert logs["decode_ms_avg"] == 3.0
    assert logs["last_at"] is not None
    assert stats.receiver_stats()["buffer_depth"] == 0


def test_a_redis_outage_never_fails_recording(settings, monkeypatch):
    monkeypatch.setattr(redis_client, "_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: a real connection failure
    try:
        stats.record_request(OtlpSignal.TRACES, IngestOutcome(OtlpSignal.TRACES, accepted=1), 10, 1.0)
        assert stats.receiver_stats()["available"] is False
    finally:
        monkeypatch.setattr(redis_client, "_client", None)


def test_forbidden_drops_are_part_of_the_stats(clean_stats):
    outcome = IngestOutcome(OtlpSignal.METRICS, accepted=2, forbidden_dropped=3)
    stats.record_request(OtlpSignal.METRICS, outcome, 10, 1.0)

    assert stats.receiver_stats()["signals"]["metrics"]["forbidden_dropped"] == 3
