"""Bad input is a JSON 400 naming the parameter; good input is parsed into typed values and a window."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.http import QueryDict
from django.urls import reverse

from command_center.api.params import ENDPOINTS, InvalidParameters, parse
from command_center.selectors.pagination import Cursor, InvalidCursor
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


# --- years, offsets and crafted cursors (issue 17): a 400 naming the parameter, never an overflow --------

@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59",
    "2026-11-29T12:00:00+23:59", "2026-11-29T12:00:00-23:59", "2026-11-29T12:00:00+14:01", "1969-12-31T23:59:59Z",
])
@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("endpoint", ["logs", "traces", "trends", "voice-quality", "export"])
def test_years_and_offsets_out_of_range_are_a_400_naming_the_parameter(endpoint, name, value):
    base = {"trends": "metric=kaiku_http_requests_total&", "export": "type=logs&"}.get(endpoint, "")
    query = QueryDict(mutable=True)
    query.update(QueryDict(base))
    query[name] = value

    with pytest.raises(InvalidParameters) as raised:
        parse(ENDPOINTS[endpoint], query, NOW)

    assert name in raised.value.detail


def test_offsets_within_14_hours_are_converted_to_utc():
    query = QueryDict(mutable=True)
    query.update({"from": "2026-11-29T20:00:00+14:00", "to": "2026-11-29T00:00:00-11:59"})
    window = parse(ENDPOINTS["logs"], query, NOW)["window"]

    assert window.start == datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 29, 11, 59, tzinfo=UTC)
    assert window.start.utcoffset() == timedelta(0)


def crafted_cursor(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize("payload", [
    '["9999-12-31T23:59:59.999999+00:00", "8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"]',
    '["0001-01-01T00:00:00+00:00", "8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"]',
    '["0001-01-01T00:00:00+23:59", "8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"]',
    '["2026-11-29T12:00:00", "8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"]',
    "[" * 5000 + "]" * 5000,
    '[["2026-11-29T12:00:00+00:00"], "8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"]',
    '{"a": 1, "b": 2}',
])
def test_crafted_cursors_are_refused_without_overflow_or_recursion(payload):
    cursor = crafted_cursor(payload)

    with pytest.raises(InvalidCursor):
        Cursor.decode(cursor)
    query = QueryDict(mutable=True)
    query["cursor"] = cursor
    with pytest.raises(InvalidParameters) as raised:
        parse(ENDPOINTS["logs"], query, NOW)
    assert "cursor" in raised.value.detail


def test_a_cursor_of_this_api_still_round_trips():
    cursor = Cursor(datetime(2026, 11, 29, 11, 59, 59, 123456, tzinfo=UTC),
                    uuid.UUID("8f9c2b8e-5d55-4f4c-9d8f-3d3b1f0b6f11"))

    assert Cursor.decode(cursor.encode()) == cursor
