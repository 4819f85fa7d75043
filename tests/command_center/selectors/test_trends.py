"""A per-label chart reads the samples of the groups it shows only, and still shows exactly what it did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from command_center.selectors import trends
from telemetry.contract import Label, Metric
from telemetry.rollups import refresh_rollups
from tests.factories import HTTP_DURATION_BOUNDS, MetricSampleFactory, SeriesFactory

pytestmark = pytest.mark.django_db


def seed_routes(now, routes: int):
    for age in range(0, 200, 9):
        ts = now.replace(second=0) - timedelta(minutes=age)
        for index in range(routes):
            labels = {Label.HTTP_ROUTE: f"/r{index}", Label.HTTP_METHOD: "GET", Label.HTTP_STATUS_CODE: "200"}
            MetricSampleFactory(ts=ts, labels=labels, value_count=index * 3 + age % 5, value_sum=index * 3.0 + age % 5)
            MetricSampleFactory(histogram=True, ts=ts, labels=labels,
                                bucket_counts=[(index + age + i) % 4 for i in range(len(HTTP_DURATION_BOUNDS) + 1)])


@pytest.mark.parametrize("metric", [Metric.HTTP_REQUESTS_TOTAL, Metric.HTTP_REQUEST_DURATION_SECONDS])
@pytest.mark.parametrize("routes", [4, 14])
def test_a_chart_grouped_by_label_equals_the_one_merging_every_group(monkeypatch, metric, routes):
    now = timezone.now()
    seed_routes(now, routes)
    refresh_rollups()
    start = now - timedelta(hours=24)
    restricted = trends._shown_groups_match(metric, start, now, Label.HTTP_ROUTE)
    new = trends.trend(metric, start, now, group_by=Label.HTTP_ROUTE)
    monkeypatch.setattr(trends, "_shown_groups_match", lambda *args: [])

    old = trends.trend(metric, start, now, group_by=Label.HTTP_ROUTE)

    assert new == old
    assert len(new["series"]) == min(routes, trends.MAX_SERIES)
    assert bool(restricted) == (routes > trends.MAX_SERIES)
    if metric == Metric.HTTP_REQUESTS_TOTAL:
        assert [series["labels"][Label.HTTP_ROUTE] for series in new["series"]][:2] == [
            f"/r{routes - 1}", f"/r{routes - 2}"]


def test_rows_without_the_label_are_never_filtered_out():
    now = timezone.now()
    seed_routes(now, 12)
    MetricSampleFactory(ts=now.replace(second=0), labels={}, value_count=10**6, value_sum=1e6)

    result = trends.trend(Metric.HTTP_REQUESTS_TOTAL, now - timedelta(hours=6), now, group_by=Label.HTTP_ROUTE)

    assert result["series"][0]["labels"] == {Label.HTTP_ROUTE: ""}


def test_few_known_label_values_skip_the_ranking(monkeypatch):
    now = timezone.now()
    seed_routes(now, 14)
    start = now - timedelta(hours=24)
    assert trends._shown_groups_match(Metric.HTTP_REQUESTS_TOTAL, start, now, Label.HTTP_ROUTE)
    for index in range(3):
        SeriesFactory(metric_name=Metric.HTTP_REQUESTS_TOTAL, labels={Label.HTTP_ROUTE: f"/r{index}"})
    monkeypatch.setattr(trends.metrics, "aggregate", None)  # would fail if the ranking ran

    assert trends._shown_groups_match(Metric.HTTP_REQUESTS_TOTAL, start, now, Label.HTTP_ROUTE) == []
