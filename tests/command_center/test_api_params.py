"""Bad input is a JSON 400 naming the parameter; good input is parsed into typed values and a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict
from django.urls import reverse

from command_center.api.params import ENDPOINTS, InvalidParameters, parse
from tests.command_center.api_fixtures import fresh_command_center_cache  # noqa: F401

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def parsed(endpoint: str, query: str) -> dict:
    return parse(ENDPOINTS[endpoint], QueryDict(query), NOW)


def problems(endpoint: str, query: str) -> dict[str, str]:
    with pytest.raises(InvalidParameters) as raised:
        parsed(endpoint, query)
    return raised.value.detail


def test_defaults_fill_in_absent_parameters():
    values = parsed("top-routes", "")
    assert (values["sort"], values["limit"]) == ("latency", 10)
    assert (values["window"].start, values["window"].end) == (NOW - timedelta(hours=24), NOW)


def test_from_and_to_replace_range():
    window = parsed("logs", "from=2026-11-28T06:00:00Z&to=2026-11-28T07:30:00%2B00:00")["window"]
    assert (window.start, window.end) == (
        datetime(2026, 11, 28, 6, tzinfo=UTC),
        datetime(2026, 11, 28, 7, 30, tzinfo=UTC),
    )
    assert window.range_key is None


@pytest.mark.parametrize(
    ("endpoint", "query", "param"),
    [
        ("top-routes", "limit=0", "limit"),
        ("top-routes", "limit=101", "limit"),
        ("top-routes", "limit=ten", "limit"),
        ("top-routes", "sort=slowest", "sort"),
        ("trends", "", "metric"),
        ("trends", "metric=kaiku_nope_total", "metric"),
        ("trends", "metric=kaiku_client_tauri_command_errors_total", "metric"),  # its feature flag is off
        ("trends", "metric=kaiku_http_requests_total&group_by=user.id", "group_by"),
        ("trends", "metric=kaiku_http_requests_total&range=2d", "range"),
        ("logs", "range=1h&from=2026-11-29T10:00:00Z", "range"),
        ("logs", "from=yesterday", "from"),
        ("logs", "from=2026-10-01T00:00:00Z&to=2026-11-29T00:00:00Z", "from"),  # longer than 30 days
        ("logs", "from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z", "from"),  # outside retention
        ("logs", "from=2026-11-29T11:00:00Z&to=2026-11-29T10:00:00Z", "from"),  # inverted
        ("logs", "level=DEBUG", "level"),
        ("logs", "limit=5&limit=6", "limit"),
        ("logs", "search=" + "x" * 201, "search"),
        ("logs", "colour=red", "colour"),  # unknown parameters are not silently ignored
        ("traces", "duration_min=-1", "duration_min"),
        ("traces", "trace_id=XYZ", "trace_id"),
        ("export", "format=csv", "type"),
        ("export", "type=logs&format=xlsx", "format"),
    ],
)
def test_bad_parameters_are_named(endpoint, query, param):
    assert param in problems(endpoint, query)


def test_every_bad_parameter_is_reported_at_once():
    assert set(problems("top-routes", "limit=0&sort=x&range=1y")) == {"limit", "sort", "range"}


@pytest.mark.django_db
def test_the_view_answers_400_json(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("observability:top-routes"), {"limit": "500"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid parameters",
        "detail": {"limit": "must be between 1 and 100"},
    }


def test_cached_endpoints_end_a_window_ending_now_on_their_cache_period():
    later = NOW + timedelta(seconds=17, microseconds=5)
    window = parse(ENDPOINTS["trends"], QueryDict("metric=kaiku_http_requests_total"), later)["window"]
    assert window.end == NOW + timedelta(seconds=10)
    logs_window = parse(ENDPOINTS["logs"], QueryDict(""), later)["window"]
    assert logs_window.end == later  # lists are read live
