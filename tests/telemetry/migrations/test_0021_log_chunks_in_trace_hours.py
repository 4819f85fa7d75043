"""The upgrade of a database holding packed log records (migration 0021): the trace ids of existing log chunks are
added to the hour filter, so their trace is found through it, and log chunks packed afterwards add theirs as they
are written; going back removes the trigger only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from telemetry.packing import LOG_CHUNKS
from telemetry.queries import records, stored
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory
from tests.telemetry.migrations.migrating import migrate, previous

pytestmark = pytest.mark.django_db

THIS = ("telemetry", "0021_log_chunks_in_trace_hours")


def log_trigger_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'telemetry_log_chunks_hours'")
        return cursor.fetchone()[0] == 1


def test_packed_log_records_are_found_through_the_hour_filter_after_the_upgrade():
    migrate(previous(THIS))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    old, new = uuid.uuid4(), uuid.uuid4()
    LogEventFactory(ts=now - timedelta(days=2, hours=3), trace_id=old.hex)
    LogEventFactory(ts=now - timedelta(days=2, hours=3), trace_id=None)
    LogEventFactory(ts=now - timedelta(hours=4), trace_id=uuid.uuid4().hex)
    pack(now - timedelta(days=3), now - timedelta(hours=1))
    assert not log_trigger_exists()
    assert stored.chunks_of_trace(LOG_CHUNKS, old) == []  # packed before the filter knew log chunks

    migrate(THIS)

    assert log_trigger_exists()
    assert len(stored.chunks_of_trace(LOG_CHUNKS, old)) == 1
    LogEventFactory(ts=now - timedelta(hours=3), trace_id=new.hex)
    pack(now - timedelta(hours=3), now - timedelta(hours=2))  # packed after: its trigger adds the id
    month = records.logs(now - timedelta(days=30), now)  # through the view: 0026's function is not there yet
    for trace_id, ts in ((old, now - timedelta(days=2, hours=3)), (new, now - timedelta(hours=3))):
        assert [row.ts for row in month.filter(stored.of_trace(trace_id.hex))] == [ts]

    migrate(previous(THIS))
    assert not log_trigger_exists()
    assert len(stored.chunks_of_trace(LOG_CHUNKS, new)) == 1  # its bits stay: at worst a needless check
    migrate(THIS)
