"""Fixtures of the receiver tests: the ingest token, clean receiver state and an HTTP helper."""

from __future__ import annotations

import pytest
from django.db import connection

from telemetry.ingest import cardinality

INGEST_TOKEN = "test-ingest-token-0123456789"
# Tables the receiver writes; the partitioned ones are not emptied by Django's flush between tests.
RECEIVER_TABLES = (
    "telemetry_metric_points_pending",
    "telemetry_metric_streams",
    "telemetry_series",
    "telemetry_metric_samples",
    "telemetry_log_events",
    "telemetry_trace_index",
    "telemetry_seed_days",
)


@pytest.fixture(autouse=True)
def ingest_settings(settings):
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    settings.TELEMETRY_TRACE_SAMPLE_RATE = 0.0
    settings.COMMAND_CENTER_TRACE_SLOW_MS = 1000
    settings.COMMAND_CENTER_DB_SLOW_MS = 100
    return settings


@pytest.fixture(autouse=True)
def fresh_series_memory():
    cardinality.forget_known_series()
    yield
    cardinality.forget_known_series()


@pytest.fixture
def empty_receiver_tables(transactional_db):
    """For tests that commit (live server, flush): start and end with empty receiver tables."""
    _truncate()
    yield
    _truncate()


def _truncate() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(RECEIVER_TABLES)}")


@pytest.fixture
def auth_headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {INGEST_TOKEN}"}
