"""Slow queries of the infrastructure panel: db spans, hot and packed alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors.infrastructure import slow_queries
from tests.command_center.selectors.packed_data import pack
from tests.factories import TraceIndexEntryFactory

pytestmark = pytest.mark.django_db


def test_slow_queries_are_the_same_after_packing():
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for minutes in range(0, 26 * 60, 7):
        ts = now - timedelta(minutes=minutes, seconds=3)
        TraceIndexEntryFactory(ts=ts, domain="db", span_name=f"SELECT table_{minutes % 12}",
                               duration_ms=minutes % 500)
        TraceIndexEntryFactory(ts=ts, domain="api", span_name="SELECT not a db span", duration_ms=9000)
    before = slow_queries(now)
    assert pack(now - timedelta(hours=30), now - timedelta(hours=1)) > 300
    assert slow_queries(now) == before
    assert len(before) == 10 and "SELECT not a db span" not in {row["span_name"] for row in before}
    # Spans of the last 24 hours only: the 25th hour's are outside the window.
    assert sum(row["count"] for row in slow_queries(now + timedelta(hours=2))) < sum(row["count"] for row in before)
