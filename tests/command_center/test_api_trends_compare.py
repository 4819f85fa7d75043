"""trends?compare=yesterday|last_week: the same window shifted back, on the chart's own timestamps (issue 16.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from telemetry.contract import Label, Metric
from telemetry.rollups import refresh_rollups
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401
from tests.factories import MetricSampleFactory

pytestmark = pytest.mark.django_db
URL = "observability:trends"


def requests_at(ts, count: int, route: str = "/a") -> None:
    labels = {Label.HTTP_ROUTE: route, Label.HTTP_METHOD: "GET", Label.HTTP_STATUS_CODE: "200"}
    MetricSampleFactory(ts=ts, labels=labels, value_count=count, value_sum=float(count))


@pytest.mark.parametrize(("compare", "days", "rate"), [("yesterday", 1, 1.0), ("last_week", 7, 0.5)])
def test_the_compared_series_is_the_shifted_window_on_the_same_timestamps(admin_client, compare, days, rate):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    requests_at(minute, 120)  # 2 req/s now
    requests_at(minute - timedelta(days=1), 60)  # 1 req/s a day earlier
    requests_at(minute - timedelta(days=7), 30)  # 0.5 req/s a week earlier
    requests_at(minute - timedelta(days=2), 6000)  # neither

    body = admin_client.get(reverse(URL), {"metric": Metric.HTTP_REQUESTS_TOTAL, "range": "1h",
                                           "compare": compare}).json()

    index = body["timestamps"].index(int(minute.timestamp()))
    assert body["series"][0]["values"]["rate"][index] == pytest.approx(2.0)
    compared = body["compare"]
    assert compared["name"] == compare
    assert compared["shift_seconds"] == days * 86400
    values = compared["series"][0]["values"]["rate"]
    assert len(values) == len(body["timestamps"])
    assert values[index] == pytest.approx(rate)
    assert [value for i, value in enumerate(values) if i != index] == [None] * (len(values) - 1)


def test_without_compare_the_answer_is_unchanged(admin_client):
    requests_at(timezone.now().replace(second=0, microsecond=0), 60)
    body = admin_client.get(reverse(URL), {"metric": Metric.HTTP_REQUESTS_TOTAL, "range": "1h"}).json()
    assert "compare" not in body


def test_grouped_charts_compare_the_groups_they_show(admin_client):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    requests_at(minute, 60, "/a")
    requests_at(minute - timedelta(days=1), 120, "/a")
    requests_at(minute - timedelta(days=1), 600, "/only-yesterday")
    # Per-label minutes older than the sample tier (1 day) are read from the hourly rollup, by the hour.
    refresh_rollups()

    end = minute + timedelta(minutes=10)  # whole minutes, so every bin is a whole minute
    window = {"from": (end - timedelta(hours=1)).isoformat(), "to": end.isoformat()}
    body = admin_client.get(reverse(URL), {"metric": Metric.HTTP_REQUESTS_TOTAL, **window,
                                           "group_by": Label.HTTP_ROUTE, "compare": "yesterday"}).json()

    assert [series["labels"] for series in body["compare"]["series"]] == [{Label.HTTP_ROUTE: "/a"}]
    rates = body["compare"]["series"][0]["values"]["rate"]
    assert len(rates) == len(body["timestamps"])
    assert sum(rate * 60 for rate in rates if rate is not None) == pytest.approx(120)  # /a's requests only


@pytest.mark.parametrize("value", ["tomorrow", "1d", "YESTERDAY"])
def test_a_bad_compare_is_a_400_naming_it(admin_client, value):
    response = admin_client.get(reverse(URL), {"metric": Metric.HTTP_REQUESTS_TOTAL, "compare": value})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid parameters",
                               "detail": {"compare": "must be one of yesterday, last_week"}}


def test_compare_is_in_the_openapi_document(admin_client):
    document = admin_client.get(reverse("observability:openapi")).json()
    parameters = document["paths"]["/api/admin/observability/trends"]["get"]["parameters"]
    compare = next(param for param in parameters if param["name"] == "compare")
    assert compare["schema"]["enum"] == ["yesterday", "last_week"]
