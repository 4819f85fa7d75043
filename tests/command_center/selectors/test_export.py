"""Exports of logs and spans read hot and packed rows alike: the same files after packing as before,
also when the row cap falls in the middle of the slices the export reads."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors import export
from tests.command_center.selectors.packed_data import pack
from tests.factories import LogEventFactory, TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for minutes in range(0, 30 * 60, 17):
        ts = now - timedelta(minutes=minutes, seconds=1)
        LogEventFactory(ts=ts, level=("ERROR", "WARN")[minutes % 2], message=f"=cmd| disk full {minutes}",
                        attrs={"error.type": "internal"}, trace_id=None if minutes % 3 else uuid.uuid4().hex)
        TraceIndexEntryFactory(ts=ts, domain=("api", "db")[minutes % 2], duration_ms=minutes,
                               status_code=("200", "503", "ERROR")[minutes % 3])
    return now


def files(now):
    window = (now - timedelta(hours=24), now)
    exports = {}
    for kind, filters in (("logs", {}), ("logs", {"level": "ERROR", "search": "disk"}), ("traces", {}),
                          ("traces", {"status": "error", "domain": "db"})):
        for fmt, chunks in (("csv", export.csv_chunks), ("json", export.json_chunks)):
            key = (kind, fmt, tuple(filters.items()))
            exports[key] = "".join(chunks(kind, export.export_rows(kind, *window, filters)))
    return exports


@pytest.mark.parametrize("cap", [10_000, 25])
def test_exports_are_the_same_after_packing(now, cap, monkeypatch):
    monkeypatch.setattr(export, "EXPORT_MAX_ROWS", cap)
    before = files(now)
    assert pack(now - timedelta(hours=20), now - timedelta(minutes=30)) > 100
    assert files(now) == before
    rows = len(before[("logs", "csv", ())].splitlines()) - 1
    assert rows == min(cap, 24 * 60 // 17 + 1)


def test_the_cap_keeps_the_newest_rows_across_slices(now, monkeypatch):
    monkeypatch.setattr(export, "EXPORT_MAX_ROWS", 30)  # more than the newest hour's rows: several slices
    pack(now - timedelta(hours=20), now - timedelta(minutes=30))
    rows = list(export.export_rows("traces", now - timedelta(days=2), now, {}))
    assert [row[6] for row in rows] == list(range(0, 30 * 17, 17))
