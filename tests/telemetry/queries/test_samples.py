"""The metrics export's rows: whole per-label samples of a window, newest first, capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.contract import Metric
from telemetry.queries import samples
from tests.factories import MetricSampleFactory

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
END = START + timedelta(minutes=10)


@pytest.mark.django_db
def test_rows_of_the_window_come_newest_first_in_the_export_fields_order():
    MetricSampleFactory(ts=START - timedelta(minutes=1))  # before the window
    older = MetricSampleFactory(ts=START, value_count=3, value_sum=3.0)
    newer = MetricSampleFactory(ts=START + timedelta(minutes=5), value_count=7, value_sum=7.0)
    MetricSampleFactory(ts=END)  # the end is not inside

    rows = list(samples.export_rows(START, END, None, limit=10, chunk_size=2))

    assert [row[:2] for row in rows] == [(newer.ts, newer.metric_name), (older.ts, older.metric_name)]
    assert dict(zip(samples.EXPORT_FIELDS, rows[0], strict=True))["value_count"] == 7


@pytest.mark.django_db
def test_a_metric_filter_and_the_cap_apply_and_more_than_counts_past_the_cap():
    for minute in range(4):
        MetricSampleFactory(ts=START + timedelta(minutes=minute))
    MetricSampleFactory(gauge=True, ts=START)

    requests = list(samples.export_rows(START, END, Metric.HTTP_REQUESTS_TOTAL, limit=3, chunk_size=10))

    assert len(requests) == 3 and {row[1] for row in requests} == {Metric.HTTP_REQUESTS_TOTAL.value}
    assert samples.more_than(START, END, Metric.HTTP_REQUESTS_TOTAL, 3)
    assert not samples.more_than(START, END, Metric.HTTP_REQUESTS_TOTAL, 4)
    assert samples.more_than(START, END, None, 4)
