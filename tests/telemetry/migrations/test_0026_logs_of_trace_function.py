"""The function that reads one trace's log records (migration 0026): it answers what the view answers for the trace,
packed and hot, and going back drops it while the view goes on answering."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.models import StoredLogEvent
from telemetry.queries import stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory
from tests.telemetry.migrations.migrating import migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0026_logs_of_trace_function")
COLUMNS = ("ts", "id", "level", "service", "domain", "event", "message", "trace_id", "span_id", "attrs")


def function_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('telemetry_logs_of_trace(uuid, timestamptz[])') IS NOT NULL")
        return cursor.fetchone()[0]


def test_the_logs_of_a_trace_come_from_the_function_as_from_the_view():
    migrate(previous(THIS))
    assert not function_exists()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    wanted = uuid.uuid4().hex
    for minutes in (10, 40, 70, 200):
        LogEventFactory(ts=now - timedelta(hours=2, minutes=minutes), trace_id=wanted, attrs={"n": minutes})
        LogEventFactory(ts=now - timedelta(hours=2, minutes=minutes, seconds=1))
    pack(now - timedelta(hours=6), now - timedelta(hours=1))
    LogEventFactory(ts=now - timedelta(minutes=5), trace_id=wanted)  # hot

    migrate(THIS)

    assert function_exists()
    from_view = sorted(stored.rows(StoredLogEvent).filter(trace_id=wanted).values_list(*COLUMNS))
    assert len(from_view) == 5
    assert sorted(stored.logs_of_trace(wanted).values_list(*COLUMNS)) == from_view

    migrate(previous(THIS))
    assert not function_exists()
    assert sorted(stored.rows(StoredLogEvent).filter(trace_id=wanted).values_list(*COLUMNS)) == from_view
    migrate(THIS)
